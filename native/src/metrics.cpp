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

double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels) {
  const auto sorted = torch::sort(scores.to(torch::kDouble).contiguous());
  const auto values = std::get<0>(sorted).contiguous();
  const auto order = std::get<1>(sorted).contiguous();
  const auto positive = labels.to(torch::kDouble).index_select(0, order).contiguous();
  const auto* score = values.data_ptr<double>();
  const auto* label = positive.data_ptr<double>();
  const int64_t n = values.size(0);
  double positive_rank_sum = 0.0;
  double positives = 0.0;
  for (int64_t start = 0; start < n;) {
    int64_t end = start;
    double group_positives = 0.0;
    while (end < n && score[end] == score[start]) group_positives += label[end++];
    const double average_rank = 0.5 * static_cast<double>(start + 1 + end);  // ranks start+1 .. end
    positive_rank_sum += group_positives * average_rank;
    positives += group_positives;
    start = end;
  }
  const double negatives = static_cast<double>(n) - positives;
  if (positives == 0.0 || negatives == 0.0) return kNaN;
  return (positive_rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives);
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

std::map<std::string, double> task_metrics(TaskType type, const torch::Tensor& outputs, const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  const auto present = labels.isnan().logical_not();
  const auto y = labels.index({present}).to(torch::kDouble);
  const auto raw = outputs.index({present}).to(torch::kDouble);
  const auto count = static_cast<double>(y.size(0));
  std::map<std::string, double> metrics{{"count", count}};
  if (count == 0) return metrics;

  if (type == TaskType::Regression) {
    const auto error = raw.squeeze(-1) - y;
    metrics["rmse"] = error.pow(2).mean().sqrt().item<double>();
    metrics["mae"] = error.abs().mean().item<double>();
    return metrics;
  }
  if (type == TaskType::Binary) {
    const auto logits = raw.squeeze(-1);
    const double log_loss = torch::binary_cross_entropy_with_logits(logits, y).item<double>();
    const auto p = torch::sigmoid(logits);
    const double positive_rate = y.mean().item<double>();
    const double entropy = binary_entropy(positive_rate);
    metrics["auc"] = roc_auc(logits, y);
    metrics["logLoss"] = log_loss;
    metrics["ne"] = entropy > 0 ? log_loss / entropy : kNaN;
    metrics["accuracy"] = ((p >= 0.5).to(torch::kDouble) == y).to(torch::kDouble).mean().item<double>();
    metrics["calibration"] = positive_rate > 0 ? p.mean().item<double>() / positive_rate : kNaN;
    metrics["positiveRate"] = positive_rate;
    return metrics;
  }
  const auto classes = y.to(torch::kLong);
  const double log_loss = torch::nn::functional::cross_entropy(raw, classes).item<double>();
  const auto prior = torch::bincount(classes, {}, raw.size(1)).to(torch::kDouble) / count;
  const double entropy = -(prior * prior.clamp_min(1e-300).log()).sum().item<double>();
  metrics["logLoss"] = log_loss;
  metrics["ne"] = entropy > 0 ? log_loss / entropy : kNaN;
  metrics["accuracy"] = (raw.argmax(-1) == classes).to(torch::kDouble).mean().item<double>();
  return metrics;
}

}  // namespace adatt
