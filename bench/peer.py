"""The Python peer of the benchmark: scripts/reference/adatt_reference.py trained the usual way, or,
with "mtlLib" in the cell (bench/run.js --mtl-lib PATH), Meta's own mtl_lib.py (CentralTaskArch)
read from PATH: a second peer, never copied into this repository.

Run with Debian's /usr/bin/python3 (python3-torch, the same LibTorch build as the addon):

    python3 bench/peer.py '<cell JSON>'   # one cell, the same spec bench/ours.js takes, plus
                                          # "native": the normalised config (NativeModelConfig)
    python3 bench/peer.py gemm '{"threads": 2, "shapes": [[1024, 1024, 1024]]}'
    python3 bench/peer.py latency '{"native": {...}, "batch": 1, "calls": 3000, "threads": 1}'
    python3 bench/peer.py info

Prints one JSON line. The cell mirrors bench/ours.js: the same data size, batch, epochs and steps;
each step is randperm slice + gather, zero_grad, forward, BCE-with-logits summed over tasks,
backward, Adam step (as the native trainer does).
"""

import importlib.util
import json
import os
import re
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "reference"))
from adatt_reference import ReferenceModel  # noqa: E402


# NativeModelConfig kinds as mtl_lib.py's CentralTaskArch names them (it has no single-task model).
MTL_LIB_MODELS = {"adatt-sp": "att_sp", "adatt": "att_g", "ple": "ple", "mmoe": "mmoe",
                  "cross-stitch": "cross_st", "shared-bottom": "share_bottom"}


class MtlLibModel(torch.nn.Module):
    """Meta's CentralTaskArch behind ReferenceModel's call signature: the same input layer
    (embeddings and bags concatenated after the dense features), then mtl_lib.py's module."""

    def __init__(self, config, path):
        super().__init__()
        kind = config["kind"]
        if kind not in MTL_LIB_MODELS:
            raise ValueError(f"mtl_lib.py has no '{kind}' model")
        if len(set(config["expertsPerTask"])) > 1:
            raise ValueError("CentralTaskArch takes one expert count for every task")
        if any(config["gateDims"]) or not config["towerDims"]:
            raise ValueError("CentralTaskArch has linear MMoE gates only and needs at least one tower layer")
        if any(task["outputs"] != 1 for task in config["tasks"]):
            raise ValueError("CentralTaskArch's towers have one output each")
        found = importlib.util.spec_from_file_location("mtl_lib", path)
        mtl_lib = importlib.util.module_from_spec(found)
        found.loader.exec_module(mtl_lib)
        task_experts = config["expertsPerTask"][0] if config["expertsPerTask"] else 1
        configs = mtl_lib.MtlConfigs(
            mtl_model=MTL_LIB_MODELS[kind], num_task_experts=task_experts,
            num_shared_experts=config["sharedExperts"], expert_out_dims=[list(level) for level in config["expertDims"]],
            self_exp_res_connect=config["nativeResidual"] if kind in ("adatt-sp", "adatt") else True)
        inputs = mtl_lib.ArchInputs(num_task=len(config["tasks"]), task_mlp=list(config["towerDims"]), mtl_configs=configs)
        self.embeddings = torch.nn.ModuleList(torch.nn.Embedding(f["vocab"], f["dim"]) for f in config["categorical"])
        self.bag_embeddings = torch.nn.ModuleList(
            torch.nn.EmbeddingBag(f["vocab"], f["dim"], mode=f["pooling"]) for f in config["multiValued"])
        width = config["denseDim"] + sum(f["dim"] for f in config["categorical"]) + sum(f["dim"] for f in config["multiValued"])
        self.arch = mtl_lib.CentralTaskArch(configs, inputs, width)

    def forward(self, dense, ids, bags):
        parts = [dense] + [table(ids[:, k]) for k, table in enumerate(self.embeddings)]
        parts += [table(indices, offsets) for table, (indices, offsets) in zip(self.bag_embeddings, bags)]
        return self.arch(torch.cat(parts, dim=1))


def synthetic_data(size, width, task_count):
    """N(0,1) features; task t is positive when feature t (plus noise) is > 0, as in bench/ours.js."""
    dense = torch.randn(size, width)
    noise = 0.5 * (torch.rand(size, task_count) - 0.5)
    cols = torch.arange(task_count) % width
    labels = (dense[:, cols] + noise > 0).float()
    return dense, labels


