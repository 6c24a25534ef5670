"""Independent AUC / log loss / NE for predictions written by the tests.

Usage: /usr/bin/python3 scripts/reference/metrics.py PREDICTIONS.f32 LABELS.f32
Both files hold raw little-endian float32 values of equal count: predicted probabilities and 0/1
labels (NaN = missing, skipped). Prints {"auc", "logLoss", "ne", "count"} as JSON, in float64.
AUC is the Mann-Whitney statistic with tied scores sharing their average rank.
"""

import json
import math
import sys

import torch


def read_floats(path: str) -> torch.Tensor:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).to(torch.float64)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks, ties replaced by the mean rank of their group."""
    order = torch.argsort(values)
    sorted_values = values[order]
    _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    starts = ends - counts.to(torch.float64) + 1
    ranks = torch.empty_like(values)
    ranks[order] = ((starts + ends) / 2)[inverse]
    return ranks


def main(predictions_path: str, labels_path: str) -> None:
    p = read_floats(predictions_path)
    y = read_floats(labels_path)
    keep = ~torch.isnan(y)
    p, y = p[keep], y[keep]
    positives = float(y.sum())
    negatives = float(y.numel()) - positives
    ranks = average_ranks(p)
    auc = (float(ranks[y == 1].sum()) - positives * (positives + 1) / 2) / (positives * negatives)
    clipped = p.clamp(1e-12, 1 - 1e-12)
    log_loss = float(-(y * clipped.log() + (1 - y) * (1 - clipped).log()).mean())
    rate = positives / y.numel()
    entropy = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    print(json.dumps({"auc": auc, "logLoss": log_loss, "ne": log_loss / entropy, "count": int(y.numel())}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
