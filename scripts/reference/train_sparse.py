"""The Python side of the row-sparse embedding parity test (test/sparse-embeddings.test.ts): trains
the in-repo reference model with PyTorch's own sparse embeddings and optimizers, as adatt's trainer
does, and writes the final weights.

    /usr/bin/python3 scripts/reference/train_sparse.py SPEC.json WEIGHTS_IN.safetensors WEIGHTS_OUT.safetensors

SPEC.json: {config (adatt's native model config), data: {size, dense, categorical, multiValued:
[{indices, offsets}], labels: [T][N] (null = missing)}, taskTypes, epochs, batchSize, seed,
clipNorm, optimizer: {lr, betas, eps} (Adam for the dense parameters), embeddingOptimizer: {type,
lr, betas, eps, weightDecay}}.

Tables are nn.Embedding / nn.EmbeddingBag with sparse=True. 'adam' is torch.optim.SparseAdam,
'adagrad' torch.optim.Adagrad and 'sgd' torch.optim.SGD on their sparse gradients; 'rowwise-adagrad'
has no PyTorch optimizer, so it is written out here from FBGEMM's definition (one accumulator per
row: the mean of the squared gradient over the row). Batches follow adatt's order: epoch e's
permutation is torch.randperm(N) under a generator seeded with seed * 1000003 + e.
"""

import json
import math
import os
import sys
from typing import Dict, List

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adatt_reference import ReferenceModel  # noqa: E402
from safetensors_io import load_file, save_file  # noqa: E402


class RowwiseAdagrad(torch.optim.Optimizer):
    """FBGEMM's exact row-wise Adagrad: state[r] += mean(g[r]^2); w[r] -= lr * g[r] / (sqrt(state[r]) + eps).
    weight_decay adds L2 to the rows' gradient (touched rows only)."""

    def __init__(self, params, lr: float, eps: float, weight_decay: float) -> None:
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.coalesce()
                rows, values = grad._indices()[0], grad._values()
                if group["weight_decay"]:
                    values = values + group["weight_decay"] * p[rows]
                state = self.state[p].setdefault("sum", torch.zeros(p.shape[0]))
                state[rows] += (values * values).mean(1)
                p.index_add_(0, rows, values / (state[rows].sqrt() + group["eps"]).unsqueeze(1), alpha=-group["lr"])


def table_optimizer(tables: List[torch.Tensor], spec: Dict) -> torch.optim.Optimizer:
    kind = spec["type"]
    if kind != "rowwise-adagrad" and spec.get("weightDecay", 0):
        raise ValueError("PyTorch's sparse optimizers take no weight decay")
    if kind == "adam":
        return torch.optim.SparseAdam(tables, lr=spec["lr"], betas=tuple(spec["betas"]), eps=spec["eps"])
    if kind == "adagrad":
        return torch.optim.Adagrad(tables, lr=spec["lr"], eps=spec["eps"])
    if kind == "sgd":
        return torch.optim.SGD(tables, lr=spec["lr"])
    if kind == "rowwise-adagrad":
        return RowwiseAdagrad(tables, lr=spec["lr"], eps=spec["eps"], weight_decay=spec.get("weightDecay", 0))
    raise ValueError(f"unknown embedding optimizer {kind}")


def clip_(parameters: List[torch.Tensor], max_norm: float) -> None:
    """clip_grad_norm_ over dense and (coalesced) sparse gradients alike."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = [(g._values() if g.is_sparse else g).norm(2) for g in grads]
    coefficient = (max_norm / (torch.stack(norms).norm(2) + 1e-6)).clamp(max=1.0)
    for g in grads:
        (g._values() if g.is_sparse else g).mul_(coefficient)


def main() -> int:
    spec_path, weights_in, weights_out = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    config, data = spec["config"], spec["data"]
    model = ReferenceModel(config)
    for table in list(model.embeddings) + list(model.bag_embeddings):
        table.sparse = True
    model.load_state_dict(load_file(weights_in))
    tables = [m.weight for m in list(model.embeddings) + list(model.bag_embeddings)]
    table_ids = {id(t) for t in tables}
    dense_params = [p for p in model.parameters() if id(p) not in table_ids]
    o = spec["optimizer"]
    dense_opt = torch.optim.Adam(dense_params, lr=o["lr"], betas=tuple(o["betas"]), eps=o["eps"])
    sparse_opt = table_optimizer(tables, spec["embeddingOptimizer"])

    n = int(data["size"])
    dense = torch.tensor(data["dense"], dtype=torch.float32).reshape(n, config["denseDim"])
    categorical = torch.tensor(data["categorical"], dtype=torch.long).reshape(n, len(config["categorical"]))
    bags = [(torch.tensor(b["indices"], dtype=torch.long), torch.tensor(b["offsets"] + [len(b["indices"])]))
            for b in data["multiValued"]]
    labels = torch.tensor([[math.nan if v is None else v for v in task] for task in data["labels"]]).t()

    def batch(rows: torch.Tensor):
        out = []
        for indices, ends in bags:
            starts, stops = ends[rows], ends[rows + 1]
            pieces = [indices[s:e] for s, e in zip(starts.tolist(), stops.tolist())]
            lengths = torch.tensor([len(p) for p in pieces])
            offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
            out.append((torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long), offsets))
        return dense[rows], categorical[rows], out

    batch_size = spec["batchSize"]
    for epoch in range(spec["epochs"]):
        generator = torch.Generator()
        generator.manual_seed(spec["seed"] * 1000003 + epoch)
        order = torch.randperm(n, generator=generator)
        for begin in range(0, n, batch_size):
            rows = order[begin:begin + batch_size]
            outputs = model(*batch(rows))
            total = torch.zeros(())
            for t, kind in enumerate(spec["taskTypes"]):
                y = labels[rows, t]
                present = ~torch.isnan(y)
                if not present.any():
                    continue
                out = outputs[t].squeeze(-1)[present]
                total = total + (F.binary_cross_entropy_with_logits(out, y[present]) if kind == "binary"
                                 else F.mse_loss(out, y[present]))
            dense_opt.zero_grad(set_to_none=True)
            sparse_opt.zero_grad(set_to_none=True)
            total.backward()
            for table in tables:
                table.grad = table.grad.coalesce()
            if spec.get("clipNorm"):
                clip_(list(model.parameters()), spec["clipNorm"])
            dense_opt.step()
            sparse_opt.step()
    save_file({name: t.detach().contiguous() for name, t in model.state_dict().items()}, weights_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
