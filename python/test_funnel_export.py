"""Tests for funnel_export.py.

Run from the repository root, with or without torch/numpy installed:

    python3 -m unittest python/test_funnel_export.py -v

Tests that need numpy or torch skip themselves when those are missing.
"""

import array
import io
import os
import struct
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import funnel_export as fe  # noqa: E402


def _header_text(blob):
    (hlen,) = struct.unpack("<H", blob[8:10])
    return blob[10:10 + hlen]


class NpyHeaderTest(unittest.TestCase):
    def test_exact_header_and_padding(self):
        h = fe.npy_header("<f4", (3,))
        self.assertEqual(h[:8], b"\x93NUMPY\x01\x00")
        text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }"
        self.assertTrue(_header_text(h).startswith(text))
        self.assertEqual(len(h), 128)  # 10 + 58 + room for a 21-digit axis + pad
        self.assertEqual(h[-1:], b"\n")
        self.assertEqual(h[10 + len(text):-1], b" " * (128 - 10 - len(text) - 1))

    def test_shapes_render_like_python_tuples(self):
        for shape, rendered in [((), b"()"), ((5,), b"(5,)"), ((2, 3, 4), b"(2, 3, 4)"),
                                ((0,), b"(0,)"), ((0, 3), b"(0, 3)")]:
            h = fe.npy_header("<f8", shape)
            self.assertIn(b"'shape': " + rendered + b", }", h)
            self.assertEqual(len(h) % 64, 0)
            self.assertEqual(h[-1:], b"\n")
            (hlen,) = struct.unpack("<H", h[8:10])
            self.assertEqual(10 + hlen, len(h))

    def test_long_header_pads_to_next_multiple_of_64(self):
        h = fe.npy_header("<f4", tuple(range(1000, 1030)))
        self.assertGreater(len(h), 64)
        self.assertEqual(len(h) % 64, 0)
        self.assertEqual(h[-1:], b"\n")

    def test_descr_for_each_dtype(self):
        for name, (descr, _, _) in fe.DTYPES.items():
            blob = fe.npy_bytes([], dtype=name)
            self.assertIn(("'descr': '%s'" % descr).encode(), blob)
        self.assertEqual(fe.DTYPES["float32"][0], "<f4")
        self.assertEqual(fe.DTYPES["int64"][0], "<i8")
        self.assertEqual(fe.DTYPES["bool"][0], "|b1")


