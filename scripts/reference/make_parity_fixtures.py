"""Write parity fixtures for the native models: weights, a batch, outputs, gradients, gates.

Usage: /usr/bin/python3 scripts/reference/make_parity_fixtures.py OUTDIR

For each case NAME:
  OUTDIR/NAME.weights.pt  torch.save of the reference-layout state_dict (zip format)
  OUTDIR/NAME.weights.safetensors  the same weights as safetensors
  OUTDIR/NAME.json        {name, config, batch, outputs, seeds, gradients, gates[, plainDict]}
and OUTDIR/index.json lists the case names. Everything is float32 and seeded.
"""

import json
import os
import sys
import time
from typing import Dict, List

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adatt_reference import ReferenceModel, batch_to_json, random_batch  # noqa: E402
from safetensors_io import save_file  # noqa: E402

# Feature sets shared by the cases (vocab sizes small so every row is likely to be hit).
FEATURES = {
    "full": dict(denseDim=4,
                 categorical=[{"vocab": 10, "dim": 3}, {"vocab": 7, "dim": 2}],
                 multiValued=[{"vocab": 12, "dim": 3, "pooling": "mean"},
                              {"vocab": 9, "dim": 2, "pooling": "sum"}]),
    "no-dense": dict(denseDim=0,
                     categorical=[{"vocab": 6, "dim": 4}],
                     multiValued=[{"vocab": 8, "dim": 3, "pooling": "sum"}]),
    "dense-only": dict(denseDim=5, categorical=[], multiValued=[]),
    "small": dict(denseDim=3,
                  categorical=[{"vocab": 5, "dim": 2}],
                  multiValued=[{"vocab": 6, "dim": 2, "pooling": "mean"}]),
}


def tasks(*outputs: int) -> List[Dict]:
    return [{"name": f"task{i}", "outputs": n} for i, n in enumerate(outputs)]


def config(kind: str, features: str, task_list: List[Dict], expert_dims, tower_dims,
           experts_per_task=(), shared=0, gate_dims=(), residual=False) -> Dict:
    """A normalised NativeModelConfig (key order as in docs/architecture.md)."""
    f = FEATURES[features]
    return {
        "kind": kind,
        "denseDim": f["denseDim"],
        "categorical": [dict(c) for c in f["categorical"]],
        "multiValued": [dict(m) for m in f["multiValued"]],
        "tasks": task_list,
        "expertDims": [list(level) for level in expert_dims],
        "towerDims": list(tower_dims),
        "expertsPerTask": list(experts_per_task),
        "sharedExperts": shared,
        "gateDims": [list(g) for g in gate_dims],
        "nativeResidual": residual,
        "seed": 0,
    }


