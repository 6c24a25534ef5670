// Expert health (as in Kuaishou's HoME, 2024): over rows of a dataset, per level and expert, how
// much of its output is dead ReLU and how large it is, with the gates' weights on it.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "adatt/dataset.h"
#include "adatt/model.h"

namespace adatt {

// One level's sums over the rows, accumulated in double precision on the CPU.
struct ExpertLevelActivity {
  torch::Tensor gate_sum;     // [G, E]: the gate matrix summed over rows; undefined for kinds without gates
  torch::Tensor zero_count;   // [E]: output elements (rows x units) exactly 0
  torch::Tensor active_rows;  // [E, D]: rows on which each output unit is not 0
  torch::Tensor norm_sum;     // [E]: the output vectors' L2 norms summed over rows
};

struct ExpertActivity {
  int64_t rows = 0;
  std::vector<ExpertLevelActivity> levels;
};

// Runs the multi-task part (eval mode, no autograd) over `rows` (int64 row numbers of `data`) in
// batches of `batch_size` on `device`.
ExpertActivity expert_activity(MultiTaskModelImpl& model, const Dataset& data, const torch::Tensor& rows,
                               int64_t batch_size, const torch::Device& device);

}  // namespace adatt
