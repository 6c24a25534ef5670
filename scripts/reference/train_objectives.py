"""The Python side of the multi-task objective tests (test/objectives.test.ts): trains the in-repo
reference model with the objectives written from their papers, independently of adatt's code, and
writes the final weights and each epoch's task weights.

    /usr/bin/python3 scripts/reference/train_objectives.py SPEC.json WEIGHTS_IN.safetensors OUT_PREFIX

SPEC.json: {config (adatt's native model config, with conditionalOn per task), data: {size, dense,
labels: [T][N] (null = missing), sampleWeights: [T][N] (optional)}, taskTypes, epochs, batchSize, seed, lr, weighting: 'fixed' |
'uncertainty' | 'gradnorm' | 'dwa', temperature, alpha, sharedLayer: [names of the reference
model's parameters that make GradNorm's W], weights: [T] (fixed), where: [T] of {task, equals} or
null}.
Writes OUT_PREFIX.safetensors (weights) and OUT_PREFIX.json ({taskWeights: per epoch, [T]}).

- ESMM (Ma et al., SIGIR 2018): a conditional task's tower gives p(task | parent); the model's
  probability is p(parent) * p(task | parent), and its loss is the binary cross-entropy of that
  product with the task's label over every labelled row.
- Sample spaces: a task's loss counts rows whose label of `where.task` equals `where.equals`.
- Sample weights: a task's loss is the weighted mean sum(w l) / sum(w) over its counted rows; a
  batch whose counted rows all weigh 0 adds nothing.
- Uncertainty (Kendall, Gal and Cipolla, CVPR 2018), with s = log sigma^2 learned beside the
  network: classification exp(-s) L + s / 2, regression exp(-s) L / 2 + s / 2.
- GradNorm (Chen, Badrinarayanan, Lee and Rabinovich, ICML 2018): learnable w_t (start 1) times the
  fixed weight; G_t = |d(fixed_t w_t L_t)/dW| over the shared layer W; w takes the gradient of
  sum_t |G_t - mean(G) r_t^alpha| with the target held constant, r_t = (L_t / L_t(0)) / mean, L_t(0)
  the task's loss at its first labelled batch; w is stepped by the network's optimizer, then
  renormalised to sum to T. Tasks without labelled rows in a batch take no part in that step.
- DWA (Liu, Johns and Davison, CVPR 2019): w_t(k) = T exp(r_t / temperature) / sum exp(r_i /
  temperature), r_t = L_t(k-1) / L_t(k-2) over epoch mean training losses; 1 for the first two.
Batches follow adatt's order: epoch e's permutation is torch.randperm(N) under a generator seeded
with seed * 1000003 + e. An epoch's mean loss of a task weights each batch's loss by its rows.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from objective_inputs import model_and_rows  # noqa: E402
from safetensors_io import save_file  # noqa: E402


def main() -> int:
    spec_path, weights_in, out_prefix = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    config, data = spec["config"], spec["data"]
    tasks = config["tasks"]
    model, dense, labels = model_and_rows(spec, weights_in)
    count = len(tasks)
    log_variances = torch.zeros(count, requires_grad=True)
    gradnorm_weights = torch.ones(count, requires_grad=True)
    learned = {"uncertainty": [log_variances], "gradnorm": [gradnorm_weights]}.get(spec["weighting"], [])
    params = list(model.parameters()) + learned
    named = dict(model.named_parameters())
    shared_layer = [named[name] for name in spec.get("sharedLayer", [])]
    initial_losses = [None] * count
    optimizer = torch.optim.Adam(params, lr=spec["lr"])

    n = int(data["size"])
    sample_weights = torch.tensor(data["sampleWeights"]).t() if "sampleWeights" in data else None
    empty = torch.zeros(0, dtype=torch.long)

    def probabilities_or_outputs(outputs):
        """Per task: the conditional tasks' joint probability p(parent) * p(task | parent) (chains compose), else the raw output."""
        result = {}

        def of(t):
            if t in result:
                return result[t]
            parent = tasks[t]["conditionalOn"]
            if parent < 0:
                result[t] = outputs[t].squeeze(-1)
            else:
                parent_probability = of(parent) if tasks[parent]["conditionalOn"] >= 0 else torch.sigmoid(of(parent))
                result[t] = parent_probability * torch.sigmoid(outputs[t].squeeze(-1))
            return result[t]

        return [of(t) for t in range(count)]

    dwa_weights = [1.0] * count
    epoch_losses = []
    reported = []
    batch_size = spec["batchSize"]
    for epoch in range(spec["epochs"]):
        if spec["weighting"] == "dwa" and len(epoch_losses) >= 2:
            ratios = [epoch_losses[-1][t] / epoch_losses[-2][t] if epoch_losses[-2][t] > 0 else 1.0 for t in range(count)]
            exps = [math.exp(r / spec["temperature"]) for r in ratios]
            dwa_weights = [count * e / sum(exps) for e in exps]
        generator = torch.Generator()
        generator.manual_seed(spec["seed"] * 1000003 + epoch)
        order = torch.randperm(n, generator=generator)
        sums = [0.0] * count
        for begin in range(0, n, batch_size):
            rows = order[begin:begin + batch_size]
            values = probabilities_or_outputs(model(dense[rows], empty.reshape(len(rows), 0), []))
            total = torch.zeros(())
            gradnorm_terms = []  # (task, loss)
            for t, kind in enumerate(spec["taskTypes"]):
                y = labels[rows, t]
                keep = ~torch.isnan(y)
                where = spec["where"][t]
                if where is not None:
                    keep &= labels[rows, where["task"]] == where["equals"]
                if not keep.any():
                    continue
                value, target = values[t][keep], y[keep]
                reduction = "none" if sample_weights is not None else "mean"
                if kind == "regression":
                    loss = F.mse_loss(value, target, reduction=reduction)
                elif tasks[t]["conditionalOn"] >= 0:
                    loss = F.binary_cross_entropy(value, target, reduction=reduction)
                else:
                    loss = F.binary_cross_entropy_with_logits(value, target, reduction=reduction)
                if sample_weights is not None:
                    w = sample_weights[rows, t][keep]
                    if float(w.sum()) == 0:
                        continue
                    loss = (w * loss).sum() / w.sum()
                sums[t] += loss.item() * len(rows)
                fixed = spec["weights"][t] * dwa_weights[t]
                if spec["weighting"] == "uncertainty":
                    s = log_variances[t]
                    factor = 0.5 if kind == "regression" else 1.0
                    total = total + fixed * (factor * torch.exp(-s) * loss + 0.5 * s)
                elif spec["weighting"] == "gradnorm":
                    total = total + fixed * gradnorm_weights[t].detach() * loss
                    gradnorm_terms.append((t, loss))
                else:
                    total = total + fixed * loss
            gradnorm_gradient = None
            if gradnorm_terms:
                norms, ratios = {}, {}
                for t, loss in gradnorm_terms:
                    if initial_losses[t] is None:
                        initial_losses[t] = loss.item()
                    grads = torch.autograd.grad(loss, shared_layer, retain_graph=True, allow_unused=True)
                    norms[t] = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads if g is not None))
                    ratios[t] = loss.item() / initial_losses[t] if initial_losses[t] > 0 else 1.0
                w = gradnorm_weights.detach().double()
                mean_ratio = sum(ratios.values()) / len(ratios)
                g_norms = {t: spec["weights"][t] * float(w[t]) * norms[t] for t in norms}
                mean_norm = sum(g_norms.values()) / len(g_norms)
                gradnorm_gradient = torch.zeros(count, dtype=torch.float64)
                for t in norms:
                    relative = ratios[t] / mean_ratio if mean_ratio > 0 else 1.0
                    difference = g_norms[t] - mean_norm * relative ** spec["alpha"]
                    gradnorm_gradient[t] = float((difference > 0) - (difference < 0)) * spec["weights"][t] * norms[t]
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if gradnorm_gradient is not None:
                gradnorm_weights.grad = gradnorm_gradient.float()
            optimizer.step()
            if spec["weighting"] == "gradnorm":
                with torch.no_grad():
                    gradnorm_weights.clamp_(min=0)
                    gradnorm_weights.mul_(count / gradnorm_weights.sum())
        epoch_losses.append([s / n for s in sums])
        if spec["weighting"] == "uncertainty":
            reported.append([spec["weights"][t] * math.exp(-log_variances[t].item()) * (0.5 if kind == "regression" else 1.0)
                             for t, kind in enumerate(spec["taskTypes"])])
        elif spec["weighting"] == "gradnorm":
            reported.append([spec["weights"][t] * gradnorm_weights[t].item() for t in range(count)])
        else:
            reported.append([spec["weights"][t] * dwa_weights[t] for t in range(count)])
    save_file({name: t.detach().contiguous() for name, t in model.state_dict().items()}, out_prefix + ".safetensors")
    with open(out_prefix + ".json", "w") as f:
        json.dump({"taskWeights": reported, "epochLosses": epoch_losses}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
