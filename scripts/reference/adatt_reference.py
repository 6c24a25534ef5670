"""Pure-PyTorch reference of the adatt model zoo.

This is the semantic oracle for the native (LibTorch) models and the "Python peer" for
benchmarks. It follows the behaviour of Meta's facebookresearch/AdaTT `mtl_lib.py`
(`CentralTaskArch` and its fusion modules) written in the plain, idiomatic style of that
design: one nn.Module per expert, Python loops over experts and gates, stack + bmm.
It is deliberately not optimised.

The module tree is laid out so that `state_dict()` yields exactly the "reference weight
layout" of docs/architecture.md, e.g.

    embeddings.0.weight, bag_embeddings.1.weight,
    mtl_arch.experts.0.3.mlp_net.0.weight, mtl_arch.gate_weights.1.0.0.bias,
    mtl_arch.self_exp_weights.0, mtl_arch.gates.0.1.1.weight, mtl_arch.stitchs.0.weight,
    mtl_arch.bottom_projection.mlp_net.2.weight, mtl_arch.task_nets.1.mlp_net.0.bias,
    task_modules.0.0.mlp_net.0.weight, task_modules.0.1.weight

Configs are the normalised `NativeModelConfig` dicts (camelCase keys) of that document.
Run with Debian's /usr/bin/python3 (python3-torch).
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

KINDS = ("adatt-sp", "adatt", "mmoe", "ple", "cross-stitch", "shared-bottom", "single-task")

# A multi-valued feature as EmbeddingBag consumes it: (flat indices, per-example offsets).
Bag = Tuple[torch.Tensor, torch.Tensor]
Batch = Tuple[torch.Tensor, torch.Tensor, List[Bag]]


# --------------------------------------------------------------------------- building blocks


class MLP(nn.Module):
    """Linear layers, each followed by a ReLU (the last one too, as in the reference).

    The layers live in `mlp_net` so parameter names read `mlp_net.{2k}.weight|bias`
    (odd indices are the parameter-free ReLUs). An empty width list is the identity.
    """

    def __init__(self, in_dim: int, widths: Sequence[int]) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        for width in widths:
            layers.append(nn.Linear(in_dim, width))
            layers.append(nn.ReLU())
            in_dim = width
        self.mlp_net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp_net(x)


def softmax_gate(in_dim: int, num_choices: int) -> nn.Sequential:
    # Index 0 holds the Linear, so gate parameters are named `{gate}.0.weight|bias`.
    return nn.Sequential(nn.Linear(in_dim, num_choices), nn.Softmax(dim=-1))


def native_uniform(rows: int, cols: int) -> nn.Parameter:
    """Native-expert weights, U(-1/sqrt(cols), 1/sqrt(cols)) as in the paper code."""
    bound = 1.0 / math.sqrt(max(cols, 1))
    return nn.Parameter(torch.empty(rows, cols).uniform_(-bound, bound))


def flatten(levels: Sequence[Sequence[int]]) -> List[int]:
    return [width for level in levels for width in level]


def run_experts(experts: nn.ModuleList, x: torch.Tensor, owners: Sequence[int]) -> torch.Tensor:
    """Expert e reads row owners[e] of x [B, M, D]; returns [B, E, D_out]."""
    return torch.stack([expert(x[:, owner, :]) for expert, owner in zip(experts, owners)], dim=1)


def run_gates(gates: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
    """Gate g reads row g of x [B, M, D]; returns the softmax weights [B, G, E]."""
    return torch.stack([gate(x[:, g, :]) for g, gate in enumerate(gates)], dim=1)


# Every fusion module maps its input to [B, T, D_last]. When `gate_log` is a list, the
# per-level softmax gate outputs (before any native residual) are appended to it as
# [B, G, E_level] tensors; kinds without gates leave it untouched.


class AdaTTSpArch(nn.Module):
    """AdaTT-sp: T task modules of m experts each; every task gate mixes all T*m experts.

    Input [B, T, D]. With the native residual on, each task adds its own experts' outputs:
    unweighted when m == 1, otherwise through a learnable [T, m] matrix per level.
    """

    def __init__(self, in_dim: int, expert_dims: List[List[int]], num_tasks: int,
                 experts_per_task: int, residual: bool) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.experts_per_task = experts_per_task
        self.residual = residual
        total = num_tasks * experts_per_task
        self.owners = [e // experts_per_task for e in range(total)]
        self.experts = nn.ModuleList()
        self.gate_weights = nn.ModuleList()
        native = []
        for widths in expert_dims:
            self.experts.append(nn.ModuleList(MLP(in_dim, widths) for _ in range(total)))
            self.gate_weights.append(nn.ModuleList(softmax_gate(in_dim, total) for _ in range(num_tasks)))
            # Only m > 1 needs weights: for m == 1 the residual is the expert output itself.
            if residual and experts_per_task > 1:
                native.append(native_uniform(num_tasks, experts_per_task))
            in_dim = widths[-1]
        self.self_exp_weights = nn.ParameterList(native)

    def forward(self, x: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        for level, (experts, gates) in enumerate(zip(self.experts, self.gate_weights)):
            expert_out = run_experts(experts, x, self.owners)  # [B, T*m, D]
            weights = run_gates(gates, x)  # [B, T, T*m]
            if gate_log is not None:
                gate_log.append(weights)
            fused = torch.bmm(weights, expert_out)  # [B, T, D]
            if self.residual:
                if self.experts_per_task == 1:
                    fused = fused + expert_out  # T*1 experts line up with the T tasks
                else:
                    batch, _, width = expert_out.shape
                    own = expert_out.view(batch, self.num_tasks, self.experts_per_task, width)
                    mix = self.self_exp_weights[level].unsqueeze(0).unsqueeze(-1)  # [1, T, m, 1]
                    fused = fused + (own * mix).sum(dim=2)
            x = fused
        return x


class AdaTTGeneralArch(nn.Module):
    """AdaTT with shared experts: T task modules (n_t experts) plus one shared module.

    Input [B, T+1, D] (row T feeds the shared module). Gates mix all experts; the shared
    gate exists below the last level only, but shared experts still feed the task gates
    there. The native residual is added INTO the softmax weights: ones when every module
    has exactly one expert, otherwise learnable per-module [levels, n_i] weights (the
    shared module's matrix has one row fewer because it has no gate at the last level).
    """

    def __init__(self, in_dim: int, expert_dims: List[List[int]], num_tasks: int,
                 experts_per_task: Sequence[int], shared_experts: int, residual: bool) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.residual = residual
        self.module_sizes = list(experts_per_task) + [shared_experts]
        self.unit_native = all(n == 1 for n in self.module_sizes)
        self.owners = [m for m, n in enumerate(self.module_sizes) for _ in range(n)]
        total = len(self.owners)
        levels = len(expert_dims)
        self.experts = nn.ModuleList()
        self.gate_weights = nn.ModuleList()
        for level, widths in enumerate(expert_dims):
            self.experts.append(nn.ModuleList(MLP(in_dim, widths) for _ in range(total)))
            num_gates = num_tasks if level == levels - 1 else num_tasks + 1
            self.gate_weights.append(nn.ModuleList(softmax_gate(in_dim, total) for _ in range(num_gates)))
            in_dim = widths[-1]
        native = []
        if residual and not self.unit_native:
            for m, n in enumerate(self.module_sizes):
                # May be [0, n] for the shared module of a one-level model: kept for layout parity.
                native.append(native_uniform(levels - 1 if m == num_tasks else levels, n))
        self.self_exp_weights = nn.ParameterList(native)

    def _native_offsets(self, level: int, num_gates: int, like: torch.Tensor) -> torch.Tensor:
        """[G, E] matrix holding module g's native weights in its own expert columns."""
        total = len(self.owners)
        rows, start = [], 0
        for g in range(num_gates):
            n = self.module_sizes[g]
            w = like.new_ones(n) if self.unit_native else self.self_exp_weights[g][level]
            rows.append(F.pad(w, (start, total - start - n)))
            start += n
        return torch.stack(rows)

    def forward(self, x: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        for level, (experts, gates) in enumerate(zip(self.experts, self.gate_weights)):
            expert_out = run_experts(experts, x, self.owners)  # [B, E, D]
            weights = run_gates(gates, x)  # [B, G, E], G = T+1 or T at the last level
            if gate_log is not None:
                gate_log.append(weights)
            if self.residual:
                weights = weights + self._native_offsets(level, len(gates), weights).unsqueeze(0)
            x = torch.bmm(weights, expert_out)  # [B, G, D]
        return x


class MMoEArch(nn.Module):
    """Multi-level MMoE: E experts per level over [B, D] input.

    Inner levels have E gates (gate j's mixture feeds expert j of the next level), the last
    level has T gates. Every gate reads the ORIGINAL model input, through an optional MLP.
    """

    def __init__(self, in_dim: int, expert_dims: List[List[int]], gate_dims: List[List[int]],
                 num_tasks: int, num_experts: int) -> None:
        super().__init__()
        self.num_experts = num_experts
        if not gate_dims:
            gate_dims = [[] for _ in expert_dims]
        levels = len(expert_dims)
        self.owners = list(range(num_experts))
        self.experts = nn.ModuleList()
        self.gates = nn.ModuleList()
        expert_in = in_dim
        for level, (widths, gate_widths) in enumerate(zip(expert_dims, gate_dims)):
            self.experts.append(nn.ModuleList(MLP(expert_in, widths) for _ in range(num_experts)))
            num_gates = num_experts if level < levels - 1 else num_tasks
            gate_out_in = gate_widths[-1] if gate_widths else in_dim
            self.gates.append(nn.ModuleList(
                nn.Sequential(MLP(in_dim, gate_widths), nn.Linear(gate_out_in, num_experts), nn.Softmax(dim=-1))
                for _ in range(num_gates)))
            expert_in = widths[-1]

    def forward(self, inp: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        x = inp.unsqueeze(1).expand(-1, self.num_experts, -1)  # level 0: every expert sees the input
        for experts, gates in zip(self.experts, self.gates):
            expert_out = run_experts(experts, x, self.owners)  # [B, E, D]
            weights = torch.stack([gate(inp) for gate in gates], dim=1)  # [B, G, E]
            if gate_log is not None:
                gate_log.append(weights)
            x = torch.bmm(weights, expert_out)  # [B, G, D]
        return x


class PLEArch(nn.Module):
    """PLE / CGC: per-task experts (counts may differ) plus shared experts.

    Input [B, T+1, D]. Task gate t mixes its own experts and the shared ones; the shared
    gate (absent at the last level) mixes all experts.
    """

    def __init__(self, in_dim: int, expert_dims: List[List[int]], num_tasks: int,
                 experts_per_task: Sequence[int], shared_experts: int) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.experts_per_task = list(experts_per_task)
        self.shared_experts = shared_experts
        self.owners = [t for t, n in enumerate(self.experts_per_task) for _ in range(n)]
        self.owners += [num_tasks] * shared_experts
        total = len(self.owners)
        levels = len(expert_dims)
        # Columns of the full expert list that each gate can select (own block, then shared).
        shared_cols = list(range(total - shared_experts, total))
        self.selectable: List[List[int]] = []
        start = 0
        for n in self.experts_per_task:
            self.selectable.append(list(range(start, start + n)) + shared_cols)
            start += n
        self.selectable.append(list(range(total)))

        self.experts = nn.ModuleList()
        d = in_dim
        for widths in expert_dims:
            self.experts.append(nn.ModuleList(MLP(d, widths) for _ in range(total)))
            d = widths[-1]
        self.gate_weights = nn.ModuleList()
        d = in_dim
        for level, widths in enumerate(expert_dims):
            level_gates = nn.ModuleList(softmax_gate(d, n + shared_experts) for n in self.experts_per_task)
            if level < levels - 1:
                level_gates.append(softmax_gate(d, total))
            self.gate_weights.append(level_gates)
            d = widths[-1]

    def forward(self, x: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        for experts, gates in zip(self.experts, self.gate_weights):
            expert_out = run_experts(experts, x, self.owners)  # [B, E, D]
            batch, total, _ = expert_out.shape
            mixed, dense_weights = [], []
            for g, gate in enumerate(gates):
                cols = torch.tensor(self.selectable[g], device=x.device)
                w = gate(x[:, g, :])  # [B, |cols|]
                candidates = expert_out.index_select(1, cols)  # [B, |cols|, D]
                mixed.append(torch.bmm(w.unsqueeze(1), candidates))  # [B, 1, D]
                if gate_log is not None:
                    # Scatter into the full expert axis; unselectable experts get 0.
                    dense_weights.append(w.new_zeros(batch, total).index_copy(1, cols, w))
            if gate_log is not None:
                gate_log.append(torch.stack(dense_weights, dim=1))
            x = torch.cat(mixed, dim=1)  # [B, G, D]
        return x


class CrossStitchArch(nn.Module):
    """Cross-stitch: per level, one MLP per task, then a learned [T, T] mix across tasks."""

    def __init__(self, in_dim: int, expert_dims: List[List[int]], num_tasks: int) -> None:
        super().__init__()
        self.owners = list(range(num_tasks))
        self.experts = nn.ModuleList()
        self.stitchs = nn.ModuleList()  # (sic) the reference's spelling, kept for the layout
        for widths in expert_dims:
            self.experts.append(nn.ModuleList(MLP(in_dim, widths) for _ in range(num_tasks)))
            self.stitchs.append(nn.Linear(num_tasks, num_tasks, bias=False))
            in_dim = widths[-1]

    def forward(self, x: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        for experts, stitch in zip(self.experts, self.stitchs):
            task_out = run_experts(experts, x, self.owners)  # [B, T, D]
            # Task i becomes sum_j W[i, j] * task_j (a Linear applied across the task axis).
            x = torch.matmul(stitch.weight, task_out)
        return x


class SharedBottomArch(nn.Module):
    """One MLP over the input (all expert levels flattened), copied to every task."""

    def __init__(self, in_dim: int, widths: List[int], num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        self.bottom_projection = MLP(in_dim, widths)

    def forward(self, x: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        return self.bottom_projection(x).unsqueeze(1).expand(-1, self.num_tasks, -1)


class SingleTaskArch(nn.Module):
    """Not in the reference: T independent MLPs (all expert levels flattened) on the input."""

    def __init__(self, in_dim: int, widths: List[int], num_tasks: int) -> None:
        super().__init__()
        self.task_nets = nn.ModuleList(MLP(in_dim, widths) for _ in range(num_tasks))

    def forward(self, x: torch.Tensor, gate_log: Optional[list] = None) -> torch.Tensor:
        return torch.stack([net(x) for net in self.task_nets], dim=1)


# --------------------------------------------------------------------------- full model


def _check_config(config: Dict) -> None:
    kind = config["kind"]
    if kind not in KINDS:
        raise ValueError(f"config.kind: unknown kind {kind!r}")
    levels = config["expertDims"]
    if not levels or any(not level for level in levels):
        raise ValueError("config.expertDims: needs at least one level, each with at least one width")
    num_tasks = len(config["tasks"])
    if num_tasks < 1:
        raise ValueError("config.tasks: needs at least one task")
    if kind in ("adatt-sp", "adatt", "ple"):
        per_task = config["expertsPerTask"]
        if len(per_task) != num_tasks or any(n < 1 for n in per_task):
            raise ValueError("config.expertsPerTask: needs one positive count per task")
        if kind == "adatt-sp" and len(set(per_task)) != 1:
            raise ValueError("config.expertsPerTask: adatt-sp needs the same count for every task")
    if kind in ("adatt", "ple", "mmoe") and config["sharedExperts"] < 1:
        raise ValueError("config.sharedExperts: needs at least one expert")
    if kind == "mmoe" and config.get("gateDims") and len(config["gateDims"]) != len(levels):
        raise ValueError("config.gateDims: needs one entry per level")
    if input_width(config) < 1:
        raise ValueError("config: the model input has no features")


def input_width(config: Dict) -> int:
    return (config["denseDim"] + sum(f["dim"] for f in config["categorical"])
            + sum(f["dim"] for f in config["multiValued"]))


def build_fusion(config: Dict, in_dim: int) -> nn.Module:
    kind = config["kind"]
    levels = [list(level) for level in config["expertDims"]]
    num_tasks = len(config["tasks"])
    residual = bool(config.get("nativeResidual", True))
    if kind == "adatt-sp":
        return AdaTTSpArch(in_dim, levels, num_tasks, config["expertsPerTask"][0], residual)
    if kind == "adatt":
        return AdaTTGeneralArch(in_dim, levels, num_tasks, config["expertsPerTask"],
                                config["sharedExperts"], residual)
    if kind == "mmoe":
        return MMoEArch(in_dim, levels, [list(g) for g in config.get("gateDims") or []],
                        num_tasks, config["sharedExperts"])
    if kind == "ple":
        return PLEArch(in_dim, levels, num_tasks, config["expertsPerTask"], config["sharedExperts"])
    if kind == "cross-stitch":
        return CrossStitchArch(in_dim, levels, num_tasks)
    if kind == "shared-bottom":
        return SharedBottomArch(in_dim, flatten(levels), num_tasks)
    return SingleTaskArch(in_dim, flatten(levels), num_tasks)


class ReferenceModel(nn.Module):
    """Input layer + fusion module (`mtl_arch`) + per-task towers (`task_modules`)."""

    def __init__(self, config: Dict) -> None:
        super().__init__()
        _check_config(config)
        self.config = config
        self.kind = config["kind"]
        self.num_tasks = len(config["tasks"])
        self.embeddings = nn.ModuleList(nn.Embedding(f["vocab"], f["dim"]) for f in config["categorical"])
        self.bag_embeddings = nn.ModuleList(
            nn.EmbeddingBag(f["vocab"], f["dim"], mode=f["pooling"]) for f in config["multiValued"])
        self.mtl_arch = build_fusion(config, input_width(config))
        last = config["expertDims"][-1][-1]
        tower = list(config["towerDims"])
        # Unlike the reference (which needs a non-empty task_mlp and emits 1 logit), an empty
        # tower is allowed (module 0 is then the identity) and the head emits `outputs` values.
        self.task_modules = nn.ModuleList(
            nn.Sequential(MLP(last, tower), nn.Linear(tower[-1] if tower else last, task["outputs"]))
            for task in config["tasks"])

    def input_vector(self, dense: torch.Tensor, categorical: torch.Tensor,
                     multi_valued: Sequence[Bag]) -> torch.Tensor:
        """[dense, emb_0(ids_0), ..., bag_0(ids), ...] concatenated along features."""
        parts = [dense]
        parts += [emb(categorical[:, i]) for i, emb in enumerate(self.embeddings)]
        parts += [bag(indices, offsets) for bag, (indices, offsets) in zip(self.bag_embeddings, multi_valued)]
        return torch.cat(parts, dim=1)

    def _fusion_input(self, x: torch.Tensor) -> torch.Tensor:
        # Same routing as CentralTaskArch: one input row per module that owns experts.
        if self.kind in ("adatt-sp", "cross-stitch"):
            return x.unsqueeze(1).expand(-1, self.num_tasks, -1)
        if self.kind in ("adatt", "ple"):
            return x.unsqueeze(1).expand(-1, self.num_tasks + 1, -1)
        return x

    def forward(self, dense: torch.Tensor, categorical: torch.Tensor,
                multi_valued: Sequence[Bag]) -> List[torch.Tensor]:
        """Per task, the tower output [B, outputs] (logits, no sigmoid/softmax)."""
        x = self._fusion_input(self.input_vector(dense, categorical, multi_valued))
        per_task = self.mtl_arch(x)  # [B, T, D_last]
        return [tower(per_task[:, t, :]) for t, tower in enumerate(self.task_modules)]

    def gate_weights(self, dense: torch.Tensor, categorical: torch.Tensor,
                     multi_valued: Sequence[Bag]) -> List[torch.Tensor]:
        """Per level, the softmax gate outputs [B, G, E] before any native residual.

        PLE gates are scattered onto the level's full expert axis (0 where a gate cannot
        select an expert). Kinds without gates return [].
        """
        log: List[torch.Tensor] = []
        self.mtl_arch(self._fusion_input(self.input_vector(dense, categorical, multi_valued)), log)
        return log


# --------------------------------------------------------------------------- batches


def random_batch(config: Dict, size: int, max_bag: int = 3) -> Batch:
    """A random batch drawn from torch's global RNG (seed it for determinism).

    Every multi-valued feature gets at least one empty bag (example 1, or 0 when B == 1).
    """
    dense = torch.randn(size, config["denseDim"])
    columns = [torch.randint(f["vocab"], (size,)) for f in config["categorical"]]
    categorical = torch.stack(columns, dim=1) if columns else torch.zeros(size, 0, dtype=torch.long)
    bags = []
    for f in config["multiValued"]:
        lengths = torch.randint(0, max_bag + 1, (size,))
        lengths[min(1, size - 1)] = 0
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        indices = torch.randint(f["vocab"], (int(lengths.sum()),))
        bags.append((indices, offsets))
    return dense, categorical, bags


def batch_to_json(batch: Batch) -> Dict:
    dense, categorical, bags = batch
    return {
        "size": int(dense.shape[0]),
        "dense": [float(v) for v in dense.reshape(-1).tolist()],
        "categorical": [int(v) for v in categorical.reshape(-1).tolist()],
        "multiValued": [{"indices": i.tolist(), "offsets": o.tolist()} for i, o in bags],
    }


def batch_from_json(config: Dict, data: Dict) -> Batch:
    """Inverse of batch_to_json (flat row-major arrays, EmbeddingBag-style bags)."""
    size = int(data["size"])
    dense = torch.tensor(data.get("dense") or [], dtype=torch.float32).reshape(size, config["denseDim"])
    categorical = torch.tensor(data.get("categorical") or [], dtype=torch.long).reshape(
        size, len(config["categorical"]))
    bags = [(torch.tensor(b["indices"], dtype=torch.long), torch.tensor(b["offsets"], dtype=torch.long))
            for b in data.get("multiValued") or []]
    if len(bags) != len(config["multiValued"]):
        raise ValueError("batch.multiValued: needs one entry per multi-valued feature")
    return dense, categorical, bags
