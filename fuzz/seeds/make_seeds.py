#!/usr/bin/env python3
"""Writes the valid example inputs of every fuzz target into fuzz/seeds/<target>/ (the replay
test requires each to be accepted). Run from anywhere: python3 fuzz/seeds/make_seeds.py.
The corpus folders start from copies of these (see fuzz/README.md)."""

import gzip
import random
import struct
from pathlib import Path

here = Path(__file__).resolve().parent
root = here.parent.parent


def write(target, name, data):
    d = here / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


# ---- config: the shipped configs, one with --set overrides, one with CSV data
for cfg in sorted((root / "configs").glob("*.toml")):
    write("config", cfg.stem + ".toml", cfg.read_bytes())
quick = (root / "configs" / "quickstart.toml").read_bytes()
write("config", "quickstart-set", quick + b"\0train.epochs=3\0model.widths=[8,4]\0metrics.kl=knn")
write(
    "config",
    "csv-data.toml",
    'name = "csv"\n[data]\nkind = "csv"\npath = "data/train.csv"\nlabel_column = "label"\n'
    "test_fraction = 0.2\nstandardize = true\n[model]\nwidths = [16]\n"
    '[metrics]\nkl = "gaussian"\nw1 = "sliced"\n',
)

# ---- csv_data: options byte, then the file (see funnel::fuzzing::csv_data)
rng = random.Random(1)


def rows(n, header):
    out = ["x1,x2,label"] if header else []
    for i in range(n):
        y = i % 2
        out.append(f"{rng.gauss(y, 1):.4f},{rng.gauss(-y, 1):.4f},{y}")
    return "\n".join(out) + "\n"


write("csv_data", "header-auto", b"\x00" + rows(48, True).encode())
write("csv_data", "no-header-standardize", b"\x42" + rows(48, False).encode())
write("csv_data", "label-by-name", b"\x0d" + rows(48, True).encode())
write("csv_data", "test-file", b"\x80" + rows(40, True).encode() + b"\0" + rows(20, True).encode())
write("csv_data", "comments-half", b"\x30# a comment\n" + rows(48, True).encode())

# ---- points: kind byte (odd: .npy), then the file


def npy(descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    while (10 + len(header) + 1) % 64:
        header += " "
    header += "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


vals = [rng.gauss(0, 1) for _ in range(30)]
write("points", "csv-header", b"\x00a,b,c\n" + "".join(
    f"{vals[i]},{vals[i+1]},{vals[i+2]}\n" for i in range(0, 30, 3)).encode())
write("points", "csv-plain", b"\x02" + "1,2\n3,4\n5,6\n".encode())
write("points", "f32.npy", b"\x01" + npy("<f4", "(10, 3)", struct.pack("<30f", *vals)))
write("points", "f64.npy", b"\x03" + npy("<f8", "(15, 2)", struct.pack("<30d", *vals)))
write("points", "vector.npy", b"\x01" + npy("<f8", "(30,)", struct.pack("<30d", *vals)))

# ---- idx: options byte, then images, labels, test images, test labels separated by `IDX|`


def idx(code, dims, payload):
    return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_pair(n):
    labels = [i % 2 for i in range(n)]
    pixels = bytes(rng.randrange(256) for _ in range(n * 4))
    return idx(0x08, [n, 2, 2], pixels), idx(0x08, [n], bytes(labels))


tri, trl = idx_pair(40)
tei, tel = idx_pair(20)
write("idx", "ubyte", b"\x00" + b"IDX|".join([tri, trl, tei, tel]))
write("idx", "gzip-standardize", b"\x04" + b"IDX|".join(
    [gzip.compress(tri, mtime=0), gzip.compress(trl, mtime=0), tei, tel]))
floats = idx(0x0D, [30, 3], struct.pack(">90f", *[rng.gauss(0, 1) for _ in range(90)]))
labels3 = idx(0x0C, [30], struct.pack(">30i", *[i % 3 for i in range(30)]))
write("idx", "float-images-same-test", b"\x00" + floats + b"IDX|" + labels3)

# ---- estimators: settings bytes, then the clouds (see funnel::fuzzing::estimators)


def estimator_input(layer, kl, w1, d, n_p, n_q, classes=1, shape=0):
    mode = 0x80 if layer else 0x00
    b = [mode, kl, w1, 4, 4 if kl == 3 else 0, 2, 1, 60, 62, 2, 62, 50, 7, 0, d - 1]
    if layer:
        b.append(classes - 1)
    b += [n_p, n_q]
    if layer:
        b.append(0)  # finite
    b.append(7)  # seed
    for n in (n_p, n_q):
        b += [shape, 0]  # shape, scale 1
        b += [rng.randrange(64) for _ in range(n * d)]  # small integers
        b += [i % classes for i in range(n)]
    if layer:
        b += [1, 2, 1]  # noisy, β = 1, jitter scale 1e-3
        b += [rng.randrange(256) for _ in range((n_p + n_q) * d + 8)]
    return bytes(b)


# (the q selector byte sits after P's labels; a value ≢ 0 mod 4 draws Q's own cloud)
def fix_q(data, layer, d, n_p, classes=1):
    head = 17 + (2 if layer else 0) + 1
    at = head + 2 + n_p * d + n_p
    data = bytearray(data)
    data.insert(at, 1)
    return bytes(data)


for name, layer, kl, w1, d in [
    ("cli-auto-exact", False, 0, 0, 2),
    ("cli-knn-sinkhorn", False, 1, 1, 3),
    ("cli-gaussian-sliced", False, 2, 2, 1),
    ("cli-smoothed-exact", False, 3, 0, 2),
    ("layer-auto-exact", True, 0, 0, 2),
    ("layer-knn-sliced", True, 1, 2, 4),
    ("layer-gaussian-sinkhorn", True, 2, 1, 2),
]:
    classes = 2 if layer else 1
    raw = estimator_input(layer, kl, w1, d, 40, 40, classes)
    write("estimators", name, fix_q(raw, layer, d, 40, classes))
