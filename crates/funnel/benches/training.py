"""PyTorch peer of `cargo bench --bench training`: the same MLP, batch and optimizer, the same
kind of loop (fresh batch tensors from a host array, forward, cross-entropy, backward, Adam step,
loss read back to the host). Prints one JSON line: {"steps_per_s": ..., "threads": ...}.

usage: python3 training.py INPUT WIDTH DEPTH CLASSES BATCH WARMUP STEPS
"""
import json
import sys
import time

try:
    import numpy as np
    import torch
except ImportError as e:  # the bench prints the note and skips the peer column
    print(json.dumps({"note": f"peer skipped: {e}"}))
    sys.exit(0)

d_in, width, depth, classes, batch, warmup, steps = map(int, sys.argv[1:8])
torch.manual_seed(0)
rng = np.random.default_rng(0)
n = batch * 16
x_all = rng.standard_normal((n, d_in)).astype(np.float32)
y_all = rng.integers(0, classes, n).astype(np.int64)

layers = []
dims = [d_in] + [width] * depth
for a, b in zip(dims[:-1], dims[1:]):
    layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
layers.append(torch.nn.Linear(dims[-1], classes))
model = torch.nn.Sequential(*layers)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.CrossEntropyLoss()


def step(i):
    lo = (i % 16) * batch
    x = torch.from_numpy(x_all[lo : lo + batch])
    y = torch.from_numpy(y_all[lo : lo + batch])
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss.item()


for i in range(warmup):
    step(i)
t = time.perf_counter()
for i in range(steps):
    step(i)
dt = time.perf_counter() - t
print(json.dumps({"steps_per_s": steps / dt, "threads": torch.get_num_threads(), "torch": torch.__version__}))