# (name, config, batch size, extra JSON fields)
CASES = [
    # AdaTT-sp: m = 1 residual is the plain expert output, m > 1 uses learned [T, m] weights.
    ("adatt-sp-m1-res", config("adatt-sp", "full", tasks(1, 1), [[8]], [4], [1, 1], residual=True), 6),
    ("adatt-sp-m2-res-3lvl", config("adatt-sp", "small", tasks(1, 3, 1), [[8, 6], [6], [5]], [],
                                    [2, 2, 2], residual=True), 5),
    ("adatt-sp-m3-nores", config("adatt-sp", "no-dense", tasks(4, 1), [[6], [4, 4]], [5, 3],
                                 [3, 3], residual=False), 7),
    ("adatt-sp-m1-nores", config("adatt-sp", "dense-only", tasks(1, 1, 1), [[6], [5]], [3],
                                 [1, 1, 1], residual=False), 8),
    # AdaTT general: unit modules add ones; otherwise learned per-module weights.
    ("adatt-unit-res", config("adatt", "full", tasks(1, 1, 1), [[7], [5]], [4], [1, 1, 1], shared=1,
                              residual=True), 6),
    ("adatt-uneven-res-3lvl", config("adatt", "small", tasks(1, 3, 1), [[8], [6, 6], [4]], [3],
                                     [1, 3, 2], shared=2, residual=True), 5),
    ("adatt-uneven-nores", config("adatt", "no-dense", tasks(4, 1), [[6], [5]], [], [2, 1], shared=1,
                                  residual=False), 7),
    # One level: the shared module's native weights are a [0, n] tensor.
    ("adatt-1lvl-res", config("adatt", "full", tasks(1, 3), [[6, 5]], [4], [2, 1], shared=2,
                              residual=True), 6),
    # MMoE: linear gates and gate MLPs, one to three levels.
    ("mmoe-linear-1lvl", config("mmoe", "full", tasks(1, 1), [[8, 6]], [4], shared=3, gate_dims=[[]]), 6),
    ("mmoe-gatemlp-3lvl", config("mmoe", "small", tasks(1, 4, 1), [[8], [6], [5]], [3], shared=2,
                                 gate_dims=[[4], [], [5, 3]]), 5),
    ("mmoe-gatemlp-2lvl", config("mmoe", "no-dense", tasks(3, 1), [[6], [4]], [], shared=4,
                                 gate_dims=[[3], [3]]), 8),
    # PLE: CGC (one level), uneven task experts, several levels.
    ("ple-cgc", config("ple", "full", tasks(1, 1), [[8]], [4], [1, 1], shared=1), 6),
    ("ple-uneven-3lvl", config("ple", "small", tasks(1, 3, 1), [[8], [6, 5], [4]], [3], [1, 3, 2],
                               shared=2), 7),
    ("ple-2lvl", config("ple", "no-dense", tasks(4, 1), [[6], [4]], [], [2, 2], shared=1), 5),
    # Cross-stitch.
    ("cross-stitch-1lvl", config("cross-stitch", "full", tasks(1, 1), [[8, 4]], [3]), 6),
    ("cross-stitch-3lvl", config("cross-stitch", "small", tasks(1, 3, 1), [[6], [5], [4]], [4]), 5),
    ("cross-stitch-2lvl-4tasks", config("cross-stitch", "dense-only", tasks(1, 1, 4, 1), [[6], [5]], []), 8),
    # Shared bottom (levels flattened into one MLP).
    ("shared-bottom-1lvl", config("shared-bottom", "full", tasks(1, 1), [[8, 6]], [4]), 6),
    ("shared-bottom-2lvl", config("shared-bottom", "no-dense", tasks(3, 1), [[6], [5, 4]], []), 7),
    ("shared-bottom-3lvl", config("shared-bottom", "small", tasks(1, 1, 4), [[7], [6], [5]], [3]), 5),
    # Single task: T independent MLPs.
    ("single-task-1lvl", config("single-task", "full", tasks(1, 1), [[8]], [4]), 6),
    ("single-task-2lvl", config("single-task", "small", tasks(1, 3, 1), [[6, 5], [4]], []), 5),
    ("single-task-3lvl", config("single-task", "no-dense", tasks(4, 1), [[6], [5], [4]], [3]), 8),
    # Wide experts: widths past the fusion kernels' vector blocks (16 and 64) with ragged tails, two-layer
    # experts behind grouped (one GEMM per module) and gathered routing.
    ("adatt-sp-wide", config("adatt-sp", "dense-only", tasks(1, 1, 1), [[70, 37], [130]], [3], [2, 2, 2],
                             residual=True), 9),
    ("adatt-wide", config("adatt", "small", tasks(1, 1), [[20], [67, 80]], [4], [2, 2], shared=2,
                          residual=True), 7),
    ("ple-wide-uneven", config("ple", "full", tasks(1, 2), [[33, 17], [65]], [], [1, 2], shared=1), 6),
    ("mmoe-wide", config("mmoe", "dense-only", tasks(1, 1, 1), [[100], [48]], [2], shared=3, gate_dims=[[9], []]), 5),
    # The weights file holds a plain dict instead of the OrderedDict state_dict.
    ("ple-plain-dict", config("ple", "full", tasks(1, 3), [[7], [5]], [4], [2, 1], shared=1), 6,
     {"plainDict": True}),
]


def flat(t: torch.Tensor) -> List[float]:
    # float32 -> Python float is exact, so json's repr round-trips to the same float32.
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def make_case(index: int, name: str, cfg: Dict, size: int, extra: Dict, outdir: str) -> None:
    torch.manual_seed(1000 + index)
    model = ReferenceModel(cfg)
    batch = random_batch(cfg, size)
    outputs = model(*batch)
    seeds = [torch.randn_like(out) for out in outputs]
    loss = sum((out * seed).sum() for out, seed in zip(outputs, seeds))
    model.zero_grad()
    loss.backward()

    gradients = {}
    for pname, param in model.named_parameters():
        # A parameter the loss never touches (e.g. a [0, n] native-weight tensor) has no grad.
        grad = param.grad if param.grad is not None else torch.zeros_like(param)
        gradients[pname] = {"shape": list(param.shape), "data": flat(grad)}

    with torch.no_grad():
        gate_levels = [{"gates": int(g.shape[1]), "experts": int(g.shape[2]), "data": flat(g.mean(dim=0))}
                       for g in model.gate_weights(*batch)]

    state = model.state_dict()
    assert set(state) == set(gradients), "every state_dict entry should be a parameter"
    torch.save(dict(state) if extra.get("plainDict") else state, os.path.join(outdir, f"{name}.weights.pt"))
    save_file(dict(state), os.path.join(outdir, f"{name}.weights.safetensors"))

    record = {
        "name": name,
        "config": cfg,
        "batch": batch_to_json(batch),
        "outputs": [flat(out) for out in outputs],
        "seeds": [flat(seed) for seed in seeds],
        "gradients": gradients,
        "gates": gate_levels,
    }
    record.update(extra)
    with open(os.path.join(outdir, f"{name}.json"), "w") as fh:
        json.dump(record, fh)


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)  # tiny models: threads only add noise and start-up time
    start = time.time()
    names = []
    for index, case in enumerate(CASES):
        name, cfg, size = case[:3]
        extra = case[3] if len(case) > 3 else {}
        make_case(index, name, cfg, size, extra, outdir)
        names.append(name)
    with open(os.path.join(outdir, "index.json"), "w") as fh:
        json.dump(names, fh, indent=1)
    print(f"wrote {len(names)} cases to {outdir} in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
