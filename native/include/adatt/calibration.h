// Probability calibration of binary tasks: maps from a tower's logit to a calibrated probability,
// fitted on held-out rows (Guo et al., ICML 2017; Platt 1999; Zadrozny & Elkan, KDD 2002).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <vector>

#include "adatt/metrics.h"

namespace adatt {

enum class CalibrationMethod { Temperature, Platt, Isotonic };

// Probability floor for the log loss of isotonic maps, which may output exactly 0 or 1.
constexpr double kCalibratedProbabilityFloor = 1e-7;

struct Calibrator {
  CalibrationMethod method = CalibrationMethod::Platt;
  // Temperature and Platt: p = sigmoid(scale * z + bias); temperature scaling has bias 0 and
  // scale 1 / T.
  double scale = 1.0;
  double bias = 0.0;
  // Isotonic: a non-decreasing piecewise-linear map through (knot_logits[k], knot_probabilities[k])
  // (knot_logits ascending), constant beyond the first and last knot.
  std::vector<double> knot_logits;
  std::vector<double> knot_probabilities;

  // Calibrated probabilities [N] (double) of logits [N].
  torch::Tensor probabilities(const torch::Tensor& logits) const;
  // Calibrated logits [N] (double): scale * z + bias, or the logit of the isotonic probability
  // clamped to [floor, 1 - floor].
  torch::Tensor logits(const torch::Tensor& logits) const;
  // Throws InvalidArgument unless the parameters make a calibrator: finite, a positive temperature,
  // knots increasing in logit and non-decreasing in [0, 1] in probability.
  void validate() const;
};

// Fits `method` by weighted maximum likelihood (temperature, Platt: Newton's method on the log
// loss) or weighted pool-adjacent-violators (isotonic) on logits [N] and 0/1 labels [N] (NaN:
// skipped), `weights` [N] or undefined (all 1). Throws InvalidArgument without both classes.
Calibrator fit_calibrator(CalibrationMethod method, const torch::Tensor& logits, const torch::Tensor& labels,
                          const torch::Tensor& weights = {});

// A binary task's raw outputs [N, 1] as calibrated logits [N, 1] (double), for its metrics;
// `outputs` unchanged without a calibrator (only binary tasks take one).
torch::Tensor calibrated_outputs(TaskType type, const torch::Tensor& outputs,
                                 const std::optional<Calibrator>& calibrator);

// predictions(type, outputs), or with a calibrator (binary tasks only) its probabilities [N] (float).
torch::Tensor calibrated_predictions(TaskType type, const torch::Tensor& outputs,
                                     const std::optional<Calibrator>& calibrator);

}  // namespace adatt
