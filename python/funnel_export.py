"""Export every layer's train and test activations of a PyTorch model to an
``.npz`` file for ``funnel layers FILE.npz``.

Single file, standard library only at module level; ``torch`` is imported
lazily inside :func:`export_layers`.  Numpy is never required: the ``.npy`` /
``.npz`` writer and reader below are pure standard library (numpy arrays and
torch tensors are accepted as inputs when those libraries are present).

The file format (the contract with the Rust reader):

* ``train/<layer>.npy`` and ``test/<layer>.npy`` for every captured layer, all
  ``train/...`` members first in the network's forward order, then all
  ``test/...`` members in the same order.  Shape ``(n, width)``: one example
  per leading index, dtype float32 (``dtype="float16"`` or ``"float64"`` on
  request).
* ``train_labels.npy``, ``test_labels.npy``: 1-D int64 class indices 0..K-1.
* ``train_loss.npy``, ``test_loss.npy``: 1-D float64 per-example loss
  (cross-entropy by default).
* ``train_error.npy``, ``test_error.npy``: 1-D float64 per-example 0-1 loss
  (1 = misclassified); written when the model's output is ``(batch, classes)``
  logits with at least 2 classes.
* ``lipschitz/<layer>.npy``: 0-d float64, only for layers given in
  ``lipschitz=``.

NPY format version 1.0, little-endian, C order; members stored uncompressed
(``ZIP_STORED``) unless ``compress=True`` (``ZIP_DEFLATED``).

Command line: ``python3 funnel_export.py FILE.npz`` lists the members of an
``.npz`` (name, dtype, shape) without reading their data.
"""

import array
import ast
import io
import math
import operator
import os
import random
import re
import struct
import sys
import zipfile

__all__ = [
    "DTYPES",
    "npy_header",
    "npy_bytes",
    "write_npy",
    "read_npy",
    "NpzWriter",
    "write_npz",
    "read_npz",
    "describe_npz",
    "sanitize_name",
    "unique_names",
    "stratified_indices",
    "export_layers",
]

MAX_NAME_LEN = 100
NPY_MAGIC = b"\x93NUMPY"

# name -> (npy descr, struct format character, itemsize)
DTYPES = {
    "bool": ("|b1", "?", 1),
    "int8": ("|i1", "b", 1),
    "uint8": ("|u1", "B", 1),
    "int16": ("<i2", "h", 2),
    "uint16": ("<u2", "H", 2),
    "int32": ("<i4", "i", 4),
    "uint32": ("<u4", "I", 4),
    "int64": ("<i8", "q", 8),
    "uint64": ("<u8", "Q", 8),
    "float16": ("<f2", "e", 2),
    "float32": ("<f4", "f", 4),
    "float64": ("<f8", "d", 8),
}

_ALIASES = {
    "half": "float16", "float": "float32", "single": "float32",
    "double": "float64", "long": "int64", "int": "int64", "short": "int16",
    "b1": "bool", "?": "bool",
}
# "<f4", "|u1", "=i8", "f4", ... -> name
for _name, (_descr, _ch, _size) in DTYPES.items():
    for _prefix in ("", "<", "|", "="):
        _ALIASES[_prefix + _descr[1:]] = _name

# array.array typecode -> dtype name (by the platform's item size)
_ARRAY_CODES = {"b": "int8", "B": "uint8", "f": "float32", "d": "float64"}
for _code in "hilq":
    _ARRAY_CODES[_code] = "int%d" % (8 * array.array(_code).itemsize)
    _ARRAY_CODES[_code.upper()] = "uint%d" % (8 * array.array(_code.upper()).itemsize)

# same-size unsigned typecodes, used only to byte-swap raw buffers
_SWAP_CODES = {2: "H", 4: "I" if array.array("I").itemsize == 4 else "L", 8: "Q"}

_PACK_CHUNK = 1 << 16


