// Evaluation metrics over a whole split, computed in double precision.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace adatt {

enum class TaskType { Binary, Multiclass, Regression };

// Exact ROC AUC: the share of (positive, negative) pairs ordered correctly, ties counting half
// (Mann-Whitney with average ranks). With `weights` [N], each pair counts w_pos * w_neg. NaN when
// one class is absent (or weighs nothing).
double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels, const torch::Tensor& weights = {});

// Metrics of one task from raw tower outputs [N, K] and labels [N] (NaN = missing, skipped):
// binary: auc, logLoss, ne (log loss / entropy of the positive rate), accuracy, calibration
// (mean prediction / mean label), ece (expected calibration error over kCalibrationBins
// equal-width bins of the predicted probability), positiveRate; multiclass: logLoss, ne, accuracy;
// regression: rmse, mae. All kinds: count (labelled examples). With sample `weights` [N] every
// mean is weighted (sum w x / sum w), AUC counts pairs by weight, and `weight` is the labelled rows' sum of weights.
//
// With `groups` [N] (int64 ids, e.g. users), binary tasks add grouped AUC: the AUC within every
// group that has both classes among its labelled rows, averaged weighted by the group's labelled
// rows (`gauc`; by their sum of sample weights when weighted) and unweighted (`gaucMean`), and
// `gaucGroups`, how many groups counted.
// ECE's bins, as Guo et al. (ICML 2017): [0, 1/15), [1/15, 2/15), ..., [14/15, 1].
constexpr int64_t kCalibrationBins = 15;

// A reliability curve: per bin of the predicted probability (kCalibrationBins), its labelled rows,
// their sum of weights, their weighted mean prediction and positive rate (NaN when empty), and
// the expected calibration error, sum over bins of weight share * |mean prediction - positive rate|.
struct ReliabilityCurve {
  std::vector<double> rows, weight, predicted, positive;
  double ece = 0.0;
};

// The curve of probabilities [N] against 0/1 labels [N] (NaN: skipped), `weights` [N] or undefined.
ReliabilityCurve reliability_curve(const torch::Tensor& probabilities, const torch::Tensor& labels,
                                   const torch::Tensor& weights = {});

std::map<std::string, double> task_metrics(TaskType type, const torch::Tensor& outputs, const torch::Tensor& labels,
                                           const torch::Tensor& weights = {}, const torch::Tensor& groups = {});

// A task's sample space: the rows whose label of task `task` equals `equals` (-1: every row), for
// its loss (e.g. conversion on clicked rows) and, on request, its metrics.
struct SampleSpace {
  int64_t task = -1;
  double equals = 1.0;
};

// One task's labels [N] with those outside `space` set to NaN, so that losses and metrics leave
// them out as they leave out missing labels; `all_labels` is every task's [N, T].
torch::Tensor in_sample_space(const torch::Tensor& labels, const torch::Tensor& all_labels, const SampleSpace& space);

// Per-example predictions from raw outputs: sigmoid (binary), softmax (multiclass), identity.
torch::Tensor predictions(TaskType type, const torch::Tensor& outputs);

}  // namespace adatt
