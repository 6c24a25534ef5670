"""Run a TorchScript file saved by adatt in PyTorch and print its outputs as JSON.

Usage: /usr/bin/python3 scripts/reference/check_torchscript.py MODEL.pt INPUTS.json
INPUTS.json holds {"dense": [...], "categorical": [...], "rows": B}; prints
{"outputs": [[click...], [genre...]], "training": the module's mode as loaded}.
"""

import json
import sys

import torch


def main(model_path: str, inputs_path: str) -> None:
    with open(inputs_path) as f:
        inputs = json.load(f)
    rows = inputs["rows"]
    dense = torch.tensor(inputs["dense"], dtype=torch.float32).reshape(rows, -1)
    categorical = torch.tensor(inputs["categorical"], dtype=torch.long).reshape(rows, -1)
    model = torch.jit.load(model_path)
    with torch.no_grad():
        outputs = model(dense, categorical)
    print(json.dumps({"outputs": [o.reshape(-1).tolist() for o in outputs], "training": model.training}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
