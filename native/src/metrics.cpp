#include "adatt/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace adatt {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double binary_entropy(double p) {
  if (p <= 0.0 || p >= 1.0) return 0.0;
  return -(p * std::log(p) + (1.0 - p) * std::log(1.0 - p));
}

// The (positive, negative) pairs of rows order[0 .. n), ascending by score: `correct` counts those
// the scores order right (ties half), each pair weighing w_pos * w_neg.
struct PairCounts {
  double correct = 0.0;
  double positives = 0.0;
  double negatives = 0.0;
  double auc() const { return positives == 0.0 || negatives == 0.0 ? kNaN : correct / (positives * negatives); }
};

PairCounts count_pairs(const double* score, const double* label, const double* w, const int64_t* order, int64_t n) {
  PairCounts counts;
  // Each positive beats the negatives below its tie group and ties half of its own.
  for (int64_t start = 0; start < n;) {
    int64_t end = start;
    double group_positives = 0.0;
    double group_negatives = 0.0;
    for (; end < n && score[order[end]] == score[order[start]]; ++end) {
      group_positives += label[order[end]] * w[order[end]];
      group_negatives += (1.0 - label[order[end]]) * w[order[end]];
    }
    counts.correct += group_positives * (counts.negatives + 0.5 * group_negatives);
    counts.negatives += group_negatives;
    counts.positives += group_positives;
    start = end;
  }
  return counts;
}

// Grouped AUC (see task_metrics) of present rows: scores, 0/1 labels and weights as doubles.
void add_grouped_auc(std::map<std::string, double>& metrics, const torch::Tensor& scores, const torch::Tensor& labels,
                     const torch::Tensor& weights, const torch::Tensor& groups) {
  const auto score_values = scores.contiguous();
  const auto label_values = labels.contiguous();
  const auto weight_values = weights.contiguous();
  const auto group_values = groups.to(torch::kLong).contiguous();
  const double* score = score_values.data_ptr<double>();
  const double* label = label_values.data_ptr<double>();
  const double* w = weight_values.data_ptr<double>();
  const int64_t* group = group_values.data_ptr<int64_t>();
  const int64_t n = score_values.size(0);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int64_t a, int64_t b) { return group[a] != group[b] ? group[a] < group[b] : score[a] < score[b]; });
  double weighted_sum = 0.0, weight_total = 0.0, plain_sum = 0.0;
  int64_t counted = 0;
  for (int64_t start = 0; start < n;) {
    int64_t end = start;
    double group_weight = 0.0;
    for (; end < n && group[order[end]] == group[order[start]]; ++end) group_weight += w[order[end]];
    const double auc = count_pairs(score, label, w, order.data() + start, end - start).auc();
    if (!std::isnan(auc)) {
      weighted_sum += group_weight * auc;
      weight_total += group_weight;
      plain_sum += auc;
      ++counted;
    }
    start = end;
  }
  metrics["gauc"] = counted > 0 ? weighted_sum / weight_total : kNaN;
  metrics["gaucMean"] = counted > 0 ? plain_sum / static_cast<double>(counted) : kNaN;
  metrics["gaucGroups"] = static_cast<double>(counted);
}

}  // namespace

double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels, const torch::Tensor& weights) {
  const auto values = scores.to(torch::kDouble).contiguous();
  const auto order = std::get<1>(torch::sort(values)).contiguous();
  const auto positive = labels.to(torch::kDouble).contiguous();
  const auto weight = weights.defined() ? weights.to(torch::kDouble).contiguous() : torch::ones_like(positive);
  return count_pairs(values.data_ptr<double>(), positive.data_ptr<double>(), weight.data_ptr<double>(),
                     order.data_ptr<int64_t>(), values.size(0))
      .auc();
}

ReliabilityCurve reliability_curve(const torch::Tensor& probabilities, const torch::Tensor& labels,
                                   const torch::Tensor& weights) {
  torch::NoGradGuard no_grad;
  const auto present = labels.isnan().logical_not();
  const auto p = probabilities.index({present}).to(torch::kDouble);
  const auto y = labels.index({present}).to(torch::kDouble);
  const auto w = weights.defined() ? weights.index({present}).to(torch::kDouble) : torch::ones_like(y);
  const auto bin = (p * static_cast<double>(kCalibrationBins)).floor().clamp(0, kCalibrationBins - 1).to(torch::kLong);
  auto per_bin = [&](const torch::Tensor& values) {
    const auto sums = torch::zeros({kCalibrationBins}, torch::kDouble).index_add_(0, bin, values).contiguous();
    return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + kCalibrationBins);
  };
  ReliabilityCurve curve{per_bin(torch::ones_like(y)), per_bin(w), per_bin(w * p), per_bin(w * y)};
  const double total = std::accumulate(curve.weight.begin(), curve.weight.end(), 0.0);
  for (int64_t b = 0; b < kCalibrationBins; ++b) {
    // ECE: sum over bins of (bin weight / total) * |mean prediction - positive rate| in the bin.
    if (total > 0) curve.ece += std::abs(curve.predicted[b] - curve.positive[b]) / total;
    const double weight = curve.weight[b];
    curve.predicted[b] = weight > 0 ? curve.predicted[b] / weight : kNaN;
    curve.positive[b] = weight > 0 ? curve.positive[b] / weight : kNaN;
  }
  if (total == 0) curve.ece = kNaN;
  return curve;
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
                                           const torch::Tensor& weights, const torch::Tensor& groups) {
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
    const double log_loss = mean(F::binary_cross_entropy_with_logits(
        logits, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone)));
    const auto p = torch::sigmoid(logits);
    const double positive_rate = mean(y);
    const double entropy = binary_entropy(positive_rate);
    metrics["auc"] = roc_auc(logits, y, weights.defined() ? w : torch::Tensor());
    if (groups.defined()) add_grouped_auc(metrics, logits, y, w, groups.index({present}));
    metrics["logLoss"] = log_loss;
    metrics["ne"] = entropy > 0 ? log_loss / entropy : kNaN;
    metrics["accuracy"] = mean(((p >= 0.5).to(torch::kDouble) == y).to(torch::kDouble));
    metrics["calibration"] = positive_rate > 0 ? mean(p) / positive_rate : kNaN;
    metrics["ece"] = reliability_curve(p, y, w).ece;
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
