#include "adatt/embedding.h"

namespace adatt {
namespace {

// Gathers the distinct ids' rows as a leaf and returns each position's index into them.
torch::Tensor touch(const torch::Tensor& table, const torch::Tensor& ids, TouchedRows& touched) {
  auto [distinct, position] = at::_unique(ids, /*sorted=*/true, /*return_inverse=*/true);
  touched.ids = distinct;
  {
    torch::NoGradGuard no_grad;  // the table itself never gets a gradient
    touched.rows = table.index_select(0, distinct);
  }
  touched.rows.requires_grad_(true);
  return position;
}

}  // namespace

torch::Tensor sparse_embedding(const torch::Tensor& table, const torch::Tensor& ids, TouchedRows& touched) {
  const auto position = touch(table, ids, touched);
  return torch::embedding(touched.rows, position);
}

torch::Tensor sparse_embedding_bag(const torch::Tensor& table, const torch::Tensor& indices,
                                   const torch::Tensor& offsets, int64_t mode, TouchedRows& touched) {
  const auto position = touch(table, indices, touched);
  return std::get<0>(torch::embedding_bag(touched.rows, position, offsets, false, mode));
}

std::pair<torch::Tensor, torch::Tensor> coalesce_rows(const torch::Tensor& ids, const torch::Tensor& rows) {
  torch::NoGradGuard no_grad;
  auto [distinct, position] = at::_unique(ids, /*sorted=*/true, /*return_inverse=*/true);
  auto summed = torch::zeros({distinct.size(0), rows.size(1)}, rows.options());
  summed.index_add_(0, position, rows);
  return {distinct, summed};
}

}  // namespace adatt
