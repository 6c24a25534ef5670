// Data-parallel training on PyTorch's own distributed engine (c10d): a TCPStore rendezvous and a
// Gloo process group. CUDA tensors are staged through host memory (NCCL is not wired in yet).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace c10d {
class Store;
class ProcessGroupGloo;
class Work;
}  // namespace c10d

namespace adatt {

// torchrun's environment contract: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK (LOCAL_RANK picks a GPU).
struct DistributedConfig {
  std::string master_addr;
  int master_port = 29500;
  int world_size = 1;
  int rank = 0;
  std::chrono::milliseconds timeout{60000};
};

class Communicator {
 public:
  // Blocks until every rank has joined (or the timeout passes: c10::Error).
  explicit Communicator(const DistributedConfig& config);
  ~Communicator();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Copies rank `root`'s tensors into every rank's (in place).
  void broadcast_(const std::vector<torch::Tensor>& tensors, int root);
  // Element-wise sum over ranks, in place; tensors are flattened into buckets so each bucket is one
  // collective call.
  void all_reduce_sum_(const std::vector<torch::Tensor>& tensors);
  // Every rank's rows (dim 0) concatenated in rank order; ranks may hold different row counts.
  torch::Tensor all_gather_rows(const torch::Tensor& local);
  void barrier();

 private:
  void wait(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work);

  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace adatt
