"""The PyTorch peer of the vocabulary-scaling benchmark (bench/vocab.js), one cell per process:

    /usr/bin/python3 bench/vocab_peer.py '{"vocab": 1000000, "batch": 1024, "steps": 40, "threads": 1}'

The same model (scripts/reference/adatt_reference.py, bench/vocab-config.json) as plain PyTorch
would train it at this scale: nn.Embedding(sparse=True) tables stepped by torch.optim.SparseAdam,
Adam for the rest, the usual loop (zero_grad, forward, summed BCE, backward, both steps,
loss.item()). Prints one JSON line: examples/s of the second epoch and peak RSS.
"""

import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts", "reference"))
from adatt_reference import ReferenceModel  # noqa: E402


def main() -> None:
    spec = json.loads(sys.argv[1])
    with open(os.path.join(HERE, "vocab-config.json")) as f:
        m = json.load(f)
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(7)
    vocab, batch, steps = spec["vocab"], spec["batch"], spec["steps"]
    config = {
        "kind": m["kind"], "denseDim": m["dense"],
        "categorical": [{"vocab": vocab, "dim": m["bigDim"]}] + m["small"], "multiValued": [],
        "tasks": [{"name": f"task{t}", "outputs": 1} for t in range(m["tasks"])],
        "expertDims": m["expertDims"], "towerDims": m["towerDims"],
        "expertsPerTask": [m["expertsPerTask"]] * m["tasks"], "sharedExperts": 0, "gateDims": [],
        "nativeResidual": True, "seed": 0,
    }
    model = ReferenceModel(config)
    for table in model.embeddings:
        table.sparse = True
    size = batch * steps
    dense = torch.randn(size, m["dense"])
    vocabularies = [vocab] + [f["vocab"] for f in m["small"]]
    categorical = torch.stack([torch.randint(v, (size,)) for v in vocabularies], dim=1)
    labels = (dense[:, : m["tasks"]] + (categorical[:, 1:2] % 7) / 7 - 0.5 > 0).float()
    tables = [e.weight for e in model.embeddings]
    table_ids = {id(t) for t in tables}
    dense_optimizer = torch.optim.Adam([p for p in model.parameters() if id(p) not in table_ids], lr=1e-3)
    sparse_optimizer = torch.optim.SparseAdam(tables, lr=1e-3)

    def epoch() -> float:
        start = time.perf_counter()
        order = torch.randperm(size)
        for begin in range(0, size, batch):
            rows = order[begin:begin + batch]
            dense_optimizer.zero_grad()
            sparse_optimizer.zero_grad()
            outputs = model(dense[rows], categorical[rows], [])
            loss = sum(F.binary_cross_entropy_with_logits(out.squeeze(-1), labels[rows, t]) for t, out in enumerate(outputs))
            loss.backward()
            dense_optimizer.step()
            sparse_optimizer.step()
            loss.item()
        return time.perf_counter() - start

    epoch()  # allocates optimizer state, warms up
    seconds = epoch()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"examplesPerSecond": size / seconds, "peakRssMiB": usage.ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