def train_epoch(model, optimizer, dense, labels, batch, step_times=None):
    no_ids = torch.zeros(batch, 0, dtype=torch.long)
    order = torch.randperm(dense.shape[0])
    for begin in range(0, dense.shape[0], batch):
        start = time.perf_counter()
        rows = order[begin:begin + batch]
        x, y = dense.index_select(0, rows), labels.index_select(0, rows)
        optimizer.zero_grad()
        outputs = model(x, no_ids[: x.shape[0]], [])
        loss = sum(F.binary_cross_entropy_with_logits(out.squeeze(-1), y[:, t]) for t, out in enumerate(outputs))
        loss.backward()
        optimizer.step()
        loss.item()
        if step_times is not None:
            step_times.append(time.perf_counter() - start)


def predict(model, dense, batch):
    no_ids = torch.zeros(batch, 0, dtype=torch.long)
    model.eval()
    parts = []
    with torch.inference_mode():
        for begin in range(0, dense.shape[0], batch):
            x = dense[begin:begin + batch]
            parts.append([torch.sigmoid(out.squeeze(-1)) for out in model(x, no_ids[: x.shape[0]], [])])
    model.train()
    return [torch.cat(task) for task in zip(*parts)]


def run_cell(spec):
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    config, batch, examples, epochs = spec["native"], spec["batch"], spec["examples"], spec["epochs"]
    dense, labels = synthetic_data(examples, config["denseDim"], len(config["tasks"]))
    model = MtlLibModel(config, spec["mtlLib"]) if spec.get("mtlLib") else ReferenceModel(config)

    def adam():
        return torch.optim.Adam(model.parameters(), lr=1e-3)

    optimizer = adam()
    train_epoch(model, optimizer, dense, labels, batch)  # warm-up epoch
    start = time.perf_counter()
    for _ in range(epochs):
        train_epoch(model, optimizer, dense, labels, batch)
    train_seconds = time.perf_counter() - start

    # Per-step latency on a one-batch dataset with a fresh optimizer, as bench/ours.js does.
    step_times = []
    optimizer = adam()
    one_x, one_y = dense[:batch].clone(), labels[:batch].clone()
    train_epoch(model, optimizer, one_x, one_y, batch)
    for _ in range(spec["latencySteps"]):
        train_epoch(model, optimizer, one_x, one_y, batch, step_times)

    predict(model, dense, batch)
    infer_seconds = []
    for _ in range(spec["inferenceRepeats"]):
        start = time.perf_counter()
        predict(model, dense, batch)
        infer_seconds.append(time.perf_counter() - start)

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpuSeconds": usage.ru_utime + usage.ru_stime,
        "trainExamplesPerSecond": epochs * examples / train_seconds,
        "stepMs": 1000 * statistics.median(step_times),
        "inferExamplesPerSecond": examples / statistics.median(infer_seconds),
        "peakRssMiB": usage.ru_maxrss / 1024,
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def gemm_rate(spec):
    """fp32 torch.mm GFLOP/s per [m, k, n] shape: the best of 5 trials of >= 0.3 s each."""
    torch.set_num_threads(spec["threads"])
    rates = []
    for m, k, n in spec["shapes"]:
        a, b = torch.randn(m, k), torch.randn(k, n)
        out = torch.empty(m, n)
        torch.mm(a, b, out=out)
        reps = 1
        while True:  # calibrate the repetition count
            start = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            if time.perf_counter() - start >= 0.3:
                break
            reps *= 2
        best = 0.0
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b, out=out)
            best = max(best, 2.0 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
        rates.append({"shape": [m, k, n], "gflops": best})
    return {"rates": rates}


def latency(spec):
    """p50 / p99 in µs of one forward (with the sigmoid) of `batch` rows, under inference_mode."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    config, batch = spec["native"], spec["batch"]
    model = ReferenceModel(config).eval()
    dense = torch.sin(torch.arange(batch * config["denseDim"], dtype=torch.float32)).view(batch, -1)
    no_ids = torch.zeros(batch, 0, dtype=torch.long)

    def call():
        with torch.inference_mode():
            return [torch.sigmoid(out.squeeze(-1)) for out in model(dense, no_ids, [])]

    for _ in range(min(500, spec["calls"])):
        call()
    times = []
    for _ in range(spec["calls"]):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1000)
    times.sort()
    return {"p50": times[len(times) // 2], "p99": times[min(len(times) - 1, int(0.99 * len(times)))]}


def info():
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    blas = found.group(1) if found else "unknown"
    return {"python": sys.version.split()[0], "torch": torch.__version__, "blasInfo": blas,
            "parallel": torch.__config__.parallel_info().splitlines()[:6]}


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "info":
        result = info()
    elif len(sys.argv) == 3 and sys.argv[1] == "latency":
        result = latency(json.loads(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "gemm":
        result = gemm_rate(json.loads(sys.argv[2]))
    elif len(sys.argv) == 2:
        result = run_cell(json.loads(sys.argv[1]))
    else:
        sys.exit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
