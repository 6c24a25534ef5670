#include "adatt/calibration.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "adatt/errors.h"

namespace adatt {
namespace {

// The labelled rows with positive weight, as CPU doubles.
struct LabelledRows {
  torch::Tensor z, y, w;
};

LabelledRows labelled_rows(const torch::Tensor& logits, const torch::Tensor& labels, const torch::Tensor& weights) {
  const auto z = logits.reshape({-1}).to(torch::kCPU, torch::kDouble);
  const auto y = labels.reshape({-1}).to(torch::kCPU, torch::kDouble);
  if (z.size(0) != y.size(0)) throw InvalidArgument("calibration needs one logit per label");
  const auto w = weights.defined() ? weights.reshape({-1}).to(torch::kCPU, torch::kDouble) : torch::ones_like(y);
  if (w.size(0) != y.size(0)) throw InvalidArgument("calibration needs one sample weight per label");
  const auto keep = y.isnan().logical_not().logical_and(w > 0);
  LabelledRows rows{z.index({keep}), y.index({keep}), w.index({keep})};
  if (!torch::isfinite(rows.z).all().item<bool>())
    throw InvalidArgument("calibration needs finite outputs (a row's logit is NaN or infinite)");
  if ((rows.w * rows.y).sum().item<double>() <= 0 || (rows.w * (1 - rows.y)).sum().item<double>() <= 0) {
    throw InvalidArgument("calibration needs labelled rows of both classes");
  }
  return rows;
}

double log_loss(const LabelledRows& rows, double scale, double bias) {
  namespace F = torch::nn::functional;
  const auto loss = F::binary_cross_entropy_with_logits(
      rows.z * scale + bias, rows.y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  return (rows.w * loss).sum().item<double>();
}

// Newton's method on the (convex) weighted log loss of sigmoid(scale * z + bias), over scale and
// bias or scale alone, halving any step that does not lower the loss (or, for temperature scaling,
// would make the scale non-positive).
std::pair<double, double> fit_logistic(const LabelledRows& rows, bool with_bias) {
  double scale = 1.0;
  double bias = 0.0;
  double loss = log_loss(rows, scale, bias);
  for (int iteration = 0; iteration < 100; ++iteration) {
    const auto s = torch::sigmoid(rows.z * scale + bias);
    const auto residual = rows.w * (s - rows.y);
    const auto curvature = rows.w * s * (1 - s);
    const double g_scale = (residual * rows.z).sum().item<double>();
    const double g_bias = residual.sum().item<double>();
    const double h_ss = (curvature * rows.z * rows.z).sum().item<double>();
    const double h_sb = (curvature * rows.z).sum().item<double>();
    const double h_bb = curvature.sum().item<double>();
    double d_scale = 0.0;
    double d_bias = 0.0;
    if (with_bias) {
      const double det = h_ss * h_bb - h_sb * h_sb;
      if (det > 1e-12 * h_ss * h_bb) {
        d_scale = (h_bb * g_scale - h_sb * g_bias) / det;
        d_bias = (h_ss * g_bias - h_sb * g_scale) / det;
      } else if (h_bb > 0) {
        d_bias = g_bias / h_bb;  // constant logits: only the bias can be fitted
      } else {
        break;
      }
    } else {
      if (!(h_ss > 0)) break;
      d_scale = g_scale / h_ss;
    }
    bool moved = false;
    for (double step = 1.0; step > 1e-12; step /= 2) {
      const double next_scale = scale - step * d_scale;
      const double next_bias = bias - step * d_bias;
      if (!with_bias && !(next_scale > 0)) continue;
      const double next_loss = log_loss(rows, next_scale, next_bias);
      if (next_loss <= loss) {
        const double change = std::max(std::abs(next_scale - scale), std::abs(next_bias - bias));
        scale = next_scale;
        bias = next_bias;
        loss = next_loss;
        moved = change > 1e-12 * (1 + std::abs(scale) + std::abs(bias));
        break;
      }
    }
    if (!moved) break;
  }
  return {scale, bias};
}

// Weighted pool-adjacent-violators over the distinct logits in ascending order. Rows with equal
// logits are pooled first: PAV's merges are only optimal between points of distinct x.
Calibrator fit_isotonic(const LabelledRows& rows) {
  const auto order = std::get<1>(rows.z.sort());
  const auto z = rows.z.index({order}).contiguous();
  const auto wy = (rows.w * rows.y).index({order}).contiguous();
  const auto w = rows.w.index({order}).contiguous();
  struct Block {
    double weighted_positives, weight, first, last;
    double mean() const { return weighted_positives / weight; }
  };
  std::vector<Block> points;
  const double* zs = z.data_ptr<double>();
  const double* wys = wy.data_ptr<double>();
  const double* ws = w.data_ptr<double>();
  for (int64_t i = 0; i < z.size(0); ++i) {
    if (!points.empty() && points.back().first == zs[i]) {
      points.back().weighted_positives += wys[i];
      points.back().weight += ws[i];
    } else {
      points.push_back({wys[i], ws[i], zs[i], zs[i]});
    }
  }
  std::vector<Block> blocks;
  for (const auto& point : points) {
    blocks.push_back(point);
    while (blocks.size() >= 2 && blocks[blocks.size() - 2].mean() >= blocks.back().mean()) {
      const Block last = blocks.back();
      blocks.pop_back();
      blocks.back().weighted_positives += last.weighted_positives;
      blocks.back().weight += last.weight;
      blocks.back().last = last.last;
    }
  }
  Calibrator calibrator;
  calibrator.method = CalibrationMethod::Isotonic;
  for (const auto& block : blocks) {
    calibrator.knot_logits.push_back(block.first);
    calibrator.knot_probabilities.push_back(block.mean());
    if (block.last > block.first) {
      calibrator.knot_logits.push_back(block.last);
      calibrator.knot_probabilities.push_back(block.mean());
    }
  }
  return calibrator;
}

}  // namespace

torch::Tensor Calibrator::probabilities(const torch::Tensor& logits) const {
  const auto z = logits.reshape({-1}).to(torch::kCPU, torch::kDouble).contiguous();
  if (method != CalibrationMethod::Isotonic) return torch::sigmoid(z * scale + bias);
  validate();
  auto p = torch::empty_like(z);
  const double* in = z.data_ptr<double>();
  double* out = p.data_ptr<double>();
  const auto& xs = knot_logits;
  const auto& ys = knot_probabilities;
  for (int64_t i = 0; i < z.size(0); ++i) {
    const double x = in[i];
    const auto above = std::upper_bound(xs.begin(), xs.end(), x);
    if (above == xs.begin()) {
      out[i] = ys.front();
    } else if (above == xs.end()) {
      out[i] = ys.back();
    } else {
      const auto k = static_cast<size_t>(above - xs.begin());
      const double t = (x - xs[k - 1]) / (xs[k] - xs[k - 1]);
      out[i] = ys[k - 1] + t * (ys[k] - ys[k - 1]);
    }
  }
  return p;
}

torch::Tensor Calibrator::logits(const torch::Tensor& logits) const {
  if (method != CalibrationMethod::Isotonic) return logits.reshape({-1}).to(torch::kCPU, torch::kDouble) * scale + bias;
  const auto p = probabilities(logits).clamp(kCalibratedProbabilityFloor, 1 - kCalibratedProbabilityFloor);
  return p.log() - (-p).log1p();
}

Calibrator fit_calibrator(CalibrationMethod method, const torch::Tensor& logits, const torch::Tensor& labels,
                          const torch::Tensor& weights) {
  torch::NoGradGuard no_grad;
  const auto rows = labelled_rows(logits, labels, weights);
  if (method == CalibrationMethod::Isotonic) return fit_isotonic(rows);
  const auto [scale, bias] = fit_logistic(rows, method == CalibrationMethod::Platt);
  return {method, scale, bias, {}, {}};
}

void Calibrator::validate() const {
  if (!std::isfinite(scale) || !std::isfinite(bias))
    throw InvalidArgument("a calibrator's scale and bias must be finite");
  if (method == CalibrationMethod::Temperature && !(scale > 0))
    throw InvalidArgument("temperature scaling needs a positive scale");
  if (method != CalibrationMethod::Isotonic) return;
  if (knot_logits.empty() || knot_logits.size() != knot_probabilities.size()) {
    throw InvalidArgument("an isotonic calibrator needs as many knot probabilities as knot logits, at least one");
  }
  for (size_t k = 0; k < knot_logits.size(); ++k) {
    if (!std::isfinite(knot_logits[k]) || !(knot_probabilities[k] >= 0 && knot_probabilities[k] <= 1)) {
      throw InvalidArgument("an isotonic calibrator needs finite knot logits and knot probabilities in [0, 1]");
    }
    if (k > 0 && !(knot_logits[k] > knot_logits[k - 1] && knot_probabilities[k] >= knot_probabilities[k - 1])) {
      throw InvalidArgument("an isotonic calibrator needs increasing knot logits and non-decreasing probabilities");
    }
  }
}

torch::Tensor calibrated_outputs(TaskType type, const torch::Tensor& outputs,
                                 const std::optional<Calibrator>& calibrator) {
  if (!calibrator) return outputs;
  if (type != TaskType::Binary) throw InvalidArgument("only binary tasks take a calibrator");
  return calibrator->logits(outputs).view({-1, 1});
}

torch::Tensor calibrated_predictions(TaskType type, const torch::Tensor& outputs,
                                     const std::optional<Calibrator>& calibrator) {
  if (!calibrator) return predictions(type, outputs);
  if (type != TaskType::Binary) throw InvalidArgument("only binary tasks take a calibrator");
  return calibrator->probabilities(outputs).to(torch::kFloat);
}

}  // namespace adatt
