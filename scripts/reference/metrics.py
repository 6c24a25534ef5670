"""Independent AUC / log loss / NE / accuracy for predictions written by the tests.

Usage: /usr/bin/python3 scripts/reference/metrics.py PREDICTIONS.f32 LABELS.f32 [WEIGHTS.f32 | -] [GROUPS.i64]
The files hold raw little-endian values of equal count: float32 predicted probabilities, 0/1
labels (NaN = missing, skipped) and optional sample weights ("-": none), int64 group ids. Prints
{"auc", "logLoss", "ne", "accuracy", "ece", "count"} as JSON, in float64 (ECE: 15 equal-width bins
of the probability, sum of |weight-mean prediction - positive rate| times the bin's weight share), and with groups "gauc" (the AUC
of every group with both classes, averaged weighted by the group's rows or sum of weights),
"gaucMean" (unweighted) and "gaucGroups" (how many groups counted).
Unweighted, AUC is the Mann-Whitney statistic with tied scores sharing their average rank; with
weights it is written out over all (positive, negative) pairs, each counting w_pos * w_neg (ties
half), and the means are weighted: sum(w x) / sum(w).
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


def pairwise_auc(p: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
    pos, neg = y == 1, y == 0
    sp, sn = p[pos].unsqueeze(1), p[neg].unsqueeze(0)
    pairs = (sp > sn).double() + 0.5 * (sp == sn).double()
    weights = w[pos].unsqueeze(1) * w[neg].unsqueeze(0)
    return float((pairs * weights).sum() / (w[pos].sum() * w[neg].sum()))


def grouped_auc(p: torch.Tensor, y: torch.Tensor, w: torch.Tensor, groups: torch.Tensor) -> dict:
    aucs, weights = [], []
    for group in torch.unique(groups):
        rows = groups == group
        if (y[rows] == 1).any() and (y[rows] == 0).any():
            aucs.append(pairwise_auc(p[rows], y[rows], w[rows]))
            weights.append(float(w[rows].sum()))
    return {
        "gauc": sum(a * v for a, v in zip(aucs, weights)) / sum(weights),
        "gaucMean": sum(aucs) / len(aucs),
        "gaucGroups": len(aucs),
    }


def main(predictions_path: str, labels_path: str, weights_path: str = "-", groups_path: str = "") -> None:
    p = read_floats(predictions_path)
    y = read_floats(labels_path)
    weights_path = "" if weights_path == "-" else weights_path
    w = read_floats(weights_path) if weights_path else torch.ones_like(y)
    groups = None
    if groups_path:
        with open(groups_path, "rb") as f:
            groups = torch.frombuffer(bytearray(f.read()), dtype=torch.int64)
    keep = ~torch.isnan(y)
    p, y, w = p[keep], y[keep], w[keep]
    if weights_path:
        auc = pairwise_auc(p, y, w)
    else:
        positives = float(y.sum())
        negatives = float(y.numel()) - positives
        ranks = average_ranks(p)
        auc = (float(ranks[y == 1].sum()) - positives * (positives + 1) / 2) / (positives * negatives)
    total = float(w.sum())
    clipped = p.clamp(1e-12, 1 - 1e-12)
    log_loss = float((w * -(y * clipped.log() + (1 - y) * (1 - clipped).log())).sum()) / total
    rate = float((w * y).sum()) / total
    entropy = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
    accuracy = float((w * ((p >= 0.5).double() == y).double()).sum()) / total
    ece = 0.0
    bins = torch.clamp(torch.floor(p * 15), max=14)
    for b in range(15):
        in_bin = bins == b
        if in_bin.any():
            ece += abs(float((w[in_bin] * p[in_bin]).sum()) - float((w[in_bin] * y[in_bin]).sum())) / total
    result = {"ece": ece, "auc": auc, "logLoss": log_loss, "ne": log_loss / entropy, "accuracy": accuracy, "count": int(y.numel())}
    if groups is not None:
        result.update(grouped_auc(p, y, w, groups[keep]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:5])