class NpyRoundTripTest(unittest.TestCase):
    CASES = [
        ("float32", [1.5, -2.0, 0.25]),
        ("float64", [1e300, -2.5, 3.0]),
        ("float16", [0.5, -1.0, 2048.0]),
        ("int8", [-128, 0, 127]),
        ("uint8", [0, 7, 255]),
        ("int16", [-32768, 1, 32767]),
        ("int32", [-(2 ** 31), 5, 2 ** 31 - 1]),
        ("int64", [-(2 ** 63), 6, 2 ** 63 - 1]),
        ("uint64", [0, 1, 2 ** 64 - 1]),
        ("bool", [True, False, True]),
    ]

    def test_dtypes_1d(self):
        for name, values in self.CASES:
            with self.subTest(dtype=name):
                blob = fe.npy_bytes(values, dtype=name)
                self.assertEqual(len(blob) % 64, len(values) * fe.DTYPES[name][2] % 64)
                self.assertEqual(fe.read_npy(blob), (name, (3,), values))

    def test_0d(self):
        self.assertEqual(fe.read_npy(fe.npy_bytes(2.5)), ("float64", (), [2.5]))
        self.assertEqual(fe.read_npy(fe.npy_bytes(7)), ("int64", (), [7]))
        blob = fe.npy_bytes(0.75, dtype="float32")
        self.assertEqual(len(blob), 128 + 4)
        self.assertEqual(blob[128:], struct.pack("<f", 0.75))
        self.assertEqual(fe.read_npy(blob), ("float32", (), [0.75]))

    def test_3d_c_order(self):
        nested = [[[i * 12 + j * 4 + k for k in range(4)] for j in range(3)] for i in range(2)]
        name, shape, flat = fe.read_npy(fe.npy_bytes(nested, dtype="float32"))
        self.assertEqual((name, shape), ("float32", (2, 3, 4)))
        self.assertEqual(flat, [float(v) for v in range(24)])

    def test_little_endian_data(self):
        blob = fe.npy_bytes([1.0], dtype="float32")
        self.assertEqual(blob[-4:], b"\x00\x00\x80\x3f")
        blob = fe.npy_bytes([1], dtype="int64")
        self.assertEqual(blob[-8:], b"\x01" + b"\x00" * 7)

    def test_empty(self):
        self.assertEqual(fe.read_npy(fe.npy_bytes([], dtype="float32")), ("float32", (0,), []))
        self.assertEqual(fe.read_npy(fe.npy_bytes([[], []], dtype="int64")),
                         ("int64", (2, 0), []))

    def test_inferred_dtypes(self):
        self.assertEqual(fe.read_npy(fe.npy_bytes([1, 2]))[0], "int64")
        self.assertEqual(fe.read_npy(fe.npy_bytes([1, 2.5]))[0], "float64")
        self.assertEqual(fe.read_npy(fe.npy_bytes([True, False]))[0], "bool")

    def test_array_array_and_bytes(self):
        a = array.array("f", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        self.assertEqual(fe.read_npy(fe.npy_bytes(a, shape=(2, 3))),
                         ("float32", (2, 3), list(a)))
        self.assertEqual(fe.read_npy(fe.npy_bytes(a, dtype="float64"))[:2],
                         ("float64", (6,)))
        q = array.array("q", [3, -4])
        self.assertEqual(fe.read_npy(fe.npy_bytes(q)), ("int64", (2,), [3, -4]))
        raw = struct.pack("<4f", 1, 2, 3, 4)
        self.assertEqual(fe.read_npy(fe.npy_bytes(raw, dtype="float32", shape=(2, 2))),
                         ("float32", (2, 2), [1.0, 2.0, 3.0, 4.0]))
        self.assertEqual(fe.read_npy(fe.npy_bytes(raw))[1], (4,))  # float32 default
        flat = fe.npy_bytes([1, 2, 3, 4, 5, 6], dtype="int32", shape=(3, 2))
        self.assertEqual(fe.read_npy(flat)[1], (3, 2))

    def test_dtype_spellings(self):
        for spelling in ("float32", "<f4", "f4", "float", "single"):
            self.assertEqual(fe.read_npy(fe.npy_bytes([1], dtype=spelling))[0], "float32")
        self.assertEqual(fe.read_npy(fe.npy_bytes([1], dtype=float))[0], "float64")
        self.assertEqual(fe.read_npy(fe.npy_bytes([1], dtype="|u1"))[0], "uint8")

    def test_write_npy_to_path_and_file(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "a.npy")
            fe.write_npy(p, [[1, 2], [3, 4]], dtype="int16")
            with open(p, "rb") as f:
                self.assertEqual(fe.read_npy(f.read()), ("int16", (2, 2), [1, 2, 3, 4]))
        buf = io.BytesIO()
        fe.write_npy(buf, [0.5], dtype="float16")
        self.assertEqual(fe.read_npy(buf.getvalue()), ("float16", (1,), [0.5]))

    def test_errors(self):
        with self.assertRaises(ValueError):
            fe.npy_bytes([[1, 2], [3]])  # ragged
        with self.assertRaises(ValueError):
            fe.npy_bytes(b"\x00" * 6, dtype="float32")  # not whole items
        with self.assertRaises(ValueError):
            fe.npy_bytes([1, 2, 3], shape=(2, 2))
        with self.assertRaises(ValueError):
            fe.npy_bytes([1], dtype="complex64")
        with self.assertRaises(ValueError):
            fe.npy_bytes([1.5], dtype="int32")
        with self.assertRaises(ValueError):
            fe.npy_bytes([300], dtype="uint8")
        with self.assertRaises(ValueError):
            fe.read_npy(b"NOTNPY" + b"\x00" * 64)
        with self.assertRaises(ValueError):
            fe.read_npy(fe.npy_bytes([1.0, 2.0], dtype="float32")[:-2])  # truncated


class NpzTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "x.npz")

    def tearDown(self):
        self.dir.cleanup()

    def test_member_names_and_order(self):
        names = fe.write_npz(self.path, [
            ("train/input", [[1.0, 2.0], [3.0, 4.0]]),
            ("train/fc1", [[0.5], [0.25]]),
            ("test/input", [[5.0, 6.0]]),
            ("test/fc1.npy", [[1.0]]),
            ("train_labels", array.array("q", [0, 1])),
        ])
        expected = ["train/input.npy", "train/fc1.npy", "test/input.npy", "test/fc1.npy",
                    "train_labels.npy"]
        self.assertEqual(names, expected)
        with zipfile.ZipFile(self.path) as z:
            self.assertEqual(z.namelist(), expected)
            self.assertTrue(all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist()))
            self.assertIsNone(z.testzip())
        got = fe.read_npz(self.path)
        self.assertEqual(list(got), ["train/input", "train/fc1", "test/input", "test/fc1",
                                     "train_labels"])
        self.assertEqual(got["train/input"], ("float64", (2, 2), [1.0, 2.0, 3.0, 4.0]))
        self.assertEqual(got["train_labels"], ("int64", (2,), [0, 1]))
        self.assertEqual(fe.describe_npz(self.path)[0], ("train/input.npy", "float64", (2, 2)))

    def test_deflated_and_deterministic(self):
        data = [("a", [[0.0] * 50] * 20), ("b", 1.0)]
        fe.write_npz(self.path, data, compress=True)
        with zipfile.ZipFile(self.path) as z:
            self.assertTrue(all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist()))
        self.assertEqual(fe.read_npz(self.path)["b"], ("float64", (), [1.0]))
        other = os.path.join(self.dir.name, "y.npz")
        fe.write_npz(self.path, data)
        fe.write_npz(other, data)
        with open(self.path, "rb") as f1, open(other, "rb") as f2:
            self.assertEqual(f1.read(), f2.read())

    def test_writer_dtypes_and_duplicates(self):
        with fe.NpzWriter(self.path) as w:
            w.add("x", [1, 2, 3], dtype="float32")
            w.add("lipschitz/fc1", 2.0, dtype="float64")
            with self.assertRaises(ValueError):
                w.add("x.npy", [1])
        got = fe.read_npz(self.path)
        self.assertEqual(got["x"], ("float32", (3,), [1.0, 2.0, 3.0]))
        self.assertEqual(got["lipschitz/fc1"], ("float64", (), [2.0]))


