"""The Python peer of bench/census.js: the same Census-Income job with plain Python + PyTorch.

    /usr/bin/python3 bench/census_peer.py '{"data": DIR, "threads": 2, "batch": 1024, "model": {...}}'

Reads census-income.data(.gz) and census-income.test(.gz) with csv + gzip, fits the same schema
as lib/data's census loader (7 dense columns standardised, log1p for amounts; 31 categorical
columns with ids 0 = missing, 1 = unseen, 2.. = training values; embedding width
min(16, ceil(1.6 * vocab^0.56))), builds scripts/reference's ReferenceModel, trains one epoch
(Adam, BCE-with-logits summed over tasks) and reports AUC on the whole test file. Prints one JSON line.
"""

import csv
import gzip
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "reference"))
from adatt_reference import ReferenceModel  # noqa: E402

COLUMNS = [
    "age", "class of worker", "detailed industry recode", "detailed occupation recode", "education",
    "wage per hour", "enroll in edu inst last wk", "marital stat", "major industry code",
    "major occupation code", "race", "hispanic origin", "sex", "member of a labor union",
    "reason for unemployment", "full or part time employment stat", "capital gains", "capital losses",
    "dividends from stocks", "tax filer stat", "region of previous residence",
    "state of previous residence", "detailed household and family stat",
    "detailed household summary in household", "instance weight", "migration code-change in msa",
    "migration code-change in reg", "migration code-move within reg", "live in this house 1 year ago",
    "migration prev res in sunbelt", "num persons worked for employer", "family members under 18",
    "country of birth father", "country of birth mother", "country of birth self", "citizenship",
    "own business or self employed", "fill inc questionnaire for veteran's admin", "veterans benefits",
    "weeks worked in year", "year", "income",
]
DENSE = {"age": "standard", "wage per hour": "log1p", "capital gains": "log1p", "capital losses": "log1p",
         "dividends from stocks": "log1p", "num persons worked for employer": "standard",
         "weeks worked in year": "standard"}
COLLEGE = {"Associates degree-occup /vocational", "Associates degree-academic program", "Bachelors degree(BA AB BS)",
           "Masters degree(MA MS MEng MEd MSW MBA)", "Prof school degree (MD DDS DVM LLB JD)", "Doctorate degree(PhD EdD)"}
TASKS = [("income", "income", lambda v: v == "50000+."),
         ("marital", "marital stat", lambda v: v == "Never married"),
         ("education", "education", lambda v: v in COLLEGE)]
MISSING = {"", "?"}
NOT_FEATURES = {"instance weight", "income", "marital stat", "education"}
FEATURES = [c for c in COLUMNS if c not in NOT_FEATURES]
CATEGORICAL = [c for c in FEATURES if c not in DENSE]


def read(folder, name):
    path = os.path.join(folder, "census-income", name)
    opener = (lambda p: open(p, newline="")) if os.path.exists(path) else (lambda p: gzip.open(p + ".gz", "rt", newline=""))
    with opener(path) as f:
        rows = [[cell.strip() for cell in row] for row in csv.reader(f) if row]
    return {c: [row[i] for row in rows] for i, c in enumerate(COLUMNS)}


def fit(table):
    dense = {}
    for c, norm in DENSE.items():
        x = np.array([float(v) for v in table[c] if v not in MISSING])
        x = np.log1p(x) if norm == "log1p" else x
        dense[c] = (x.mean(), x.std() or 1.0)
    vocab = {c: {v: k + 2 for k, v in enumerate(sorted(set(table[c]) - MISSING))} for c in CATEGORICAL}
    return dense, vocab


def encode(table, schema):
    dense_fit, vocab = schema
    cols = []
    for c, norm in DENSE.items():
        mean, std = dense_fit[c]
        x = np.array([float(v) if v not in MISSING else np.nan for v in table[c]])
        x = np.log1p(x) if norm == "log1p" else x
        cols.append(np.nan_to_num((x - mean) / std, nan=0.0))  # missing -> the training mean
    dense = torch.from_numpy(np.stack(cols, axis=1).astype(np.float32))
    ids = [[0 if v in MISSING else vocab[c].get(v, 1) for v in table[c]] for c in CATEGORICAL]
    categorical = torch.tensor(ids, dtype=torch.long).t().contiguous()
    labels = torch.tensor([[float(fn(v)) for v in table[col]] for _, col, fn in TASKS]).t().contiguous()
    return dense, categorical, labels


def auc(scores, labels):
    """Mann-Whitney AUC with average ranks for ties."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    positive = labels[order] > 0.5
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    times = {}
    t = time.perf_counter()

    def lap(name):
        nonlocal t
        now = time.perf_counter()
        times[name] = now - t
        t = now

    train_table, test_table = read(spec["data"], "census-income.data"), read(spec["data"], "census-income.test")
    schema = fit(train_table)
    train, test = encode(train_table, schema), encode(test_table, schema)
    del train_table, test_table
    lap("load")
    lap("tensors")  # already tensors

    model_spec = spec["model"]
    vocabs = [len(schema[1][c]) + 2 for c in CATEGORICAL]
    config = {
        "kind": model_spec["kind"], "denseDim": len(DENSE),
        "categorical": [{"vocab": v, "dim": min(16, math.ceil(1.6 * v ** 0.56))} for v in vocabs],
        "multiValued": [], "tasks": [{"name": name, "outputs": 1} for name, _, _ in TASKS],
        "expertDims": model_spec["expertDims"], "towerDims": model_spec["towerDims"],
        "expertsPerTask": [model_spec["expertsPerTask"]] * len(TASKS), "sharedExperts": 0, "gateDims": [],
        "nativeResidual": True, "seed": 0,
    }
    model = ReferenceModel(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dense, categorical, labels = train
    if spec.get("trainRows"):  # smoke tests only
        dense, categorical, labels = dense[:spec["trainRows"]], categorical[:spec["trainRows"]], labels[:spec["trainRows"]]
    batch = spec["batch"]
    order = torch.randperm(dense.shape[0])
    steps = 0
    for begin in range(0, dense.shape[0], batch):
        rows = order[begin:begin + batch]
        optimizer.zero_grad()
        outputs = model(dense[rows], categorical[rows], [])
        y = labels[rows]
        loss = sum(F.binary_cross_entropy_with_logits(out.squeeze(-1), y[:, k]) for k, out in enumerate(outputs))
        loss.backward()
        optimizer.step()
        loss.item()
        steps += 1
    lap("train")

    model.eval()
    dense, categorical, labels = test
    with torch.inference_mode():
        parts = [model(dense[b:b + 4096], categorical[b:b + 4096], []) for b in range(0, dense.shape[0], 4096)]
    scores = [torch.cat([p[k] for p in parts]).squeeze(-1).numpy() for k in range(len(TASKS))]
    aucs = {name: auc(scores[k], labels[:, k].numpy()) for k, (name, _, _) in enumerate(TASKS)}
    lap("evaluate")
    print(json.dumps({
        "times": times, "trainRows": steps and int(min(train[0].shape[0], spec.get("trainRows") or math.inf)), "testRows": int(dense.shape[0]), "steps": steps,
        "parameters": sum(p.numel() for p in model.parameters()),
        "inputWidth": len(DENSE) + sum(f["dim"] for f in config["categorical"]), "auc": aucs,
        "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
