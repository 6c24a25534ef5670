"""Self-test of adatt_reference.py (run: /usr/bin/python3 scripts/reference/check_reference.py).

1. AdaTT-sp forward equals a hand computation (plain Python floats) on tiny models,
   including the m == 1 native residual.
2. state_dict names and shapes equal the layout of docs/architecture.md, enumerated here
   independently from the model code, for every fixture config.
3. Gate outputs are softmax rows taken before the residual; PLE scatters zeros.
4. The fixture script is deterministic and its files reload into identical results.
"""

import json
import math
import os
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adatt_reference import KINDS, ReferenceModel, batch_from_json, input_width, random_batch  # noqa: E402
import make_parity_fixtures as fixtures  # noqa: E402

FAILURES: List[str] = []


def check(ok: bool, what: str) -> None:
    if not ok:
        FAILURES.append(what)
        print("FAIL", what)


# --------------------------------------------------------------------------- 1. hand computation


def matvec(w: List[List[float]], b: List[float], x: List[float]) -> List[float]:
    return [sum(wij * xj for wij, xj in zip(row, x)) + bi for row, bi in zip(w, b)]


def relu(v: List[float]) -> List[float]:
    return [max(0.0, a) for a in v]


def softmax(v: List[float]) -> List[float]:
    top = max(v)
    e = [math.exp(a - top) for a in v]
    return [a / sum(e) for a in e]