class NumpyCompatTest(unittest.TestCase):
    def setUp(self):
        try:
            import numpy
        except ImportError as e:
            self.skipTest("numpy is not installed: %s" % e)
        self.np = numpy

    def test_bytes_identical_to_numpy_save(self):
        np = self.np
        for a in [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(3.5),
                  np.arange(24, dtype=np.int64).reshape(2, 3, 4), np.zeros((0, 5), np.float16),
                  np.array([True, False]), np.arange(10, dtype=np.uint8),
                  np.zeros((1,) * 20, np.float32), np.zeros((0,) + (999,) * 6, np.int8)]:
            buf = io.BytesIO()
            np.save(buf, a)
            self.assertEqual(fe.npy_bytes(a), buf.getvalue())
            self.assertEqual(fe.read_npy(buf.getvalue())[1], a.shape)

    def test_numpy_array_inputs(self):
        np = self.np
        a = np.arange(12, dtype=">f8").reshape(3, 4)[:, ::2]  # big-endian, strided
        name, shape, flat = fe.read_npy(fe.npy_bytes(a))
        self.assertEqual((name, shape), ("float64", (3, 2)))
        self.assertEqual(flat, a.ravel().tolist())
        self.assertEqual(fe.read_npy(fe.npy_bytes(a, dtype="float16"))[0], "float16")

    def test_numpy_loads_our_npz_and_we_read_savez(self):
        np = self.np
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "a.npz")
            fe.write_npz(p, [("train/x", [[1.0, 2.0]]), ("train_labels", [3])])
            with np.load(p) as z:
                self.assertEqual(list(z.keys()), ["train/x", "train_labels"])
                self.assertEqual(z["train/x"].dtype, np.float64)
                self.assertEqual(z["train_labels"].tolist(), [3])
            q = os.path.join(d, "b.npz")
            np.savez_compressed(q, a=np.arange(3, dtype=np.float32))
            self.assertEqual(fe.read_npz(q)["a"], ("float32", (3,), [0.0, 1.0, 2.0]))


