// Row-sparse embedding lookups. A batch touches a few thousand rows of tables that may hold
// millions, so in training those rows are gathered into a small leaf tensor and the lookup reads
// that: backward then yields the gradient of exactly the touched rows, already coalesced (one row
// per distinct id), and nothing of the size of the table is computed, reduced or stepped.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace adatt {

// The rows of one table that a batch touches.
struct TouchedRows {
  torch::Tensor ids;   // [U] int64, distinct, ascending
  torch::Tensor rows;  // [U, dim]: the table's rows at `ids`, a leaf that requires grad
};

// embedding(table, ids) for ids [B], reading the touched rows recorded in `touched`.
torch::Tensor sparse_embedding(const torch::Tensor& table, const torch::Tensor& ids, TouchedRows& touched);

// embedding_bag(table, indices, offsets, mode) (mode 0 sum, 1 mean), reading the touched rows
// recorded in `touched`.
torch::Tensor sparse_embedding_bag(const torch::Tensor& table, const torch::Tensor& indices,
                                   const torch::Tensor& offsets, int64_t mode, TouchedRows& touched);

// Rows that share an id summed into one: (distinct ascending ids, summed rows). For row gradients
// gathered from several ranks, where the same id may come from each.
std::pair<torch::Tensor, torch::Tensor> coalesce_rows(const torch::Tensor& ids, const torch::Tensor& rows);

}  // namespace adatt
