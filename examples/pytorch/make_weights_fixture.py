#!/usr/bin/env python3
"""Writes the PyTorch fixtures of funnel's weight-loading tests (crates/funnel/tests/e2e/weights.rs).

A seeded `nn.Sequential(Linear(4, 8), Tanh(), Linear(8, 6), Tanh(), Linear(6, 2))` — funnel's
`widths = [8, 6]`, `activation = "tanh"` on 4 features and 2 classes — saved as a state dict in
both formats funnel reads (`.safetensors`, `.pt`), a bias-less twin for the bias-mismatch test,
and a fixed input batch with the PyTorch logits for it (float32, written with enough digits to
read back the same f32: `repr` of the float64 of each f32).

Run from the repository root (needs torch, safetensors):
    python examples/pytorch/make_weights_fixture.py
The Rust tests only read the committed files; neither they nor CI need Python.
"""

import json
import pathlib

import torch
from safetensors.torch import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates/funnel/tests/e2e/data"


def mlp(bias: bool) -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8, bias=bias),
        torch.nn.Tanh(),
        torch.nn.Linear(8, 6, bias=bias),
        torch.nn.Tanh(),
        torch.nn.Linear(6, 2, bias=bias),
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(20261129)
    model = mlp(bias=True).float().eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, OUT / "mlp_4_8_6_2.safetensors")
    torch.save(state, OUT / "mlp_4_8_6_2.pt")
    save_file(
        {k: v.contiguous() for k, v in mlp(bias=False).state_dict().items()},
        OUT / "mlp_4_8_6_2_nobias.safetensors",
    )

    # inputs on the scale of funnel's standardized features, a few far out to reach saturation
    x = torch.randn(6, 4, dtype=torch.float32) * torch.tensor([[1.0], [1.0], [1.0], [1.0], [3.0], [0.1]])
    with torch.no_grad():
        logits = model(x)
    rows = lambda t: ",\n  ".join(json.dumps([float(v) for v in row]) for row in t.tolist())
    (OUT / "mlp_4_8_6_2_logits.json").write_text(
        "{\n"
        ' "comment": "written by examples/pytorch/make_weights_fixture.py: the PyTorch float32 logits of input",\n'
        f' "torch": {json.dumps(torch.__version__)},\n'
        f' "input": [\n  {rows(x)}\n ],\n'
        f' "logits": [\n  {rows(logits)}\n ]\n'
        "}\n"
    )
    for p in sorted(OUT.glob("mlp_4_8_6_2*")):
        print(f"{p.relative_to(ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