def hand_adatt_sp(cfg: Dict, sd: Dict[str, torch.Tensor], dense, cat, bags) -> List[List[List[float]]]:
    """AdaTT-sp straight from the paper's equations, one example at a time."""
    p = {k: v.tolist() for k, v in sd.items()}
    tasks = len(cfg["tasks"])
    m = cfg["expertsPerTask"][0]
    results = [[] for _ in range(tasks)]
    for b in range(dense.shape[0]):
        x = dense[b].tolist()
        for i in range(len(cfg["categorical"])):
            x += p[f"embeddings.{i}.weight"][int(cat[b, i])]
        for j, (indices, offsets) in enumerate(bags):
            end = int(offsets[b + 1]) if b + 1 < len(offsets) else len(indices)
            rows = [p[f"bag_embeddings.{j}.weight"][int(r)] for r in indices[int(offsets[b]):end]]
            dim = cfg["multiValued"][j]["dim"]
            pooled = [sum(r[d] for r in rows) for d in range(dim)]
            if cfg["multiValued"][j]["pooling"] == "mean" and rows:
                pooled = [v / len(rows) for v in pooled]
            x += pooled
        h = [list(x) for _ in range(tasks)]  # every task module starts from the same input
        for level, widths in enumerate(cfg["expertDims"]):
            outs = []
            for e in range(tasks * m):
                v = h[e // m]
                for k in range(len(widths)):
                    pre = f"mtl_arch.experts.{level}.{e}.mlp_net.{2 * k}"
                    v = relu(matvec(p[pre + ".weight"], p[pre + ".bias"], v))
                outs.append(v)
            new_h = []
            for t in range(tasks):
                pre = f"mtl_arch.gate_weights.{level}.{t}.0"
                g = softmax(matvec(p[pre + ".weight"], p[pre + ".bias"], h[t]))
                fused = [sum(g[e] * outs[e][d] for e in range(tasks * m)) for d in range(widths[-1])]
                if cfg["nativeResidual"]:
                    for j in range(m):
                        w = 1.0 if m == 1 else p[f"mtl_arch.self_exp_weights.{level}"][t][j]
                        fused = [a + w * o for a, o in zip(fused, outs[t * m + j])]
                new_h.append(fused)
            h = new_h
        for t in range(tasks):
            v = h[t]
            for k in range(len(cfg["towerDims"])):
                pre = f"task_modules.{t}.0.mlp_net.{2 * k}"
                v = relu(matvec(p[pre + ".weight"], p[pre + ".bias"], v))
            results[t].append(matvec(p[f"task_modules.{t}.1.weight"], p[f"task_modules.{t}.1.bias"], v))
    return results


def check_hand_computation() -> None:
    base = fixtures.config("adatt-sp", "small", fixtures.tasks(1, 2), [[3]], [], [1, 1], residual=True)
    variants = {
        "m1-res": base,
        "m1-res-tower": dict(base, towerDims=[2]),
        "m1-nores": dict(base, nativeResidual=False),
        "m2-res-2lvl": dict(base, expertDims=[[4, 3], [3]], expertsPerTask=[2, 2], towerDims=[]),
    }
    for label, cfg in variants.items():
        torch.manual_seed(7)
        model = ReferenceModel(cfg).double()  # float64 so the comparison is about semantics
        dense, cat, bags = random_batch(cfg, 4)
        got = model(dense.double(), cat, bags)
        want = hand_adatt_sp(cfg, model.state_dict(), dense, cat, bags)
        for t, (g, w) in enumerate(zip(got, want)):
            err = (g - torch.tensor(w, dtype=torch.float64)).abs().max().item()
            check(err < 1e-12, f"hand computation adatt-sp {label} task {t}: max|diff| {err:.3g}")
    # The m == 1 residual must really contribute: it adds each task's own expert output.
    torch.manual_seed(7)
    on = ReferenceModel(base)
    off = ReferenceModel(dict(base, nativeResidual=False))
    off.load_state_dict(on.state_dict())
    x = on._fusion_input(on.input_vector(*random_batch(base, 4)))
    own = torch.stack([on.mtl_arch.experts[0][t](x[:, t]) for t in range(2)], dim=1)
    check(own.abs().sum() > 0 and torch.allclose(on.mtl_arch(x), off.mtl_arch(x) + own, atol=1e-6),
          "adatt-sp m=1 residual adds the task's own expert output")


# --------------------------------------------------------------------------- 2. layout


def expected_layout(cfg: Dict) -> Dict[str, Tuple[int, ...]]:
    """Names and shapes per docs/architecture.md ("Reference weight layout")."""
    out: Dict[str, Tuple[int, ...]] = {}

    def mlp(prefix: str, in_dim: int, widths: List[int]) -> int:
        for k, w in enumerate(widths):
            out[f"{prefix}.mlp_net.{2 * k}.weight"] = (w, in_dim)
            out[f"{prefix}.mlp_net.{2 * k}.bias"] = (w,)
            in_dim = w
        return in_dim

    def linear(prefix: str, in_dim: int, n: int, bias: bool = True) -> None:
        out[f"{prefix}.weight"] = (n, in_dim)
        if bias:
            out[f"{prefix}.bias"] = (n,)

    for i, f in enumerate(cfg["categorical"]):
        out[f"embeddings.{i}.weight"] = (f["vocab"], f["dim"])
    for j, f in enumerate(cfg["multiValued"]):
        out[f"bag_embeddings.{j}.weight"] = (f["vocab"], f["dim"])

    kind, levels = cfg["kind"], cfg["expertDims"]
    tasks, per_task, shared = len(cfg["tasks"]), cfg["expertsPerTask"], cfg["sharedExperts"]
    d_in = input_width(cfg)
    d = d_in
    for level, widths in enumerate(levels):
        last = level == len(levels) - 1
        if kind in ("adatt-sp", "adatt"):
            total = sum(per_task) + (shared if kind == "adatt" else 0)
            for e in range(total):
                mlp(f"mtl_arch.experts.{level}.{e}", d, widths)
            gates = tasks + (1 if kind == "adatt" and not last else 0)
            for g in range(gates):
                linear(f"mtl_arch.gate_weights.{level}.{g}.0", d, total)
            if kind == "adatt-sp" and cfg["nativeResidual"] and per_task[0] > 1:
                out[f"mtl_arch.self_exp_weights.{level}"] = (tasks, per_task[0])
        elif kind == "ple":
            total = sum(per_task) + shared
            for e in range(total):
                mlp(f"mtl_arch.experts.{level}.{e}", d, widths)
            for t in range(tasks):
                linear(f"mtl_arch.gate_weights.{level}.{t}.0", d, per_task[t] + shared)
            if not last:
                linear(f"mtl_arch.gate_weights.{level}.{tasks}.0", d, total)
        elif kind == "mmoe":
            for e in range(shared):
                mlp(f"mtl_arch.experts.{level}.{e}", d, widths)
            gate_widths = cfg["gateDims"][level] if cfg["gateDims"] else []
            for g in range(tasks if last else shared):
                gate_in = mlp(f"mtl_arch.gates.{level}.{g}.0", d_in, gate_widths)
                linear(f"mtl_arch.gates.{level}.{g}.1", gate_in, shared)
        elif kind == "cross-stitch":
            for t in range(tasks):
                mlp(f"mtl_arch.experts.{level}.{t}", d, widths)
            linear(f"mtl_arch.stitchs.{level}", tasks, tasks, bias=False)
        d = widths[-1]
    if kind == "adatt" and cfg["nativeResidual"] and any(n != 1 for n in per_task + [shared]):
        for i, n in enumerate(per_task + [shared]):
            out[f"mtl_arch.self_exp_weights.{i}"] = (len(levels) - (1 if i == tasks else 0), n)
    flat = [w for level in levels for w in level]
    if kind == "shared-bottom":
        mlp("mtl_arch.bottom_projection", d_in, flat)
    if kind == "single-task":
        for t in range(tasks):
            mlp(f"mtl_arch.task_nets.{t}", d_in, flat)
    for t, task in enumerate(cfg["tasks"]):
        tower_out = mlp(f"task_modules.{t}.0", d, cfg["towerDims"])
        linear(f"task_modules.{t}.1", tower_out, task["outputs"])
    return out


def check_layouts() -> None:
    extra = [
        fixtures.config("adatt-sp", "small", fixtures.tasks(1, 1), [[4]], [], [2, 2], residual=False),
        fixtures.config("adatt", "small", fixtures.tasks(1, 1), [[4], [3]], [], [1, 1], shared=1, residual=False),
        fixtures.config("mmoe", "small", fixtures.tasks(1, 1), [[4], [3]], [], shared=2, gate_dims=[[], []]),
    ]
    for cfg in [case[1] for case in fixtures.CASES] + extra:
        model = ReferenceModel(cfg)
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        want = expected_layout(cfg)
        check(set(got) == set(want),
              f"layout keys {cfg['kind']} {cfg['expertDims']}: missing {sorted(set(want) - set(got))}, "
              f"unexpected {sorted(set(got) - set(want))}")
        bad = [k for k in got if k in want and got[k] != want[k]]
        check(not bad, f"layout shapes {cfg['kind']}: {[(k, got[k], want[k]) for k in bad]}")


# --------------------------------------------------------------------------- 3. gates


def check_gates() -> None:
    for case in fixtures.CASES:
        name, cfg = case[0], case[1]
        torch.manual_seed(3)
        model = ReferenceModel(cfg)
        batch = random_batch(cfg, 4)
        with torch.no_grad():
            levels = model.gate_weights(*batch)
        if cfg["kind"] not in ("adatt-sp", "adatt", "mmoe", "ple"):
            check(levels == [], f"{name}: no gates expected")
            continue
        check(len(levels) == len(cfg["expertDims"]), f"{name}: one gate tensor per level")
        for level, g in enumerate(levels):
            # Row sums of 1 also show the residual (which would shift the sums) is not included.
            check(torch.allclose(g.sum(-1), torch.ones(()), atol=1e-6), f"{name} level {level}: rows sum to 1")
            if cfg["kind"] == "ple":
                n, shared = cfg["expertsPerTask"], cfg["sharedExperts"]
                for t in range(len(n)):
                    own = slice(sum(n[:t]), sum(n[:t + 1]))
                    mask = torch.ones(g.shape[-1], dtype=torch.bool)
                    mask[own] = False
                    mask[g.shape[-1] - shared:] = False
                    check(bool((g[:, t, mask] == 0).all()), f"{name} level {level} gate {t}: zeros off its experts")


# --------------------------------------------------------------------------- 4. fixtures


def check_fixtures() -> None:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        start = time.time()
        check(fixtures.main(["make", first]) == 0, "fixture script runs")
        elapsed = time.time() - start
        check(elapsed < 20, f"fixture script is fast ({elapsed:.1f}s)")
        fixtures.main(["make", second])
        names = json.load(open(os.path.join(first, "index.json")))
        kinds = {}
        for name in names:
            rec = json.load(open(os.path.join(first, f"{name}.json")))
            again = json.load(open(os.path.join(second, f"{name}.json")))
            check(rec == again, f"{name}: deterministic")
            cfg = rec["config"]
            kinds[cfg["kind"]] = kinds.get(cfg["kind"], 0) + 1
            state = torch.load(os.path.join(first, f"{name}.weights.pt"))
            check(type(state) is (dict if rec.get("plainDict") else type(ReferenceModel(cfg).state_dict())),
                  f"{name}: saved container type")
            model = ReferenceModel(cfg)
            model.load_state_dict(state, strict=True)
            batch = batch_from_json(cfg, rec["batch"])
            outs = model(*batch)
            loss = sum((o * torch.tensor(s).view_as(o)).sum() for o, s in zip(outs, rec["seeds"]))
            loss.backward()
            for t, (o, ref) in enumerate(zip(outs, rec["outputs"])):
                check(torch.equal(o.detach().reshape(-1), torch.tensor(ref)), f"{name}: output {t} reproduces")
            for pname, p in model.named_parameters():
                grad = p.grad if p.grad is not None else torch.zeros_like(p)
                ref = rec["gradients"][pname]
                check(ref["shape"] == list(p.shape), f"{name}: grad shape {pname}")
                check(torch.equal(grad.reshape(-1), torch.tensor(ref["data"], dtype=torch.float32)),
                      f"{name}: grad {pname} reproduces")
            for level in rec["gates"]:
                check(len(level["data"]) == level["gates"] * level["experts"], f"{name}: gate data size")
        check(all(kinds.get(k, 0) >= 3 for k in KINDS), f"3+ cases per kind: {kinds}")


def main() -> int:
    torch.set_num_threads(1)
    start = time.time()
    check_hand_computation()
    check_layouts()
    check_gates()
    check_fixtures()
    status = "FAILED" if FAILURES else "ok"
    print(f"check_reference: {status} ({len(FAILURES)} failures, {time.time() - start:.1f}s)")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
