"""What the objective references share: the in-repo reference model with adatt's initial weights,
and the test's rows, from a spec {config (adatt's native model config), data: {size, dense,
labels: [T][N] (null = missing)}}."""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adatt_reference import ReferenceModel  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def model_and_rows(spec: dict, weights_path: str):
    """(model, dense [N, D], labels [N, T] with NaN where missing)."""
    config, data = spec["config"], spec["data"]
    model = ReferenceModel({**config, "tasks": [{"name": t["name"], "outputs": t["outputs"]} for t in config["tasks"]]})
    model.load_state_dict(load_file(weights_path))
    n = int(data["size"])
    dense = torch.tensor(data["dense"], dtype=torch.float32).reshape(n, config["denseDim"])
    labels = torch.tensor([[math.nan if v is None else v for v in task] for task in data["labels"]]).t()
    return model, dense, labels