def _dtype_name(dtype):
    """Normalize a dtype given as a name, an npy descr, a numpy dtype or type,
    a torch dtype or a Python type (float, int, bool) to a key of DTYPES."""
    if dtype is float:
        return "float64"
    if dtype is int:
        return "int64"
    if dtype is bool:
        return "bool"
    if isinstance(dtype, str):
        key = dtype
    elif isinstance(dtype, type):  # numpy scalar types: numpy.float32
        key = dtype.__name__
    else:  # numpy.dtype('float32'), torch.float32
        key = str(dtype)
        if key.startswith("torch."):
            key = key[len("torch."):]
    key = key.strip().lower() if key not in _ALIASES else key
    if key.startswith("dtype(") and key.endswith(")"):
        key = key[6:-1].strip("'\"")
    key = _ALIASES.get(key, key)
    if key == "bool_":
        key = "bool"
    if key not in DTYPES:
        raise ValueError(
            "unsupported dtype %r: use one of %s" % (dtype, ", ".join(DTYPES))
        )
    return key


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _check_shape(shape):
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError("shape must be a sequence of integers, got %r" % (shape,))
    if any(s < 0 for s in shape):
        raise ValueError("shape must not have negative entries, got %r" % (shape,))
    return shape


def npy_header(descr, shape, fortran_order=False):
    """The NPY 1.0 header (magic, version, length, dict) for an array of npy
    ``descr`` (e.g. '<f4') and ``shape``; padded with spaces so that the
    header, including its trailing newline, ends on a multiple of 64 bytes.

    Byte for byte what numpy.save writes: numpy also leaves room for the
    first axis to grow to 21 digits, and pads 1..64 spaces (never 0)."""
    if descr not in [d for d, _, _ in DTYPES.values()]:
        descr = DTYPES[_dtype_name(descr)][0]
    shape = _check_shape(shape)
    text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (
        descr, bool(fortran_order), shape)
    if shape:
        text += " " * (21 - len(repr(shape[-1 if fortran_order else 0])))
    raw = text.encode("latin1")
    pad = 64 - (len(NPY_MAGIC) + 2 + 2 + len(raw) + 1) % 64
    raw = raw + b" " * pad + b"\n"
    if len(raw) > 0xFFFF:
        raise ValueError("npy header too long for format version 1.0")
    return NPY_MAGIC + b"\x01\x00" + struct.pack("<H", len(raw)) + raw


def _flatten(obj):
    """Nested lists/tuples of scalars -> (shape, flat list); rectangular only."""
    if isinstance(obj, (list, tuple)):
        if len(obj) == 0:
            return (0,), []
        shape = None
        flat = []
        for el in obj:
            s, f = _flatten(el)
            if shape is None:
                shape = s
            elif s != shape:
                raise ValueError(
                    "ragged nested list: elements of shapes %r and %r" % (shape, s))
            flat.extend(f)
        return (len(obj),) + shape, flat
    return (), [obj]


def _infer_list_dtype(flat):
    if flat and all(isinstance(v, bool) for v in flat):
        return "bool"
    if flat and all(not isinstance(v, (bool, float)) and _is_int(v) for v in flat):
        return "int64"
    return "float64"


def _is_int(v):
    try:
        operator.index(v)
        return True
    except TypeError:
        return False


def _pack(flat, name):
    ch = DTYPES[name][1]
    out = []
    for start in range(0, len(flat), _PACK_CHUNK):
        chunk = flat[start:start + _PACK_CHUNK]
        try:
            out.append(struct.pack("<%d%s" % (len(chunk), ch), *chunk))
        except (struct.error, OverflowError, TypeError) as e:
            raise ValueError("cannot store these values as %s: %s" % (name, e))
    return b"".join(out)


def _little_endian(buf, itemsize):
    """Raw native-order bytes -> little-endian bytes."""
    if sys.byteorder == "little" or itemsize == 1:
        return buf
    a = array.array(_SWAP_CODES[itemsize])
    a.frombytes(bytes(buf))
    a.byteswap()
    return a.tobytes()