class NamesTest(unittest.TestCase):
    def test_sanitize(self):
        self.assertEqual(fe.sanitize_name("features.0"), "features.0")
        self.assertEqual(fe.sanitize_name("fc2"), "fc2")
        self.assertEqual(fe.sanitize_name("block-1_a.b"), "block-1_a.b")
        self.assertEqual(fe.sanitize_name("a b/c:d"), "a_b_c_d")
        self.assertEqual(fe.sanitize_name("caf\u00e9"), "caf_")
        self.assertEqual(fe.sanitize_name(""), "_")
        self.assertEqual(fe.sanitize_name("x" * 150), "x" * 100)

    def test_unique(self):
        self.assertEqual(fe.unique_names(["relu", "relu", "a/b", "a_b", "relu"]),
                         ["relu", "relu-2", "a_b", "a_b-2", "relu-3"])
        long = fe.unique_names(["y" * 120, "y" * 130])
        self.assertEqual(long, ["y" * 100, "y" * 98 + "-2"])
        self.assertTrue(all(len(n) <= 100 for n in long))


class StratifiedTest(unittest.TestCase):
    LABELS = [0] * 600 + [1] * 300 + [2] * 100

    def _counts(self, idx, labels):
        out = {}
        for i in idx:
            out[labels[i]] = out.get(labels[i], 0) + 1
        return out

    def test_class_shares_kept(self):
        labels = self.LABELS[::-1]  # order must not matter
        idx = fe.stratified_indices(labels, 100, seed=3)
        self.assertEqual(len(idx), 100)
        self.assertEqual(idx, sorted(set(idx)))
        self.assertEqual(self._counts(idx, labels), {0: 60, 1: 30, 2: 10})

    def test_largest_remainder_and_min_one(self):
        idx = fe.stratified_indices(self.LABELS, 7, seed=0)  # 4.2, 2.1, 0.7
        self.assertEqual(self._counts(idx, self.LABELS), {0: 4, 1: 2, 2: 1})
        labels = [0] * 98 + [1] + [2]
        idx = fe.stratified_indices(labels, 10, seed=0)
        self.assertEqual(self._counts(idx, labels), {0: 8, 1: 1, 2: 1})
        self.assertEqual(len(fe.stratified_indices(labels, 2, seed=0)), 2)

    def test_deterministic_per_seed(self):
        a = fe.stratified_indices(self.LABELS, 50, seed=1)
        self.assertEqual(a, fe.stratified_indices(self.LABELS, 50, seed=1))
        self.assertNotEqual(a, fe.stratified_indices(self.LABELS, 50, seed=2))
        # stable across Python runs/versions: string seeding is SHA-512 based
        self.assertEqual(fe.stratified_indices(list(range(5)) * 2, 5, seed=0),
                         fe.stratified_indices(list(range(5)) * 2, 5, seed=0))

    def test_same_indices_align_layers(self):
        labels = [i % 3 for i in range(30)]
        layers = {"input": [[float(i), float(-i)] for i in range(30)],
                  "fc1": [[float(i) * 10] for i in range(30)]}
        idx = fe.stratified_indices(labels, 9, seed=5)
        sub = {k: [v[i] for i in idx] for k, v in layers.items()}
        for row_in, row_fc in zip(sub["input"], sub["fc1"]):
            self.assertEqual(row_in[0] * 10, row_fc[0])
        self.assertEqual([labels[i] for i in idx].count(0), 3)

    def test_all_or_invalid(self):
        self.assertEqual(fe.stratified_indices([1, 0, 1], None), [0, 1, 2])
        self.assertEqual(fe.stratified_indices([1, 0, 1], 10), [0, 1, 2])
        with self.assertRaises(ValueError):
            fe.stratified_indices([1, 0, 1], 0)


