"""The Python side of bench/census-table.js: trains the in-repo reference models on the census
arrays that adatt encoded, with the same protocol, and prints the results as one JSON object.

    /usr/bin/python3 scripts/reference/train_census.py DIR

DIR (written by bench/census-table.js) holds manifest.json and, per split (train, validation,
test), raw little-endian arrays: {split}.dense.f32 [N * denseDim], {split}.categorical.i32
[N * C] and {split}.labels.f32 [T * N] (task-major). For every model and seed: torch.manual_seed,
ReferenceModel(nativeConfig), Adam, the summed per-task BCE-with-logits loss, batches from a
fresh permutation each epoch (the last batch may be short), validation metrics after every epoch,
and the test metrics of the epoch with the best mean validation AUC. Progress goes to stderr.
"""

import json
import math
import os
import sys
import time
from typing import Dict, List

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adatt_reference import ReferenceModel  # noqa: E402
from metrics import average_ranks  # noqa: E402


def read(path: str, dtype: torch.dtype) -> torch.Tensor:
    with open(path, "rb") as f:
        return torch.frombuffer(bytearray(f.read()), dtype=dtype)


def load_split(folder: str, name: str, size: int, dense_dim: int, tasks: int):
    dense = read(os.path.join(folder, f"{name}.dense.f32"), torch.float32).view(size, dense_dim)
    categorical = read(os.path.join(folder, f"{name}.categorical.i32"), torch.int32).view(size, -1).long()
    labels = read(os.path.join(folder, f"{name}.labels.f32"), torch.float32).view(tasks, size).t().contiguous()
    if torch.isnan(labels).any():
        raise ValueError(f"{name}: missing labels are not supported here")
    return dense, categorical, labels


def binary_metrics(logits: torch.Tensor, labels: torch.Tensor) -> Dict[str, float]:
    """Exact AUC (ties share their average rank), log loss and NE (log loss / entropy of the split's positive rate)."""
    z, y = logits.double(), labels.double()
    positives = float(y.sum())
    negatives = y.numel() - positives
    ranks = average_ranks(z)
    auc = (float(ranks[y == 1].sum()) - positives * (positives + 1) / 2) / (positives * negatives)
    log_loss = float(F.binary_cross_entropy_with_logits(z, y))
    rate = positives / y.numel()
    entropy = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    return {"auc": auc, "logLoss": log_loss, "ne": log_loss / entropy}


@torch.no_grad()
def evaluate(model: ReferenceModel, split, task_names: List[str], batch: int = 4096) -> Dict[str, Dict[str, float]]:
    model.eval()
    dense, categorical, labels = split
    parts = [model(dense[i:i + batch], categorical[i:i + batch], []) for i in range(0, dense.shape[0], batch)]
    logits = [torch.cat([part[t] for part in parts]).squeeze(-1) for t in range(len(task_names))]
    return {name: binary_metrics(logits[t], labels[:, t]) for t, name in enumerate(task_names)}


def mean_auc(metrics: Dict[str, Dict[str, float]]) -> float:
    return sum(m["auc"] for m in metrics.values()) / len(metrics)


def train(config: Dict, seed: int, manifest: Dict, splits) -> Dict:
    task_names = [task["name"] for task in config["tasks"]]
    torch.manual_seed(seed)
    model = ReferenceModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=manifest["lr"])
    dense, categorical, labels = splits["train"]
    size, batch = dense.shape[0], manifest["batchSize"]
    best, history = None, []
    start = time.perf_counter()
    for epoch in range(manifest["epochs"]):
        model.train()
        order = torch.randperm(size, generator=torch.Generator().manual_seed(seed * 1000003 + epoch))
        for begin in range(0, size, batch):
            rows = order[begin:begin + batch]
            outputs = model(dense[rows], categorical[rows], [])
            y = labels[rows]
            loss = sum(F.binary_cross_entropy_with_logits(out.squeeze(-1), y[:, t]) for t, out in enumerate(outputs))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        validation = evaluate(model, splits["validation"], task_names)
        history.append(mean_auc(validation))
        if best is None or history[-1] > best["validationAuc"]:
            best = {"epoch": epoch, "validationAuc": history[-1], "test": evaluate(model, splits["test"], task_names)}
    return {"seed": seed, "bestEpoch": best["epoch"], "validationAuc": history, "test": best["test"],
            "seconds": time.perf_counter() - start}


def main(folder: str) -> None:
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    torch.set_num_threads(manifest["threads"])
    tasks = len(manifest["tasks"])
    splits = {name: load_split(folder, name, size, manifest["denseDim"], tasks)
              for name, size in manifest["sizes"].items()}
    results = {}
    for name, config in manifest["models"].items():
        results[name] = []
        for seed in manifest["seeds"]:
            run = train(config, seed, manifest, splits)
            results[name].append(run)
            test = ", ".join(f"{t} {m['auc']:.4f}" for t, m in run["test"].items())
            print(f"reference {name} seed {seed}: best epoch {run['bestEpoch']}, test AUC {test} ({run['seconds']:.0f} s)",
                  file=sys.stderr, flush=True)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main(sys.argv[1])
