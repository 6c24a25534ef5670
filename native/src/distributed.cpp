#include "adatt/distributed.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "adatt/errors.h"

namespace adatt {
namespace {

constexpr int64_t kBucketElements = 8 * 1024 * 1024;  // 32 MB of float32 per collective call

std::shared_ptr<::gloo::transport::Device> gloo_device() {
  // As torch.distributed: GLOO_SOCKET_IFNAME picks the interface, else the host name's address
  // (falling back to loopback).
  if (const char* interface = std::getenv("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(interface);
  }
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

Communicator::Communicator(const DistributedConfig& config)
    : rank_(config.rank), world_size_(config.world_size), timeout_(config.timeout) {
  if (world_size_ < 1 || rank_ < 0 || rank_ >= world_size_) {
    throw InvalidArgument("distributed: RANK must lie in [0, WORLD_SIZE)");
  }
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(config.master_port);
  store_options.isServer = rank_ == 0;
  store_options.numWorkers = static_cast<size_t>(world_size_);
  store_options.waitWorkers = true;
  store_options.timeout = timeout_;
  store_ = c10::make_intrusive<c10d::TCPStore>(config.master_addr, store_options);
  auto options = c10d::ProcessGroupGloo::Options::create(timeout_);
  options->devices.push_back(gloo_device());
  group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, world_size_, options);
}

Communicator::~Communicator() = default;

void Communicator::wait(const std::string& what, const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait(timeout_);
  } catch (const c10::Error& e) {
    throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                     "distributed " + what + " failed on rank " + std::to_string(rank_) +
                         " (a peer may have died, hung or left): " + e.what_without_backtrace());
  }
}

void Communicator::broadcast_(const std::vector<torch::Tensor>& tensors, int root) {
  torch::NoGradGuard no_grad;
  for (const auto& tensor : tensors) {
    // Gloo moves host memory: stage device tensors through the CPU.
    std::vector<torch::Tensor> one{tensor.detach().is_cpu() ? tensor.detach() : tensor.detach().cpu()};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    wait("broadcast", group_->broadcast(one, options));
    if (!tensor.is_cpu()) tensor.detach().copy_(one[0]);
  }
}

void Communicator::all_reduce_sum_(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  size_t begin = 0;
  while (begin < tensors.size()) {
    size_t end = begin;
    int64_t elements = 0;
    while (end < tensors.size() && (end == begin || elements + tensors[end].numel() <= kBucketElements)) {
      elements += tensors[end++].numel();
    }
    std::vector<torch::Tensor> flat;
    for (size_t i = begin; i < end; ++i) flat.push_back(tensors[i].reshape({-1}));
    std::vector<torch::Tensor> bucket{torch::cat(flat).cpu()};  // Gloo moves host memory
    wait("all-reduce", group_->allreduce(bucket));
    int64_t offset = 0;
    for (size_t i = begin; i < end; ++i) {
      tensors[i].copy_(bucket[0].narrow(0, offset, tensors[i].numel()).view_as(tensors[i]));
      offset += tensors[i].numel();
    }
    begin = end;
  }
}

torch::Tensor Communicator::all_gather_rows(const torch::Tensor& local) {
  torch::NoGradGuard no_grad;
  auto count = torch::full({1}, local.size(0), torch::kLong);
  std::vector<std::vector<torch::Tensor>> counts(1);
  for (int r = 0; r < world_size_; ++r) counts[0].push_back(torch::empty({1}, torch::kLong));
  std::vector<torch::Tensor> count_in{count};
  wait("all-gather", group_->allgather(counts, count_in));
  int64_t most = 0;
  for (const auto& c : counts[0]) most = std::max(most, c.item<int64_t>());
  // Gloo gathers equal shapes: pad to the largest count, then trim.
  auto shape = local.sizes().vec();
  shape[0] = most;
  auto padded = torch::zeros(shape, local.options());
  if (local.size(0) > 0) padded.narrow(0, 0, local.size(0)).copy_(local);
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int r = 0; r < world_size_; ++r) gathered[0].push_back(torch::empty(shape, local.options()));
  std::vector<torch::Tensor> input{padded};
  wait("all-gather", group_->allgather(gathered, input));
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < world_size_; ++r) parts.push_back(gathered[0][r].narrow(0, 0, counts[0][r].item<int64_t>()));
  return torch::cat(parts, 0);
}

void Communicator::barrier() {
  std::vector<torch::Tensor> token{torch::zeros({1})};
  wait("barrier", group_->allreduce(token));
}

}  // namespace adatt
