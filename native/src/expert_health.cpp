#include "adatt/expert_health.h"

#include <algorithm>

#include "adatt/errors.h"

namespace adatt {

ExpertActivity expert_activity(MultiTaskModelImpl& model, const Dataset& data, const torch::Tensor& rows,
                               int64_t batch_size, const torch::Device& device) {
  if (batch_size <= 0) throw InvalidArgument("batchSize must be positive");
  if (rows.numel() == 0) throw InvalidArgument("expert statistics need at least one row");
  if ((rows < 0).logical_or(rows >= data.size()).any().item<bool>()) {
    throw InvalidArgument("rows must lie in [0, " + std::to_string(data.size()) + ")");
  }
  data.check_features(model.config());
  model.set_training(false);
  c10::InferenceMode inference;
  ExpertActivity activity;
  activity.rows = rows.numel();
  const auto row_list = rows.to(torch::kLong);
  for (int64_t begin = 0; begin < activity.rows; begin += batch_size) {
    const auto batch_rows = row_list.narrow(0, begin, std::min(batch_size, activity.rows - begin));
    const auto probe = model.probe(data.batch(batch_rows).to(device));
    if (activity.levels.empty()) activity.levels.resize(probe.experts.size());
    for (size_t level = 0; level < probe.experts.size(); ++level) {
      auto& sums = activity.levels[level];
      const auto out = probe.experts[level].to(torch::kCPU, torch::kDouble);  // [B, E, D]
      const auto zero = out.eq(0);
      const auto zeros = zero.sum(std::vector<int64_t>{0, 2}).to(torch::kDouble);
      const auto active = zero.logical_not().sum(0).to(torch::kDouble);
      const auto norms = out.norm(2, std::vector<int64_t>{2}).sum(0);
      const bool first = !sums.zero_count.defined();
      sums.zero_count = first ? zeros : sums.zero_count + zeros;
      sums.active_rows = first ? active : sums.active_rows + active;
      sums.norm_sum = first ? norms : sums.norm_sum + norms;
      if (level < probe.gates.size()) {
        const auto gates = probe.gates[level].to(torch::kCPU, torch::kDouble).sum(0);
        sums.gate_sum = first ? gates : sums.gate_sum + gates;
      }
    }
  }
  return activity;
}

}  // namespace adatt
