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
#include <cstring>

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
  } catch (const std::exception& e) {  // Gloo's own I/O errors, rethrown from its threads
    throw c10::Error({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                     "distributed " + what + " failed on rank " + std::to_string(rank) +
                         " (a peer may have died, hung or left): " + e.what());
  }
}

// Each rank announces itself in the store and waits, until `deadline`, for all the others.
void await_every_rank(c10d::Store& store, const DistributedConfig& config,
                      std::chrono::steady_clock::time_point deadline) {
  const auto key = [](int rank) { return "adatt/joined/" + std::to_string(rank); };
  store.set(key(config.rank), std::vector<uint8_t>{1});
  std::vector<std::string> keys;
  for (int r = 0; r < config.world_size; ++r) keys.push_back(key(r));
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  try {
    store.wait(keys, std::max(left, std::chrono::milliseconds(1)));
  } catch (const c10::Error&) {
    std::string missing;
    for (int r = 0; r < config.world_size; ++r) {
      if (!store.check({key(r)})) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
    }
    throw InvalidArgument("distributed: rank" + std::string(missing.find(',') == std::string::npos ? " " : "s ") +
                          missing + " of " + std::to_string(config.world_size) + " did not join within " +
                          std::to_string(config.timeout.count()) + " ms (rendezvous at " + config.master_addr + ":" +
                          std::to_string(config.master_port) + ")");
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
    : rank_(config.rank),
      world_size_(config.world_size),
      timeout_(config.timeout),
      groups_(std::make_unique<Groups>()) {
  if (world_size_ < 1 || rank_ < 0 || rank_ >= world_size_) {
    throw InvalidArgument("distributed: RANK must lie in [0, WORLD_SIZE)");
  }
  const bool nccl = use_nccl(config.cuda);
  // One deadline for the whole rendezvous: connecting to the store, every rank's arrival and the
  // groups' own connections (each step waiting its full timeout made a missing peer cost 2-3x it).
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<uint16_t>(config.master_port);
  store_options.isServer = rank_ == 0;
  store_options.numWorkers = static_cast<size_t>(world_size_);
  store_options.waitWorkers = false;  // the arrival below waits, naming who is missing
  store_options.timeout = timeout_;
  groups_->store = connect_store(config.master_addr, store_options);
  await_every_rank(*groups_->store, config, deadline);
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
    wait(rank_, timeout_, "broadcast",
         groups_->start(on_device, [&](auto& group) { return group.broadcast(one, options); }));
    if (!one[0].is_same(value)) value.copy_(one[0]);
  }
}

void Communicator::all_reduce_sum_(const std::vector<torch::Tensor>& tensors) { start_all_reduce_sum_(tensors)(); }

std::function<void()> Communicator::start_all_reduce_sum_(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  struct Bucket {
    size_t begin, end;
    torch::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  auto buckets = std::make_shared<std::vector<Bucket>>();
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
    auto work = groups_->start(on_device, [&](auto& group) { return group.allreduce(bucket); });
    buckets->push_back({begin, end, bucket[0], work});
    begin = end;
  }
  return [this, buckets, tensors]() {
    torch::NoGradGuard no_grad;
    for (const auto& bucket : *buckets) {
      wait(rank_, timeout_, "all-reduce", bucket.work);
      int64_t offset = 0;
      for (size_t i = bucket.begin; i < bucket.end; ++i) {
        tensors[i].copy_(bucket.flat.narrow(0, offset, tensors[i].numel()).view_as(tensors[i]));
        offset += tensors[i].numel();
      }
    }
  };
}

std::vector<torch::Tensor> Communicator::all_gather_rows(const std::vector<torch::Tensor>& locals) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(locals.size());
  // Row counts travel through Gloo (host memory) whatever the device of the rows.
  std::vector<std::vector<torch::Tensor>> counts(1);
  for (int r = 0; r < world_size_; ++r) counts[0].push_back(torch::empty({n}, torch::kLong));
  auto local_counts = torch::empty({n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) local_counts[i] = locals[i].size(0);
  std::vector<torch::Tensor> count_in{local_counts};
  wait(rank_, timeout_, "all-gather", groups_->gloo->allgather(counts, count_in));
  std::vector<std::vector<int64_t>> rows;
  for (const auto& c : counts[0]) rows.emplace_back(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + n);
  return all_gather_rows(locals, rows);
}

std::vector<torch::Tensor> Communicator::all_gather_rows(const std::vector<torch::Tensor>& locals,
                                                         const std::vector<std::vector<int64_t>>& rows) {
  torch::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(locals.size());
  if (n == 0) return {};
  if (rows.size() != static_cast<size_t>(world_size_)) throw InvalidArgument("all-gather: one row count list per rank");
  std::vector<int64_t> row_bytes;
  for (int64_t i = 0; i < n; ++i) {
    if (rows[rank_][i] != locals[i].size(0)) throw InvalidArgument("all-gather: this rank's row counts are wrong");
    row_bytes.push_back(static_cast<int64_t>(locals[i].element_size()) *
                        c10::multiply_integers(locals[i].sizes().slice(1)));
  }
  // Each tensor's bytes start 8-byte aligned, so they can be viewed back as any dtype.
  auto segment = [&](int64_t i, int64_t count) { return (count * row_bytes[i] + 7) / 8 * 8; };
  std::vector<int64_t> rank_bytes(world_size_, 0);
  for (int r = 0; r < world_size_; ++r) {
    if (rows[r].size() != locals.size()) throw InvalidArgument("all-gather: one row count per tensor and rank");
    for (int64_t i = 0; i < n; ++i) rank_bytes[r] += segment(i, rows[r][i]);
  }
  // Every tensor's bytes side by side; collectives gather equal sizes, so pad to the largest rank's.
  const int64_t most = *std::max_element(rank_bytes.begin(), rank_bytes.end());
  const bool on_device = groups_->on_device(locals.front());
  const auto bytes =
      torch::TensorOptions().dtype(torch::kUInt8).device(on_device ? locals.front().device() : torch::kCPU);
  auto padded = torch::zeros({most}, bytes);
  int64_t offset = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto flat = locals[i].contiguous().reshape({-1}).view(torch::kUInt8);
    padded.narrow(0, offset, flat.numel()).copy_(flat);
    offset += segment(i, locals[i].size(0));
  }
  std::vector<std::vector<torch::Tensor>> gathered(1);
  for (int r = 0; r < world_size_; ++r) gathered[0].push_back(torch::empty({most}, bytes));
  std::vector<torch::Tensor> input{padded};
  if (most > 0) {  // every rank knows every count, so all skip an empty gather alike
    wait(rank_, timeout_, "all-gather",
         groups_->start(on_device, [&](auto& group) { return group.allgather(gathered, input); }));
  }
  std::vector<std::vector<torch::Tensor>> parts(locals.size());
  for (int r = 0; r < world_size_; ++r) {
    const auto& c = rows[r];
    int64_t at = 0;
    for (int64_t i = 0; i < n; ++i) {
      auto shape = locals[i].sizes().vec();
      shape[0] = c[i];
      parts[i].push_back(gathered[0][r].narrow(0, at, c[i] * row_bytes[i]).view(locals[i].scalar_type()).view(shape));
      at += segment(i, c[i]);
    }
  }
  std::vector<torch::Tensor> result;
  for (int64_t i = 0; i < n; ++i) result.push_back(torch::cat(parts[i], 0).to(locals[i].device()));
  return result;
}

std::vector<std::string> Communicator::all_gather_bytes(const std::string& local) {
  const auto sizes = all_gather_rows({torch::tensor({static_cast<int64_t>(local.size())}, torch::kLong)});
  std::vector<std::vector<int64_t>> rows;
  for (int r = 0; r < world_size_; ++r) rows.push_back({sizes[0][r].item<int64_t>()});
  auto bytes = torch::empty({static_cast<int64_t>(local.size())}, torch::kUInt8);
  if (!local.empty()) std::memcpy(bytes.data_ptr<uint8_t>(), local.data(), local.size());
  const auto gathered = all_gather_rows({bytes}, rows)[0];
  std::vector<std::string> result;
  int64_t offset = 0;
  for (int r = 0; r < world_size_; ++r) {
    const auto* data = gathered.data_ptr<uint8_t>() + offset;
    result.emplace_back(reinterpret_cast<const char*>(data), static_cast<size_t>(rows[r][0]));
    offset += rows[r][0];
  }
  return result;
}

void Communicator::barrier() {
  std::vector<torch::Tensor> token{torch::zeros({1})};
  wait(rank_, timeout_, "barrier", groups_->gloo->allreduce(token));
}

}  // namespace adatt
