"""Train a small CNN on 8x8 digit images with a small training set (so that
it overfits visibly) and export every layer's activations for `funnel layers`.

Data: scikit-learn's digits (1797 8x8 images, 10 classes) when sklearn is
installed, split 50/50 with a fixed seed, training on 300 of the training
half and testing on the whole other half.  Without sklearn: a synthetic
stand-in of the same size: each class a fixed random binary 8x8 template
(30% of pixels on), rolled by up to one pixel, plus Gaussian noise (sd 0.3).

    python examples/pytorch/cnn.py [OUT.npz]      (default: ./cnn_layers.npz)
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from funnel_export import export_layers  # noqa: E402

torch.set_num_threads(2)
g = torch.manual_seed(0)
try:
    from sklearn.datasets import load_digits
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    source = "sklearn digits"
except ImportError:
    templates = (torch.rand(10, 8, 8, generator=g) < 0.3).float()
    y = torch.randint(0, 10, (1797,), generator=g)
    shifts = torch.randint(-1, 2, (1797, 2), generator=g).tolist()
    x = torch.stack([templates[c].roll(s, dims=(0, 1)) for c, s in zip(y.tolist(), shifts)])
    x = (x + 0.3 * torch.randn(x.shape, generator=g))[:, None]
    source = "synthetic 8x8 templates (sklearn not installed)"

perm = torch.randperm(len(y), generator=g)
half = len(y) // 2
train_idx, test_idx = perm[:half][:300], perm[half:]
x_train, y_train, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(1, 8, 3), nn.ReLU()      # 8x8 -> 6x6
        self.conv2, self.relu2 = nn.Conv2d(8, 16, 3), nn.ReLU()     # 6x6 -> 4x4
        self.fc1, self.relu3 = nn.Linear(16 * 4 * 4, 32), nn.ReLU()
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        h = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc2(self.relu3(self.fc1(h.flatten(1))))


model = CNN()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
data = torch.utils.data.TensorDataset
batches = torch.utils.data.DataLoader(data(x_train, y_train), batch_size=32, shuffle=True)
for epoch in range(40):
    model.train()
    for xb, yb in batches:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()

model.eval()
with torch.no_grad():
    acc_train = (model(x_train).argmax(1) == y_train).float().mean().item()
    acc_test = (model(x_test).argmax(1) == y_test).float().mean().item()
print(f"{source}: {len(y_train)} train / {len(y_test)} test")
print(f"train accuracy {acc_train:.3f}, test accuracy {acc_test:.3f}")

path = sys.argv[1] if len(sys.argv) > 1 else "cnn_layers.npz"
loader = torch.utils.data.DataLoader
summary = export_layers(model, loader(data(x_train, y_train), batch_size=256),
                        loader(data(x_test, y_test), batch_size=256), path)
print(f"wrote {path}: layers {summary['layers']}, {summary['n_train']} train / "
      f"{summary['n_test']} test examples, {summary['bytes']} bytes")
