"""Train a small MLP on synthetic 2-class Gaussian data and export every
layer's train/test activations for `funnel layers`.

    python examples/pytorch/mlp.py [OUT.npz]      (default: ./mlp_layers.npz)
    funnel layers mlp_layers.npz
"""
import os
import sys
from collections import OrderedDict

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from funnel_export import export_layers  # noqa: E402

torch.set_num_threads(2)
torch.manual_seed(0)

# Two Gaussian classes in d = 16: N(+mu, I) and N(-mu, I), |mu| = 0.75 (Bayes accuracy ~77%).
d, n_train, n_test = 16, 1000, 1000
mu = torch.randn(d)
mu *= 0.75 / mu.norm()


def sample(n):
    y = torch.randint(0, 2, (n,))
    x = torch.randn(n, d) + (2 * y[:, None] - 1) * mu
    return x, y


x_train, y_train = sample(n_train)
x_test, y_test = sample(n_test)
loader, data = torch.utils.data.DataLoader, torch.utils.data.TensorDataset
train_loader = loader(data(x_train, y_train), batch_size=32, shuffle=True)

model = nn.Sequential(OrderedDict(
    fc1=nn.Linear(d, 64), relu1=nn.ReLU(),
    fc2=nn.Linear(64, 32), relu2=nn.ReLU(),
    fc3=nn.Linear(32, 2),
))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(30):
    model.train()
    for x, y in train_loader:
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def accuracy(x, y):
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


print(f"train accuracy {accuracy(x_train, y_train):.3f}, "
      f"test accuracy {accuracy(x_test, y_test):.3f}")

# Layers written: input, fc1, relu1, fc2, relu2, fc3 (every leaf module, in forward order).
path = sys.argv[1] if len(sys.argv) > 1 else "mlp_layers.npz"
summary = export_layers(
    model,
    loader(data(x_train, y_train), batch_size=256),
    loader(data(x_test, y_test), batch_size=256),
    path,
)
print(f"wrote {path}: layers {summary['layers']}, {summary['n_train']} train / "
      f"{summary['n_test']} test examples, {summary['bytes']} bytes")
