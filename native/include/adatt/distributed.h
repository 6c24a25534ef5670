// Data-parallel training on PyTorch's own distributed engine (c10d): a TCPStore rendezvous, a Gloo
// process group for host tensors and, in a LibTorch built with NCCL, an NCCL group for CUDA tensors
// (PyTorch's default "cpu:gloo,cuda:nccl").
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace adatt {

// Which engine carries collectives over CUDA tensors (host tensors always go through Gloo).
enum class CudaCollectives {
  Auto,  // NCCL when this LibTorch has it and a GPU is visible, else staged through Gloo
  Nccl,  // NCCL, or an error when it cannot be used
  Gloo,  // copied to host memory, reduced by Gloo, copied back
};

// torchrun's environment contract: MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK (LOCAL_RANK picks a GPU).
struct DistributedConfig {
  std::string master_addr;
  int master_port = 29500;
  int world_size = 1;
  int rank = 0;
  std::chrono::milliseconds timeout{60000};
  CudaCollectives cuda = CudaCollectives::Auto;
};

// Whether this LibTorch was built with c10d's NCCL backend (USE_C10D_NCCL).
bool nccl_built();

class Communicator {
 public:
  // Blocks until every rank has joined, within the configured timeout as a whole (else an
  // InvalidArgument naming the ranks that did not join).
  explicit Communicator(const DistributedConfig& config);
  ~Communicator();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // The process groups in use: {"gloo"} or {"gloo", "nccl"}.
  std::vector<std::string> backends() const;

  // Copies rank `root`'s tensors into every rank's (in place).
  void broadcast_(const std::vector<torch::Tensor>& tensors, int root);
  // Element-wise sum over ranks, in place; tensors are flattened into buckets (one device each) so
  // each bucket is one collective call.
  void all_reduce_sum_(const std::vector<torch::Tensor>& tensors);
  // The same, started without waiting: the collectives run on c10d's threads while the caller goes
  // on, and the returned function waits for them and writes the sums back (call it exactly once).
  std::function<void()> start_all_reduce_sum_(const std::vector<torch::Tensor>& tensors);
  // For each tensor, every rank's rows (dim 0) concatenated in rank order; ranks may hold
  // different row counts, the tensors different dtypes and widths (one device). Two collective
  // calls whatever the number of tensors: row counts, then every tensor's bytes in one buffer.
  std::vector<torch::Tensor> all_gather_rows(const std::vector<torch::Tensor>& locals);
  // The same when every rank's row counts are known already: rows[r][i] of tensor i on rank r
  // (one collective call).
  std::vector<torch::Tensor> all_gather_rows(const std::vector<torch::Tensor>& locals,
                                             const std::vector<std::vector<int64_t>>& rows);
  void barrier();
  // Every rank's bytes, in rank order (sizes may differ): two collective calls of sizes every rank
  // knows, so ranks that disagree on anything still get each other's description back.
  std::vector<std::string> all_gather_bytes(const std::string& local);

 private:
  struct Groups;  // the c10d objects, kept out of this header (their headers depend on the build)

  int rank_;
  int world_size_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Groups> groups_;
};

}  // namespace adatt
