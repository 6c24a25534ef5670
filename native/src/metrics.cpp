#include "adatt/metrics.h"

#include <cmath>
#include <limits>

namespace adatt {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double binary_entropy(double p) {
  if (p <= 0.0 || p >= 1.0) return 0.0;
  return -(p * std::log(p) + (1.0 - p) * std::log(1.0 - p));
}

}  // namespace

double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels, const torch::Tensor& weights) {
  const auto sorted = torch::sort(scores.to(torch::kDouble).contiguous());
  const auto values = std::get<0>(sorted).contiguous();
  const auto order = std::get<1>(sorted).contiguous();
  const auto positive = labels.to(torch::kDouble).index_select(0, order).contiguous();
  const auto weight = weights.defined() ? weights.to(torch::kDouble).index_select(0, order).contiguous()
                                        : torch::ones_like(positive);
  const auto* score = values.data_ptr<double>();
  const auto* label = positive.data_ptr<double>();
  const auto* w = weight.data_ptr<double>();
  const int64_t n = values.size(0);
  // In ascending score order: each positive beats the negatives below its group and ties half of its own.
  double correct = 0.0;
  double negatives_below = 0.0;
  double positives = 0.0;
  for (int64_t start = 0; start < n;) {
    int64_t end = start;
    double group_positives = 0.0;
    double group_negatives = 0.0;
    for (; end < n && score[end] == score[start]; ++end) {
      group_positives += label[end] * w[end];
      group_negatives += (1.0 - label[end]) * w[end];
    }
    correct += group_positives * (negatives_below + 0.5 * group_negatives);
    negatives_below += group_negatives;
    positives += group_positives;
    start = end;
  }
  if (positives == 0.0 || negatives_below == 0.0) return kNaN;
  return correct / (positives * negatives_below);
}

torch::Tensor in_sample_space(const torch::Tensor& labels, const torch::Tensor& all_labels, const SampleSpace& space) {
  if (space.task < 0) return labels;
  const auto inside = all_labels.select(1, space.task).eq(space.equals);
  return torch::where(inside, labels, torch::full_like(labels, std::numeric_limits<float>::quiet_NaN()));
}

torch::Tensor predictions(TaskType type, const torch::Tensor& outputs) {
  switch (type) {
    case TaskType::Binary: return torch::sigmoid(outputs.squeeze(-1));
    case TaskType::Multiclass: return torch::softmax(outputs, -1);
    case TaskType::Regression: return outputs.squeeze(-1);
  }
  return outputs;
}

std::map<std::string, double> task_metrics(TaskType type, const torch::Tensor& outputs, const torch::Tensor& labels,
                                           const torch::Tensor& weights) {
  torch::NoGradGuard no_grad;
  namespace F = torch::nn::functional;
  const auto present = labels.isnan().logical_not();
  const auto y = labels.index({present}).to(torch::kDouble);
  const auto raw = outputs.index({present}).to(torch::kDouble);
  const auto count = static_cast<double>(y.size(0));
  std::map<std::string, double> metrics{{"count", count}};
  const auto w = weights.defined() ? weights.index({present}).to(torch::kDouble) : torch::ones_like(y);
  const double total = w.sum().item<double>();
  if (weights.defined()) metrics["weight"] = total;
  if (count == 0 || total == 0) return metrics;
  auto mean = [&](const torch::Tensor& values) { return (w * values).sum().item<double>() / total; };

  if (type == TaskType::Regression) {
    const auto error = raw.squeeze(-1) - y;
    metrics["rmse"] = std::sqrt(mean(error.pow(2)));
    metrics["mae"] = mean(error.abs());
    return metrics;
  }
  if (type == TaskType::Binary) {
    const auto logits = raw.squeeze(-1);
    const double log_loss =
        mean(F::binary_cross_entropy_with_logits(logits, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone)));
    const auto p = torch::sigmoid(logits);
    const double positive_rate = mean(y);
    const double entropy = binary_entropy(positive_rate);
    metrics["auc"] = roc_auc(logits, y, weights.defined() ? w : torch::Tensor());
    metrics["logLoss"] = log_loss;
    metrics["ne"] = entropy > 0 ? log_loss / entropy : kNaN;
    metrics["accuracy"] = mean(((p >= 0.5).to(torch::kDouble) == y).to(torch::kDouble));
    metrics["calibration"] = positive_rate > 0 ? mean(p) / positive_rate : kNaN;
    metrics["positiveRate"] = positive_rate;
    return metrics;
  }
  const auto classes = y.to(torch::kLong);
  const double log_loss = mean(F::cross_entropy(raw, classes, F::CrossEntropyFuncOptions().reduction(torch::kNone)));
  const auto prior = torch::bincount(classes, w, raw.size(1)).to(torch::kDouble) / total;
  const double entropy = -(prior * prior.clamp_min(1e-300).log()).sum().item<double>();
  metrics["logLoss"] = log_loss;
  metrics["ne"] = entropy > 0 ? log_loss / entropy : kNaN;
  metrics["accuracy"] = mean((raw.argmax(-1) == classes).to(torch::kDouble));
  return metrics;
}

}  // namespace adatt
