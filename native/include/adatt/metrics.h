// Evaluation metrics over a whole split, computed in double precision.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace adatt {

enum class TaskType { Binary, Multiclass, Regression };

// Exact ROC AUC (Mann-Whitney with average ranks for tied scores). NaN when one class is absent.
double roc_auc(const torch::Tensor& scores, const torch::Tensor& labels);

// Metrics of one task from raw tower outputs [N, K] and labels [N] (NaN = missing, skipped):
// binary: auc, logLoss, ne (log loss / entropy of the positive rate), accuracy, calibration
// (mean prediction / mean label), positiveRate; multiclass: logLoss, ne, accuracy;
// regression: rmse, mae. All kinds: count (labelled examples).
std::map<std::string, double> task_metrics(TaskType type, const torch::Tensor& outputs, const torch::Tensor& labels);

// Per-example predictions from raw outputs: sigmoid (binary), softmax (multiclass), identity.
torch::Tensor predictions(TaskType type, const torch::Tensor& outputs);

}  // namespace adatt
