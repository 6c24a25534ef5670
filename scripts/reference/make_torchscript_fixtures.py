"""Write TorchScript fixtures made with PyTorch, and PyTorch's own outputs for them.

Usage: /usr/bin/python3 scripts/reference/make_torchscript_fixtures.py OUTDIR

Writes OUTDIR/scripted.pt (torch.jit.script of a two-task model returning a tuple, with an extra
exported method `probabilities` and a dict-returning `named`), OUTDIR/traced.pt (torch.jit.trace of a
three-task model returning one [B, 3] tensor), OUTDIR/newer.pt (scripted.pt with its file format
version raised past what any LibTorch reads), and OUTDIR/expected.json with the inputs and outputs.
"""

import json
import os
import sys
import zipfile
from typing import Dict, Tuple

import torch
from torch import nn


class TwoTowerModel(nn.Module):
    """Shared bottom on dense + embedded categorical features; a binary and a 3-class head."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(6, 3)
        self.bottom = nn.Sequential(nn.Linear(4 + 3, 8), nn.ReLU())
        self.click = nn.Linear(8, 1)
        self.genre = nn.Linear(8, 3)

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        hidden = self.bottom(torch.cat([dense, self.embedding(categorical[:, 0])], dim=1))
        return self.click(hidden).squeeze(-1), self.genre(hidden)

    @torch.jit.export
    def probabilities(self, dense: torch.Tensor, categorical: torch.Tensor) -> Dict[str, torch.Tensor]:
        click, genre = self.forward(dense, categorical)
        return {"click": torch.sigmoid(click), "genre": torch.softmax(genre, dim=-1)}


class DenseModel(nn.Module):
    """Dense-only, three single-output tasks returned as one [B, 3] tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))

    def forward(self, dense: torch.Tensor) -> torch.Tensor:
        return self.net(dense)


def raise_format_version(source: str, target: str) -> None:
    """Copy a TorchScript zip, rewriting its `version` record to a format no LibTorch reads yet."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("/version"):
                data = b"99\n"
            zout.writestr(item, data)


def main(out_dir: str) -> None:
    torch.manual_seed(0)
    dense = torch.randn(5, 4)
    categorical = torch.randint(0, 6, (5, 1))

    scripted = torch.jit.script(TwoTowerModel())
    scripted.save(os.path.join(out_dir, "scripted.pt"))
    traced = torch.jit.trace(DenseModel(), (dense,))
    traced.save(os.path.join(out_dir, "traced.pt"))
    raise_format_version(os.path.join(out_dir, "scripted.pt"), os.path.join(out_dir, "newer.pt"))

    with torch.no_grad():
        click, genre = scripted(dense, categorical)
        named = scripted.probabilities(dense, categorical)
        traced_out = traced(dense)
    expected = {
        "dense": dense.reshape(-1).tolist(),
        "categorical": categorical.reshape(-1).tolist(),
        "scripted": {"click": click.reshape(-1).tolist(), "genre": genre.reshape(-1).tolist()},
        "probabilities": {k: v.reshape(-1).tolist() for k, v in named.items()},
        "traced": traced_out.reshape(-1).tolist(),
    }
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f)
    # The same module as a serving export would be: in eval mode.
    scripted.eval()
    scripted.save(os.path.join(out_dir, "scripted-eval.pt"))


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    main(sys.argv[1])
