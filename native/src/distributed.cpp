#include "adatt/distributed.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/cuda.h>
#include <torch/version.h>

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

bool use_nccl(CudaCollectives wanted) {
  if (wanted == CudaCollectives::Gloo) return false;
  const bool usable = nccl_built() && torch::cuda::is_available();
  if (wanted == CudaCollectives::Nccl && !usable) {
    throw InvalidArgument(nccl_built()
                              ? "distributed: backend 'nccl' needs a CUDA device, and none is visible"
                              : std::string("distributed: backend 'nccl' needs a LibTorch built with CUDA and NCCL; "
                                            "this addon was built against LibTorch ") +
                                    TORCH_VERSION + " without it (build with LIBTORCH_USE_PYTORCH=1 and a CUDA torch)");
  }
  return usable;
}

c10::intrusive_ptr<c10d::Store> connect_store(const std::string& host, c10d::TCPStoreOptions options) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  // LibTorch 2.4+ serves the store with libuv by default, and a build without libuv (Debian's)
  // refuses to: fall back to the classic server, as torch.distributed does with USE_LIBUV=0.
  try {
    return c10::make_intrusive<c10d::TCPStore>(host, options);
  } catch (const c10::Error& e) {
    if (!options.useLibUV || std::string(e.what_without_backtrace()).find("libuv") == std::string::npos) throw;
    options.useLibUV = false;
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(host, options);
}

void wait(int rank, std::chrono::milliseconds timeout, const std::string& what,
          const c10::intrusive_ptr<c10d::Work>& work) {
  try {
    work->wait(timeout);
  } catch (const c10::Error& e) {
    throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                     "distributed " + what + " failed on rank " + std::to_string(rank) +
                         " (a peer may have died, hung or left): " + e.what_without_backtrace());
  }
}

}  // namespace

bool nccl_built() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

struct Communicator::Groups {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  // Whether tensors like `tensor` stay on their device (NCCL) rather than going through host memory.
  bool on_device(const torch::Tensor& tensor) const {
#ifdef USE_C10D_NCCL
    return nccl && tensor.is_cuda();
#else
    return false;
#endif
  }

  // Starts `collective` on NCCL for tensors that stay on their device, else on Gloo.
  template <typename Collective>
  c10::intrusive_ptr<c10d::Work> start(bool on_device, Collective&& collective) {
#ifdef USE_C10D_NCCL
    if (on_device) return collective(*nccl);
#endif
    return collective(*gloo);
  }
};

Communicator::Communicator(const DistributedConfig& config)
    : rank_(config.rank), world_size_(config.world_size), timeout_(config.timeout), groups_(std::make_unique<Groups>()) {
  if (world_size_ < 1 || rank_ < 0 || rank_ >= world_size_) {
    throw InvalidArgument("distributed: RANK must lie in [0, WORLD_SIZE)");
  }
  const bool nccl = use_nccl(config.cuda);
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(config.master_port);
  store_options.isServer = rank_ == 0;
  store_options.numWorkers = static_cast<size_t>(world_size_);
  store_options.waitWorkers = true;
  store_options.timeout = timeout_;
  groups_->store = connect_store(config.master_addr, store_options);
  // One store, one key space per group (as torch.distributed does with PrefixStore).
  auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout_);
  gloo_options->devices.push_back(gloo_device());
  groups_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(
      c10::make_intrusive<c10d::PrefixStore>("gloo", groups_->store), rank_, world_size_, gloo_options);
#ifdef USE_C10D_NCCL
  if (nccl) {
    // Blocking wait makes a collective that outlives the timeout throw from wait(); without it the
    // NCCL watchdog ends the whole process. The user's own setting wins (overwrite = 0).
    setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
    setenv("NCCL_BLOCKING_WAIT", "1", 0);  // the name LibTorch 1.x reads
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = timeout_;
    groups_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        c10::make_intrusive<c10d::PrefixStore>("nccl", groups_->store), rank_, world_size_, nccl_options);
  }
#else
  (void)nccl;
#endif
}

Communicator::~Communicator() = default;

std::vector<std::string> Communicator::backends() const {
  std::vector<std::string> names{"gloo"};
#ifdef USE_C10D_NCCL
  if (groups_->nccl) names.push_back("nccl");
#endif
  return names;
}

void Communicator::broadcast_(const std::vector<torch::Tensor>& tensors, int root) {
  torch::NoGradGuard no_grad;
  for (const auto& tensor : tensors) {
    const auto value = tensor.detach();
    const bool on_device = groups_->on_device(value);
    std::vector<torch::Tensor> one{on_device || value.is_cpu() ? value : value.cpu()};
    c10d::BroadcastOptions options;
    options.rootRank = root;
    wait(rank_, timeout_, "broadcast", groups_->start(on_device, [&](auto& group) { return group.broadcast(one, options); }));
    if (!one[0].is_same(value)) value.copy_(one[0]);
  }
}

void Communicator::all_reduce_sum_(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  size_t begin = 0;
  while (begin < tensors.size()) {
    const auto device = tensors[begin].device();
    size_t end = begin;
    int64_t elements = 0;
    while (end < tensors.size() && tensors[end].device() == device &&
           (end == begin || elements + tensors[end].numel() <= kBucketElements)) {
      elements += tensors[end++].numel();
    }
    const bool on_device = groups_->on_device(tensors[begin]);
    std::vector<torch::Tensor> flat;
    for (size_t i = begin; i < end; ++i) flat.push_back(tensors[i].reshape({-1}));
    std::vector<torch::Tensor> bucket{on_device ? torch::cat(flat) : torch::cat(flat).cpu()};
    wait(rank_, timeout_, "all-reduce", groups_->start(on_device, [&](auto& group) { return group.allreduce(bucket); }));
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
  // Row counts travel through Gloo (host memory) whatever the device of the rows.
  std::vector<std::vector<torch::Tensor>> counts(1);
  for (int r = 0; r < world_size_; ++r) counts[0].push_back(torch::empty({1}, torch::kLong));
  std::vector<torch::Tensor> count_in{torch::full({1}, local.size(0), torch::kLong)};
  wait(rank_, timeout_, "all-gather", groups_->gloo->allgather(counts, count_in));
  int64_t most = 0;
  for (const auto& c : counts[0]) most = std::max(most, c.item<int64_t>());
  // Collectives gather equal shapes: pad to the largest count, then trim.
  const bool on_device = groups_->on_device(local);
  const auto options = on_device ? local.options() : local.options().device(torch::kCPU);
  auto shape = local.sizes().vec();
  shape[0] = most;
  auto padded = torch::zeros(shape, options);
  if (local.size(0) > 0) padded.narrow(0, 0, local.size(0)).copy_(local);
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int r = 0; r < world_size_; ++r) gathered[0].push_back(torch::empty(shape, options));
  std::vector<torch::Tensor> input{padded};
  wait(rank_, timeout_, "all-gather", groups_->start(on_device, [&](auto& group) { return group.allgather(gathered, input); }));
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < world_size_; ++r) parts.push_back(gathered[0][r].narrow(0, 0, counts[0][r].item<int64_t>()));
  return torch::cat(parts, 0).to(local.device());
}

void Communicator::barrier() {
  std::vector<torch::Tensor> token{torch::zeros({1})};
  wait(rank_, timeout_, "barrier", groups_->gloo->allreduce(token));
}

}  // namespace adatt
