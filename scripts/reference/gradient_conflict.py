"""The Python side of the task-gradient conflict test (test/objectives.test.ts): one batch through
the in-repo reference model, each task's loss gradient on every parameter, written independently
of adatt's code from the definition in docs/training.md.

    /usr/bin/python3 scripts/reference/gradient_conflict.py SPEC.json WEIGHTS.safetensors OUT.json

SPEC.json: {config, data: {size, dense, labels: [T][N] (null = missing)}, taskTypes}. The batch is
every row. An element of a parameter is shared when at least two tasks' gradients are non-zero
there; a task's norm is its gradient's norm over the shared elements, and the cosine of two tasks
is their gradients' cosine there. Writes {norm: [T], cosine: [T][T]}.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objective_inputs import model_and_rows  # noqa: E402


def main() -> int:
    spec_path, weights_path, out_path = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    model, dense, labels = model_and_rows(spec, weights_path)
    n = dense.shape[0]
    outputs = model(dense, torch.zeros(n, 0, dtype=torch.long), [])
    params = list(model.parameters())
    grads = []
    for t, kind in enumerate(spec["taskTypes"]):
        y = labels[:, t]
        keep = ~torch.isnan(y)
        out = outputs[t].squeeze(-1)[keep]
        loss = F.mse_loss(out, y[keep]) if kind == "regression" else F.binary_cross_entropy_with_logits(out, y[keep])
        task_grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        grads.append([torch.zeros_like(p) if g is None else g for g, p in zip(task_grads, params)])
    count = len(grads)
    gram = [[0.0] * count for _ in range(count)]
    for i in range(len(params)):
        stacked = torch.stack([g[i].reshape(-1).double() for g in grads])
        shared = (stacked != 0).sum(0) >= 2
        stacked = stacked * shared
        for a in range(count):
            for b in range(count):
                gram[a][b] += float((stacked[a] * stacked[b]).sum())
    norm = [math.sqrt(gram[a][a]) for a in range(count)]
    cosine = [[gram[a][b] / (norm[a] * norm[b]) for b in range(count)] for a in range(count)]
    with open(out_path, "w") as f:
        json.dump({"norm": norm, "cosine": cosine}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
