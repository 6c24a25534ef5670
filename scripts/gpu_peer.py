"""The Python peer of scripts/gpu-check.js: the in-repo reference model trained the usual PyTorch way
on a device. Usage: python3 scripts/gpu_peer.py '<json>' with {config (normalised), device, size,
batch, epochs, threads}. Prints {"examplesPerSecond": …} (epochs after the first, timed with syncs)."""

import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from adatt_reference import ReferenceModel  # noqa: E402


def main(spec) -> None:
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    config = spec["config"]
    tasks = len(config["tasks"])
    torch.manual_seed(0)
    dense = torch.randn(spec["size"], config["denseDim"], device=device)
    labels = (dense[:, :tasks] > 0).float()
    model = ReferenceModel(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    empty = torch.zeros(spec["batch"], 0, dtype=torch.long, device=device)
    rates = []
    for _ in range(spec["epochs"]):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(spec["size"], device=device)
        for begin in range(0, spec["size"] - spec["batch"] + 1, spec["batch"]):
            rows = order[begin:begin + spec["batch"]]
            optimizer.zero_grad()
            outputs = model(dense[rows], empty, [])
            loss = sum(F.binary_cross_entropy_with_logits(out.squeeze(-1), labels[rows, t]) for t, out in enumerate(outputs))
            loss.backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(spec["size"] / (time.perf_counter() - start))
    print(json.dumps({"examplesPerSecond": sorted(rates[1:])[len(rates[1:]) // 2]}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