def _is_torch_tensor(obj):
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach") \
        and hasattr(obj, "untyped_storage")


def _is_numpy_array(obj):
    return hasattr(obj, "__array_interface__") and hasattr(obj, "astype") \
        and hasattr(obj, "dtype") and hasattr(obj, "shape")


def _torch_buffer(t):
    """A contiguous CPU tensor -> its raw bytes (a memoryview where numpy
    is available, else a copy of its storage)."""
    if t.numel() == 0:
        return b""
    try:
        return memoryview(t.numpy()).cast("B")
    except (RuntimeError, TypeError, ValueError):  # numpy missing
        return bytes(t.clone().untyped_storage())


def _prepare(data, dtype=None, shape=None):
    """Any supported input -> (dtype name, shape, little-endian C-order bytes).

    ``data``: a torch tensor, a numpy array, an ``array.array``, bytes /
    bytearray / memoryview (raw little-endian data; ``dtype`` defaults to
    float32), nested lists/tuples of numbers, or a single number (0-d).
    ``shape``, when given, reshapes (the element count must match)."""
    if shape is not None:
        shape = _check_shape(shape)
    name = None if dtype is None else _dtype_name(dtype)

    if _is_torch_tensor(data):
        import torch

        if name is None:
            src = str(data.dtype)[len("torch."):]
            if src == "bfloat16":
                src = "float32"
            name = _dtype_name(src)
        t = data.detach().to("cpu", dtype=getattr(torch, name)).contiguous()
        src_shape = tuple(t.shape)
        buf = _little_endian(_torch_buffer(t), DTYPES[name][2])
    elif _is_numpy_array(data):
        if name is None:
            name = _dtype_name(data.dtype.name)  # .name: byte order dropped
        a = data.astype(DTYPES[name][0], order="C", copy=False)
        if not a.flags["C_CONTIGUOUS"]:
            a = a.copy(order="C")
        src_shape = tuple(a.shape)
        buf = memoryview(a).cast("B") if a.size else b""
    elif isinstance(data, array.array):
        src = _ARRAY_CODES.get(data.typecode)
        if src is None:
            raise TypeError("unsupported array.array typecode %r" % data.typecode)
        src_shape = (len(data),)
        if name is None or name == src:
            name = src
            buf = _little_endian(data.tobytes(), data.itemsize)
        else:
            buf = _pack(data.tolist(), name)
    elif isinstance(data, (bytes, bytearray, memoryview)):
        if name is None:
            name = "float32"
        buf = memoryview(data).cast("B")
        size = DTYPES[name][2]
        if len(buf) % size:
            raise ValueError("%d bytes is not a whole number of %s items"
                             % (len(buf), name))
        src_shape = (len(buf) // size,)
        if shape is None:
            shape = src_shape
    else:
        src_shape, flat = _flatten(data)
        if name is None:
            name = _infer_list_dtype(flat)
        buf = _pack(flat, name)

    if shape is None:
        shape = src_shape
    elif _prod(shape) != _prod(src_shape):
        raise ValueError("cannot give %d elements the shape %r"
                         % (_prod(src_shape), shape))
    if len(buf) != _prod(shape) * DTYPES[name][2]:  # internal consistency
        raise ValueError("data has %d bytes, shape %r of %s needs %d"
                         % (len(buf), shape, name, _prod(shape) * DTYPES[name][2]))
    return name, shape, buf


def npy_bytes(data, dtype=None, shape=None):
    """The complete ``.npy`` file (NPY 1.0) for ``data`` as bytes.

    ``dtype`` None keeps a tensor's / numpy array's / array.array's dtype
    (bfloat16 becomes float32), infers bool / int64 / float64 for Python
    numbers, and means float32 for raw bytes."""
    name, shape, buf = _prepare(data, dtype, shape)
    return npy_header(DTYPES[name][0], shape) + bytes(buf)


def write_npy(file, data, dtype=None, shape=None):
    """Write ``data`` as a ``.npy`` file to a path or a binary file object."""
    name, shape, buf = _prepare(data, dtype, shape)
    header = npy_header(DTYPES[name][0], shape)
    if hasattr(file, "write"):
        file.write(header)
        file.write(buf)
    else:
        with open(file, "wb") as f:
            f.write(header)
            f.write(buf)


def _parse_header(f):
    magic = f.read(6)
    if magic != NPY_MAGIC:
        raise ValueError("not an .npy file (bad magic %r)" % magic)
    major, _minor = struct.unpack("<BB", f.read(2))
    if major == 1:
        (hlen,) = struct.unpack("<H", f.read(2))
    elif major in (2, 3):
        (hlen,) = struct.unpack("<I", f.read(4))
    else:
        raise ValueError("unsupported .npy format version %d" % major)
    header = ast.literal_eval(f.read(hlen).decode("utf-8" if major == 3 else "latin1"))
    if not isinstance(header, dict) or not {"descr", "fortran_order", "shape"} <= set(header):
        raise ValueError("malformed .npy header %r" % (header,))
    descr = header["descr"]
    if not isinstance(descr, str):
        raise ValueError("unsupported .npy descr %r" % (descr,))
    big = descr.startswith(">")
    name = _dtype_name("<" + descr[1:] if big else descr)
    return name, big, tuple(header["shape"]), bool(header["fortran_order"])


def read_npy(data):
    """Parse an ``.npy`` file (bytes or a binary file object) into
    ``(dtype name, shape, flat list of values in C order)``."""
    f = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    name, big, shape, fortran = _parse_header(f)
    if fortran and len(shape) > 1:
        raise ValueError("fortran_order=True arrays are not supported")
    n = _prod(shape)
    _, ch, size = DTYPES[name]
    raw = f.read(n * size)
    if len(raw) != n * size:
        raise ValueError("truncated .npy data: %d of %d bytes" % (len(raw), n * size))
    flat = list(struct.unpack("%s%d%s" % (">" if big else "<", n, ch), raw))
    return name, shape, flat


class NpzWriter:
    """Write ``.npy`` members into a zip (``.npz``) in the order they are added.

    >>> with NpzWriter("/tmp/x.npz") as w:
    ...     w.add("train_labels", [0, 1, 1], dtype="int64")

    Member names get ``.npy`` appended when missing; a repeated name is an
    error.  Stored uncompressed by default (``compress=True``: deflated).
    Entries carry a fixed timestamp, so equal inputs give equal files."""

    def __init__(self, file, compress=False):
        self.compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        self._zip = zipfile.ZipFile(file, "w", compression=self.compression,
                                    allowZip64=True)
        self.names = []

    def add(self, name, data, dtype=None, shape=None):
        """Add one member; returns its name in the archive."""
        if not name.endswith(".npy"):
            name += ".npy"
        if name in self.names:
            raise ValueError("duplicate .npz member %r" % name)
        dname, shape, buf = _prepare(data, dtype, shape)
        header = npy_header(DTYPES[dname][0], shape)
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = self.compression
        info.external_attr = 0o644 << 16
        info.file_size = len(header) + len(buf)  # lets zipfile choose zip64
        with self._zip.open(info, "w") as f:
            f.write(header)
            f.write(buf)
        self.names.append(name)
        return name

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def write_npz(file, arrays, compress=False):
    """Write ``arrays`` (a mapping, or an iterable of (name, data) pairs, in
    member order) to an ``.npz``; returns the member names."""
    items = arrays.items() if hasattr(arrays, "items") else arrays
    with NpzWriter(file, compress=compress) as w:
        for name, data in items:
            w.add(name, data)
        return list(w.names)


def read_npz(path):
    """Read every ``.npy`` member of an ``.npz``: an ordered dict (archive
    order) from the member name without ``.npy`` (e.g. ``"train/fc1"``) to
    ``(dtype name, shape, flat list)``.  Meant for tests and small files."""
    out = {}
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with z.open(info) as f:
                out[info.filename[:-4]] = read_npy(f.read())
    return out


def describe_npz(path):
    """``[(member name, dtype name, shape), ...]`` in archive order, reading
    only the headers."""
    out = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename.endswith(".npy"):
                with z.open(info) as f:
                    name, _big, shape, _fortran = _parse_header(f)
                out.append((info.filename, name, shape))
    return out


_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def sanitize_name(name):
    """A layer name the reader accepts: 1-100 characters of ASCII letters,
    digits, '.', '_' and '-'; others become '_' ('' becomes '_')."""
    name = _BAD_CHARS.sub("_", str(name))[:MAX_NAME_LEN]
    return name or "_"


def unique_names(names):
    """Sanitize each name and make repeats distinct with '-2', '-3', ...
    suffixes (in order, the first occurrence keeps its name)."""
    out, taken = [], set()
    for name in names:
        base = sanitize_name(name)
        cand, k = base, 1
        while cand in taken:
            k += 1
            suffix = "-%d" % k
            cand = base[:MAX_NAME_LEN - len(suffix)] + suffix
        taken.add(cand)
        out.append(cand)
    return out


def stratified_indices(labels, max_points, seed=0):
    """Indices (sorted ascending) of at most ``max_points`` examples, drawn
    without replacement within each class so that class shares are kept.

    Each class gets floor(max_points * n_c / n) examples, the remaining slots
    going to the largest remainders (ties: smaller class label first); when
    ``max_points`` is at least the number of classes every class keeps at
    least one example.  Deterministic for a given ``seed`` (an int or str).
    ``max_points`` None, or >= len(labels), keeps every index."""
    labels = [operator.index(y) for y in labels]
    n = len(labels)
    if max_points is not None and (isinstance(max_points, bool)
                                   or operator.index(max_points) < 1):
        raise ValueError("max_points must be a positive integer, got %r" % (max_points,))
    if max_points is None or max_points >= n:
        return list(range(n))
    by_class = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    classes = sorted(by_class)
    quota = {c: max_points * len(by_class[c]) // n for c in classes}
    left = max_points - sum(quota.values())
    order = sorted(classes, key=lambda c: (-(max_points * len(by_class[c]) % n), c))
    for c in order[:left]:
        quota[c] += 1
    if max_points >= len(classes):
        for c in classes:
            if quota[c] == 0:  # take a slot from the class with the most
                donor = max(classes, key=lambda d: (quota[d], -d))
                quota[donor] -= 1
                quota[c] = 1
    rng = random.Random("funnel:%s" % (seed,))
    chosen = []
    for c in classes:
        chosen.extend(rng.sample(by_class[c], quota[c]))
    return sorted(chosen)


# ----------------------------------------------------------------------------
# PyTorch export


def _first_tensor(out, what):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for el in out:
            if isinstance(el, torch.Tensor):
                return el
    raise TypeError(
        "%s returned %s, not a tensor (nor a tuple/list holding one): "
        "select other modules with modules=[...]" % (what, type(out).__name__))


def _resolve_modules(model, modules):
    import torch

    named = list(model.named_modules())
    if modules is None:
        return [(n, m) for n, m in named if next(m.children(), None) is None]
    if isinstance(modules, (str, torch.nn.Module)):
        modules = [modules]
    by_name = dict(named)
    by_id = {id(m): n for n, m in named}
    selected, seen = [], set()
    for item in modules:
        if isinstance(item, str):
            if item not in by_name:
                some = ", ".join(repr(n) for n, _ in named[1:11])
                raise ValueError("model has no module named %r (some names: %s)"
                                 % (item, some))
            name, mod = item, by_name[item]
        elif isinstance(item, torch.nn.Module):
            if id(item) not in by_id:
                raise ValueError("module %s is not part of the model"
                                 % type(item).__name__)
            name, mod = by_id[id(item)], item
        else:
            raise TypeError("modules must hold module names or modules, got %s"
                            % type(item).__name__)
        if id(mod) in seen:
            raise ValueError("module %r selected twice" % name)
        seen.add(id(mod))
        selected.append((name, mod))
    return selected


def _check_export_dtype(dtype):
    name = _dtype_name(dtype)
    if name not in ("float16", "float32", "float64"):
        raise ValueError("dtype must be float16, float32 or float64, got %r" % (dtype,))
    return name


class _Split:
    def __init__(self):
        self.layers = {}  # key -> list of (b, width) CPU tensors
        self.widths = {}
        self.labels, self.loss, self.error = [], [], []
        self.n = 0


def _run_split(model, loader, split, state, include_input, loss_fn, default_loss,
               tdtype, device, layout):
    """One pass over a loader; fills and returns a _Split and the layout (the
    (module index, call number) keys of the hooked calls in firing order)."""
    import torch

    out = _Split()
    for bi, batch in enumerate(loader):
        where = "%s_loader batch %d" % (split, bi)
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            kind = type(batch).__name__
            if isinstance(batch, (tuple, list)):
                kind = "a %s of %d items" % (kind, len(batch))
            raise ValueError("%s: expected (inputs, labels), got %s" % (where, kind))
        x, y = batch
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise TypeError("%s: inputs must be a tensor with a batch dimension, got %s"
                            % (where, type(x).__name__))
        y = torch.as_tensor(y)
        b = x.shape[0]
        if b == 0:
            continue
        if y.dim() != 1 or y.shape[0] != b:
            raise ValueError("%s: labels have shape %s but inputs have %d examples "
                             "(labels must be 1-D, one per example)"
                             % (where, tuple(y.shape), b))
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise TypeError("%s: labels must be integer class indices, got %s"
                            % (where, y.dtype))
        y = y.to("cpu", dtype=torch.int64)
        if int(y.min()) < 0:
            raise ValueError("%s: labels must be >= 0" % where)

        state["calls"], state["batch"] = [], b
        result = model(x.to(device))
        calls = state["calls"]
        counts, keys = {}, []
        for i, _t in calls:
            keys.append((i, counts.get(i, 0)))
            counts[i] = counts.get(i, 0) + 1
        if layout is None:
            missing = [state["names"][i] for i in range(len(state["names"]))
                       if i not in counts]
            if missing:
                raise RuntimeError(
                    "%s: module(s) %s never fired during the forward pass (not used "
                    "in forward()?): select others with modules=[...]"
                    % (where, ", ".join(repr(m) for m in missing)))
            layout = keys
        elif sorted(keys) != sorted(layout):
            raise RuntimeError(
                "%s: the hooked modules fired differently than in the first training "
                "batch (calls per module %s vs %s): the exporter needs the same "
                "modules called the same number of times on every batch"
                % (where, _count_names(keys, state), _count_names(layout, state)))

        entries = [("input", x.detach().reshape(b, -1).to("cpu", tdtype, copy=True))] \
            if include_input else []
        entries += [(k, t) for k, (_i, t) in zip(keys, calls)]
        for key, t in entries:
            w = t.shape[1]
            if out.widths.setdefault(key, w) != w:
                name = "input" if key == "input" else state["names"][key[0]]
                raise ValueError("%s: %s has %d values per example here but %d in "
                                 "earlier batches" % (where, name, w, out.widths[key]))
            out.layers.setdefault(key, []).append(t)

        logits = _first_tensor(result, "the model")
        if default_loss:
            if logits.dim() != 2:
                raise ValueError(
                    "%s: the model's output has shape %s; the default loss "
                    "(cross-entropy) needs logits of shape (batch, classes): pass "
                    "loss_fn=" % (where, tuple(logits.shape)))
            if int(y.max()) >= logits.shape[1]:
                raise ValueError("%s: label %d but the model outputs only %d classes"
                                 % (where, int(y.max()), logits.shape[1]))
        loss = loss_fn(logits, y.to(logits.device))
        if not isinstance(loss, torch.Tensor) or tuple(loss.shape) != (b,):
            raise ValueError(
                "%s: loss_fn must return one loss per example, shape (%d,) "
                "(reduction='none'), got %s" % (
                    where, b, tuple(loss.shape) if isinstance(loss, torch.Tensor)
                    else type(loss).__name__))
        out.loss.append(loss.detach().to("cpu", torch.float64))
        if logits.dim() == 2 and logits.shape[0] == b and logits.shape[1] >= 2:
            out.error.append((logits.argmax(dim=1).cpu() != y).to(torch.float64))
        out.labels.append(y)
        out.n += b
    if out.n == 0:
        raise ValueError("%s_loader yielded no examples" % split)
    if len(out.error) != len(out.labels):
        out.error = []  # not logits on every batch: no 0-1 loss
    return out, layout


def _count_names(keys, state):
    counts = {}
    for i, _k in keys:
        counts[state["names"][i]] = counts.get(state["names"][i], 0) + 1
    return counts


def export_layers(model, train_loader, test_loader, path, modules=None,
                  include_input=True, max_points=None, seed=0, loss_fn=None,
                  dtype="float32", device="cpu", lipschitz=None, compress=False):
    """Capture every layer's activations on the train and test data and write
    them, with labels and per-example losses, to the ``.npz`` at ``path``.

    model         a torch.nn.Module already on ``device``; run in eval() mode
                  under torch.no_grad() (its training mode is restored after).
    train_loader, test_loader
                  iterables of (inputs, labels) batches: inputs a tensor with
                  the batch first, labels 1-D integer class indices.
    modules       None: every leaf module (no children); else a list of module
                  names (as in named_modules()) and/or module objects.  Layers
                  are written in the order they fire in the forward pass; a
                  module called k times per forward gives k layers, named
                  NAME, NAME-2, ...  The model itself (name '') is "output".
    include_input also write the flattened inputs as the first layer "input".
    max_points    keep at most this many examples per split, stratified by
                  class, the same examples for every layer (seeded by ``seed``).
    loss_fn       f(outputs, labels) -> per-example losses of shape (batch,);
                  default cross_entropy(outputs, labels, reduction="none").
    dtype         "float32" (default), "float16" or "float64" for activations.
    lipschitz     optional {layer name: Lipschitz constant of the loss w.r.t.
                  that layer}, written as lipschitz/<layer>.npy.
    compress      deflate the members (default: stored).

    Each layer is stored flattened, shape (n, width).  The whole split is held
    in memory (in ``dtype``) before subsampling: for large data sets pass
    loaders over a subset.  Returns a summary dict: path, layers, modules
    (layer -> module name), shapes (layer -> per-example shape), n_train,
    n_test, dtype, members, bytes, and the mean train/test loss and 0-1 error
    over every example seen (before subsampling; error None without logits).
    """
    import torch
    import torch.nn.functional as F

    dtype = _check_export_dtype(dtype)
    tdtype = getattr(torch, dtype)
    if max_points is not None and (isinstance(max_points, bool)
                                   or operator.index(max_points) < 1):
        raise ValueError("max_points must be a positive integer or None")
    device = torch.device(device)
    for p in list(model.parameters()) + list(model.buffers()):
        if p.device.type != device.type:
            raise ValueError("the model is on %s but device=%r: move the model "
                             "(model.to(device)) or pass its device" % (p.device, str(device)))
    targets = _resolve_modules(model, modules)
    if not targets and not include_input:
        raise ValueError("nothing to export: no modules selected and include_input=False")
    default_loss = loss_fn is None
    if default_loss:
        def loss_fn(logits, y):
            return F.cross_entropy(logits, y, reduction="none")

    state = {"names": [n or "output" for n, _ in targets], "calls": [], "batch": 0}

    def make_hook(i):
        def hook(module, inputs, output):
            t = _first_tensor(output, "module %r (%s)" % (state["names"][i],
                                                          type(module).__name__))
            b = state["batch"]
            if t.dim() < 1 or t.shape[0] != b:
                raise ValueError(
                    "module %r output has shape %s but the batch has %d examples: "
                    "each layer needs one example per leading index"
                    % (state["names"][i], tuple(t.shape), b))
            # copy=True: a later in-place op (ReLU(inplace=True)) must not alter it
            state["calls"].append((i, t.detach().reshape(b, -1).to("cpu", tdtype,
                                                                    copy=True)))
        return hook

    was_training = model.training
    handles = []
    try:
        for i, (_name, mod) in enumerate(targets):
            handles.append(mod.register_forward_hook(make_hook(i)))
        model.eval()
        with torch.no_grad():
            args = (state, include_input, loss_fn, default_loss, tdtype, device)
            train, layout = _run_split(model, train_loader, "train", *args, layout=None)
            test, _ = _run_split(model, test_loader, "test", *args, layout=layout)
    finally:
        for h in handles:
            h.remove()
        state["calls"] = []
        model.train(was_training)

    keys = (["input"] if include_input else []) + list(layout)
    raw_names = ["input" if k == "input" else
                 state["names"][k[0]] + ("" if k[1] == 0 else "-%d" % (k[1] + 1))
                 for k in keys]
    names = unique_names(raw_names)
    module_of = {name: (None if k == "input" else targets[k[0]][0])
                 for name, k in zip(names, keys)}

    lip = {}
    for lname, value in (lipschitz or {}).items():
        if lname not in names:
            raise ValueError("lipschitz: no layer named %r (layers: %s)"
                             % (lname, ", ".join(names)))
        value = float(value)
        if not (math.isfinite(value) and value >= 0):
            raise ValueError("lipschitz[%r] must be finite and >= 0" % lname)
        lip[lname] = value

    splits = {}
    for split, data in (("train", train), ("test", test)):
        labels = torch.cat(data.labels)
        idx = stratified_indices(labels.tolist(), max_points, seed="%s/%s" % (seed, split))
        sel = torch.tensor(idx, dtype=torch.int64)
        loss = torch.cat(data.loss)
        error = torch.cat(data.error) if data.error else None
        splits[split] = {
            "layers": [torch.cat(data.layers[k]).index_select(0, sel) for k in keys],
            "labels": labels.index_select(0, sel),
            "loss": loss.index_select(0, sel),
            "error": None if error is None else error.index_select(0, sel),
            "loss_mean": float(loss.mean()),
            "error_mean": None if error is None else float(error.mean()),
        }
        data.layers = None

    path = os.fspath(path)
    tmp = path + ".part"
    try:
        with NpzWriter(tmp, compress=compress) as w:
            for split in ("train", "test"):
                for name, t in zip(names, splits[split]["layers"]):
                    w.add("%s/%s" % (split, name), t, dtype=dtype)
            for what, dt in (("labels", "int64"), ("loss", "float64"),
                             ("error", "float64")):
                for split in ("train", "test"):
                    if splits[split][what] is not None:
                        w.add("%s_%s" % (split, what), splits[split][what], dtype=dt)
            for name in names:
                if name in lip:
                    w.add("lipschitz/%s" % name, lip[name], dtype="float64")
            members = list(w.names)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

    return {
        "path": path,
        "layers": names,
        "modules": module_of,
        "shapes": {n: tuple(t.shape[1:]) for n, t in zip(names, splits["train"]["layers"])},
        "n_train": int(splits["train"]["labels"].shape[0]),
        "n_test": int(splits["test"]["labels"].shape[0]),
        "dtype": dtype,
        "members": members,
        "bytes": os.path.getsize(path),
        "train_loss": splits["train"]["loss_mean"],
        "test_loss": splits["test"]["loss_mean"],
        "train_error": splits["train"]["error_mean"],
        "test_error": splits["test"]["error_mean"],
    }


def _main(argv):
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python3 funnel_export.py FILE.npz   (lists the members)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    for name, dtype, shape in describe_npz(argv[0]):
        print("%-40s %-8s %s" % (name, dtype, shape))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
