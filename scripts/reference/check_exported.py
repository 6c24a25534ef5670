"""Load weight files written by adatt into the Python reference and report its outputs.

Usage: /usr/bin/python3 scripts/reference/check_exported.py DIR EXT NAME [NAME ...]

For each NAME, reads DIR/NAME.json (a parity case: config and batch) and DIR/NAME.adatt.EXT (our
`saveWeights` output: EXT "pt" for torch.save format, "safetensors" for safetensors), loads the
weights into ReferenceModel with strict=True, and writes the reference's outputs for the case's
batch to DIR/NAME.adatt.json. This is the recipe of docs/pytorch-interop.md, run as a test.
"""

import json
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adatt_reference import ReferenceModel, batch_from_json  # noqa: E402
from safetensors_io import load_file  # noqa: E402


def main(directory: str, extension: str, names) -> None:
    for name in names:
        with open(os.path.join(directory, f"{name}.json")) as f:
            case = json.load(f)
        model = ReferenceModel(case["config"])
        path = os.path.join(directory, f"{name}.adatt.{extension}")
        # weights_only=True: PyTorch's default since 2.6, and the safe way to read files from elsewhere.
        weights = load_file(path) if extension == "safetensors" else torch.load(path, weights_only=True)
        if not isinstance(weights, dict):
            raise SystemExit(f"{name}: torch.load returned {type(weights).__name__}, not a dict")
        model.load_state_dict(weights, strict=True)
        with torch.no_grad():
            outputs = model(*batch_from_json(case["config"], case["batch"]))
        with open(os.path.join(directory, f"{name}.adatt.json"), "w") as f:
            json.dump([o.reshape(-1).tolist() for o in outputs], f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
