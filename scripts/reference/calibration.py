"""Independent calibrators for the logits and labels written by the tests.

Usage: /usr/bin/python3 scripts/reference/calibration.py LOGITS.f32 LABELS.f32 [WEIGHTS.f32 | -]
Raw little-endian float32 files of equal count (labels 0/1, NaN = missing, skipped; "-": every
row weighs 1). Prints JSON: "temperature" (T of sigmoid(z / T)) and "platt" ({"scale", "bias"} of
sigmoid(scale z + bias)), both minimising the weighted log loss with L-BFGS, and "isotonic": per
row, the weighted isotonic (non-decreasing in z) fit of the labels, from the max-min formula
fit(i) = max over j <= i of min over k >= i of the weighted mean of the labels of distinct logits
j..k (Barlow et al., 1972), NaN for rows without a label.
"""

import json
import math
import sys

import torch


def read_floats(path: str) -> torch.Tensor:
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).to(torch.float64)


def minimise_log_loss(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, with_bias: bool) -> list:
    # Temperature scaling optimises log T (so T stays positive); Platt scaling (scale, bias).
    params = torch.zeros(2 if with_bias else 1, dtype=torch.float64, requires_grad=True)
    if with_bias:
        params.data[0] = 1.0
    optimizer = torch.optim.LBFGS([params], lr=1, max_iter=1000, tolerance_grad=1e-13, tolerance_change=1e-16,
                                  history_size=20, line_search_fn="strong_wolfe")

    def logits() -> torch.Tensor:
        return z * params[0] + params[1] if with_bias else z / params[0].exp()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (w * torch.nn.functional.binary_cross_entropy_with_logits(logits(), y, reduction="none")).sum() / w.sum()
        loss.backward()
        return loss

    for _ in range(5):
        optimizer.step(closure)
    return params.detach().tolist()


def isotonic(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    values, inverse = torch.unique(z, sorted=True, return_inverse=True)
    n = values.numel()
    weight = torch.zeros(n, dtype=torch.float64).index_add_(0, inverse, w)
    positives = torch.zeros(n, dtype=torch.float64).index_add_(0, inverse, w * y)
    cw = torch.cat([torch.zeros(1, dtype=torch.float64), weight.cumsum(0)])
    cp = torch.cat([torch.zeros(1, dtype=torch.float64), positives.cumsum(0)])
    # mean[j, k]: weighted mean of distinct logits j..k (inf below the diagonal, never chosen by min).
    j = torch.arange(n).unsqueeze(1)
    k = torch.arange(n).unsqueeze(0)
    mean = (cp[k + 1] - cp[j]) / (cw[k + 1] - cw[j])
    mean = torch.where(k >= j, mean, torch.full_like(mean, math.inf))
    fitted = torch.stack([mean[: i + 1, i:].min(dim=1).values.max() for i in range(n)])
    return fitted[inverse]


def main() -> None:
    z, y = read_floats(sys.argv[1]), read_floats(sys.argv[2])
    w = read_floats(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else torch.ones_like(y)
    keep = ~torch.isnan(y) & (w > 0)
    zl, yl, wl = z[keep], y[keep], w[keep]
    (log_temperature,) = minimise_log_loss(zl, yl, wl, with_bias=False)
    scale, bias = minimise_log_loss(zl, yl, wl, with_bias=True)
    per_row = torch.full_like(z, math.nan)
    per_row[keep] = isotonic(zl, yl, wl)
    print(json.dumps({
        "temperature": math.exp(log_temperature),
        "platt": {"scale": scale, "bias": bias},
        "isotonic": [None if math.isnan(v) else v for v in per_row.tolist()],
    }))


if __name__ == "__main__":
    main()