def _import_torch(test):
    try:
        import torch
    except ImportError as e:
        test.skipTest("torch is not installed: %s" % e)
    return torch


class TorchExportTest(unittest.TestCase):
    def setUp(self):
        torch = self.torch = _import_torch(self)
        from torch import nn

        self.nn = nn
        torch.manual_seed(0)
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "layers.npz")

    def tearDown(self):
        self.dir.cleanup()

    def _loader(self, x, y, batch=16):
        ds = self.torch.utils.data.TensorDataset(x, y)
        return self.torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False)

    def _mlp_data(self, n_train=50, n_test=40):
        t = self.torch
        xtr, xte = t.randn(n_train, 6), t.randn(n_test, 6)
        ytr, yte = t.randint(0, 3, (n_train,)), t.randint(0, 3, (n_test,))
        return xtr, ytr, xte, yte

    def _mlp(self):
        nn = self.nn
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))

    def _hooks_left(self, model):
        return sum(len(m._forward_hooks) for m in model.modules())

    def test_mlp_contents(self):
        t, F = self.torch, self.torch.nn.functional
        model = self._mlp()
        model.train()
        xtr, ytr, xte, yte = self._mlp_data()
        s = fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte), self.path)
        self.assertEqual(s["layers"], ["input", "0", "1", "2"])
        self.assertEqual((s["n_train"], s["n_test"]), (50, 40))
        self.assertEqual(s["shapes"], {"input": (6,), "0": (8,), "1": (8,), "2": (3,)})
        self.assertEqual(self._hooks_left(model), 0)
        self.assertTrue(model.training)  # mode restored
        members = ["train/input.npy", "train/0.npy", "train/1.npy", "train/2.npy",
                   "test/input.npy", "test/0.npy", "test/1.npy", "test/2.npy",
                   "train_labels.npy", "test_labels.npy", "train_loss.npy", "test_loss.npy",
                   "train_error.npy", "test_error.npy"]
        with zipfile.ZipFile(self.path) as z:
            self.assertEqual(z.namelist(), members)
        self.assertEqual(s["members"], members)
        got = fe.read_npz(self.path)
        self.assertEqual(got["train/input"][:2], ("float32", (50, 6)))
        self.assertEqual(got["test/2"][:2], ("float32", (40, 3)))
        self.assertEqual(got["train_labels"], ("int64", (50,), ytr.tolist()))
        self.assertEqual(got["test_labels"], ("int64", (40,), yte.tolist()))
        model.eval()
        with t.no_grad():
            for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
                logits = model(x)
                self.assertTrue(t.allclose(
                    t.tensor(got[split + "/2"][2]).reshape(-1, 3), logits, atol=1e-6))
                self.assertTrue(t.allclose(
                    t.tensor(got[split + "/1"][2]).reshape(-1, 8), t.relu(model[0](x))))
                ce = F.cross_entropy(logits, y, reduction="none").double()
                self.assertEqual(got[split + "_loss"][:2], ("float64", (len(y),)))
                loss = t.tensor(got[split + "_loss"][2], dtype=t.float64)
                self.assertTrue(t.allclose(loss, ce, atol=1e-6))
                err = (logits.argmax(1) != y).double()
                self.assertEqual(got[split + "_error"][2], err.tolist())
        self.assertAlmostEqual(s["test_error"], sum(got["test_error"][2]) / 40)

    def test_cnn_contents_float16_and_subsample(self):
        t, nn = self.torch, self.nn
        model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(),
                              nn.Linear(2 * 6 * 6, 4), nn.ReLU(inplace=True),
                              nn.Linear(4, 2))
        xtr, xte = t.randn(60, 1, 8, 8), t.randn(30, 1, 8, 8)
        ytr = t.tensor([0] * 45 + [1] * 15)
        yte = t.tensor([0, 1] * 15)
        s = fe.export_layers(model, self._loader(xtr, ytr, 7), self._loader(xte, yte, 7),
                             self.path, max_points=20, seed=4, dtype="float16")
        self.assertEqual(s["layers"], ["input", "0", "1", "2", "3", "4", "5"])
        self.assertEqual(s["shapes"]["input"], (64,))
        self.assertEqual(s["shapes"]["0"], (72,))
        self.assertEqual((s["n_train"], s["n_test"]), (20, 20))
        got = fe.read_npz(self.path)
        self.assertEqual(got["train/0"][:2], ("float16", (20, 72)))
        self.assertEqual(got["test/5"][:2], ("float16", (20, 2)))
        labels = got["train_labels"][2]
        self.assertEqual((labels.count(0), labels.count(1)), (15, 5))
        idx = fe.stratified_indices(ytr.tolist(), 20, seed="4/train")
        self.assertEqual(labels, [ytr.tolist()[i] for i in idx])
        # same examples in every layer: recompute the layers from the exported inputs
        x = t.tensor(got["train/input"][2], dtype=t.float32).reshape(20, 1, 8, 8)
        self.assertTrue(t.equal(x, xtr[idx].half().float()))
        model.eval()
        with t.no_grad():
            h3 = model[3](model[2](model[1](model[0](xtr[idx]))))
        out3 = t.tensor(got["train/3"][2]).reshape(20, 4)
        self.assertTrue(t.allclose(out3, h3.half().float(), atol=1e-3))  # before in-place ReLU
        self.assertLess(out3.min().item(), 0)
        ce = t.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx], reduction="none")
        loss = t.tensor(got["train_loss"][2], dtype=t.float64)
        self.assertTrue(t.allclose(loss, ce.double(), atol=1e-5))
        again = os.path.join(self.dir.name, "again.npz")
        fe.export_layers(model, self._loader(xtr, ytr, 7), self._loader(xte, yte, 7),
                         again, max_points=20, seed=4, dtype="float16")
        with open(self.path, "rb") as f1, open(again, "rb") as f2:
            self.assertEqual(f1.read(), f2.read())  # deterministic

    def test_module_selection_order_reuse_and_lipschitz(self):
        t, nn = self.torch, self.nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.head = nn.Linear(4, 2)   # registered first, runs last
                self.body = nn.Linear(6, 4)
                self.act = nn.ReLU()          # called twice

            def forward(self, x):
                return self.head(self.act(self.act(self.body(x)) - 1))

        model = Net()
        xtr, ytr, xte, yte = self._mlp_data()
        ytr, yte = ytr % 2, yte % 2
        s = fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte),
                             self.path, include_input=False, lipschitz={"head": 1.5})
        self.assertEqual(s["layers"], ["body", "act", "act-2", "head"])
        self.assertEqual(s["modules"]["act-2"], "act")
        names = fe.read_npz(self.path)
        self.assertEqual(names["lipschitz/head"], ("float64", (), [1.5]))
        self.assertEqual(list(names)[-1], "lipschitz/head")
        s = fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte),
                             self.path, modules=["head", model.body])
        self.assertEqual(s["layers"], ["input", "body", "head"])
        s = fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte),
                             self.path, modules=[model], include_input=False)
        self.assertEqual(s["layers"], ["output"])
        with self.assertRaisesRegex(ValueError, "no module named"):
            fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte),
                             self.path, modules=["nope"])
        with self.assertRaisesRegex(ValueError, "lipschitz"):
            fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte),
                             self.path, lipschitz={"fc9": 1.0})
        self.assertEqual(self._hooks_left(model), 0)

    def test_tensor_bytes_without_numpy(self):
        t = self.torch
        from unittest import mock

        x = t.arange(12, dtype=t.float32).reshape(3, 4)[:, 1:]  # non-contiguous view
        expect = fe.npy_bytes(x.tolist(), dtype="float32")
        self.assertEqual(fe.npy_bytes(x), expect)
        with mock.patch.object(t.Tensor, "numpy", side_effect=RuntimeError("no numpy")):
            self.assertEqual(fe.npy_bytes(x), expect)
            self.assertEqual(fe.read_npy(fe.npy_bytes(x, dtype="float16"))[2],
                             [float(v) for v in x.flatten().tolist()])
        self.assertEqual(fe.read_npy(fe.npy_bytes(t.tensor(3, dtype=t.int64))),
                         ("int64", (), [3]))
        self.assertEqual(fe.read_npy(fe.npy_bytes(x.bfloat16()))[0], "float32")

    def test_inplace_relu_does_not_alter_captured_output(self):
        t, nn = self.torch, self.nn
        model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(inplace=True), nn.Linear(4, 2))
        xtr, ytr, xte, yte = self._mlp_data()
        fe.export_layers(model, self._loader(xtr, ytr % 2), self._loader(xte, yte % 2),
                         self.path)  # float32: no dtype conversion copies by accident
        got = t.tensor(fe.read_npz(self.path)["train/0"][2]).reshape(-1, 4)
        with t.no_grad():
            self.assertTrue(t.allclose(got, model[0](xtr), atol=1e-6))
        self.assertLess(got.min().item(), 0)

    def test_custom_loss_fn(self):
        t = self.torch
        model = self._mlp()
        xtr, ytr, xte, yte = self._mlp_data()

        def hinge(logits, y):
            return t.relu(1 - logits.gather(1, y[:, None])[:, 0])

        fe.export_layers(model, self._loader(xtr, ytr), self._loader(xte, yte), self.path,
                         loss_fn=hinge)
        with t.no_grad():
            expect = hinge(model(xte), yte).double()
        got = fe.read_npz(self.path)["test_loss"][2]
        self.assertTrue(t.allclose(t.tensor(got, dtype=t.float64), expect, atol=1e-6))

    def test_errors_are_clear_and_remove_hooks(self):
        t, nn = self.torch, self.nn
        xtr, ytr, xte, yte = self._mlp_data()
        good = self._loader(xte, yte)

        model = self._mlp()
        x_only = t.utils.data.DataLoader(t.utils.data.TensorDataset(xtr), batch_size=8)
        with self.assertRaisesRegex(ValueError, r"expected \(inputs, labels\)"):
            fe.export_layers(model, x_only, good, self.path)
        triple = [(xtr, ytr, ytr)]
        with self.assertRaisesRegex(ValueError, r"expected \(inputs, labels\)"):
            fe.export_layers(model, triple, good, self.path)
        with self.assertRaisesRegex(ValueError, "labels have shape"):
            fe.export_layers(model, [(xtr, ytr[:-1])], good, self.path)
        with self.assertRaisesRegex(TypeError, "integer class indices"):
            fe.export_layers(model, [(xtr, ytr.float())], good, self.path)
        with self.assertRaisesRegex(ValueError, "no examples"):
            fe.export_layers(model, [], good, self.path)
        self.assertEqual(self._hooks_left(model), 0)

        class Unused(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(6, 3)
                self.spare = nn.Linear(3, 3)

            def forward(self, x):
                return self.fc(x)

        unused = Unused()
        with self.assertRaisesRegex(RuntimeError, "'spare' never fired"):
            fe.export_layers(unused, self._loader(xtr, ytr), good, self.path)
        self.assertEqual(self._hooks_left(unused), 0)

        class DictOut(nn.Module):
            def forward(self, x):
                return {"h": x}

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.d = DictOut()
                self.fc = nn.Linear(6, 3)

            def forward(self, x):
                return self.fc(self.d(x)["h"])

        net = Net()
        with self.assertRaisesRegex(TypeError, "module 'd' .*not a tensor"):
            fe.export_layers(net, self._loader(xtr, ytr), good, self.path)
        self.assertEqual(self._hooks_left(net), 0)
        self.assertFalse(os.path.exists(self.path))
        self.assertFalse(os.path.exists(self.path + ".part"))

        with self.assertRaisesRegex(ValueError, "loss_fn must return one loss per example"):
            fe.export_layers(model, self._loader(xtr, ytr), good, self.path,
                             loss_fn=t.nn.functional.cross_entropy)
        with self.assertRaisesRegex(ValueError, "outputs only 3 classes"):
            fe.export_layers(model, [(xtr, ytr + 5)], good, self.path)
        with self.assertRaisesRegex(ValueError, "dtype"):
            fe.export_layers(model, good, good, self.path, dtype="int8")
        self.assertEqual(self._hooks_left(model), 0)


if __name__ == "__main__":
    unittest.main()
