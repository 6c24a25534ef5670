#include "distributed_wrap.h"

#include "addon_data.h"
#include "convert.h"
#include "errors.h"
#include "worker.h"

namespace adatt::binding {
namespace {

// Rendezvous blocks until every rank has joined: it runs off the event loop, and off the compute
// thread (it only waits).
class RendezvousWorker : public PromiseWorker {
 public:
  RendezvousWorker(Napi::Env env, DistributedConfig config) : PromiseWorker(env), config_(std::move(config)) {}

 protected:
  void Run() override { communicator_ = std::make_shared<Communicator>(config_); }
  Runs runs() const override { return Runs::OnOwnThread; }
  Napi::Value Resolve(Napi::Env env) override {
    auto external = Napi::External<std::shared_ptr<Communicator>>::New(
        env, new std::shared_ptr<Communicator>(std::move(communicator_)),
        [](Napi::Env, std::shared_ptr<Communicator>* data) { delete data; });
    return addon_data(env).process_group_class.New({external});
  }

 private:
  DistributedConfig config_;
  std::shared_ptr<Communicator> communicator_;
};

class BarrierWorker : public PromiseWorker {
 public:
  BarrierWorker(Napi::Env env, std::shared_ptr<Communicator> communicator)
      : PromiseWorker(env), communicator_(std::move(communicator)) {}

 protected:
  void Run() override { communicator_->barrier(); }
  Runs runs() const override { return Runs::OnOwnThread; }

 private:
  std::shared_ptr<Communicator> communicator_;
};

// Every rank's bytes (a description of what it is about to do), off the event loop and off the
// compute thread (it only waits for the other ranks).
class AllGatherBytesWorker : public PromiseWorker {
 public:
  AllGatherBytesWorker(Napi::Env env, std::shared_ptr<Communicator> communicator, std::string local)
      : PromiseWorker(env), communicator_(std::move(communicator)), local_(std::move(local)) {}

 protected:
  void Run() override { gathered_ = communicator_->all_gather_bytes(local_); }
  Runs runs() const override { return Runs::OnOwnThread; }
  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env, gathered_.size());
    for (uint32_t r = 0; r < gathered_.size(); ++r) {
      result.Set(r, Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(gathered_[r].data()),
                                                gathered_[r].size()));
    }
    return result;
  }

 private:
  std::shared_ptr<Communicator> communicator_;
  std::string local_;
  std::vector<std::string> gathered_;
};

}  // namespace

Napi::Function AddonProcessGroup::Define(Napi::Env env) {
  return DefineClass(env, "ProcessGroup",
                     {
                         InstanceMethod<&AddonProcessGroup::Rank>("rank"),
                         InstanceMethod<&AddonProcessGroup::WorldSize>("worldSize"),
                         InstanceMethod<&AddonProcessGroup::Backends>("backends"),
                         InstanceMethod<&AddonProcessGroup::Barrier>("barrier"),
                         InstanceMethod<&AddonProcessGroup::AllGatherBytes>("allGatherBytes"),
                         InstanceMethod<&AddonProcessGroup::Dispose>("dispose"),
                     });
}

AddonProcessGroup::AddonProcessGroup(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonProcessGroup>(info) {
  guarded(info.Env(), [&] {
    if (!info[0].IsExternal()) throw_invalid("use initProcessGroup(options) to join a process group");
    communicator_ = *info[0].As<Napi::External<std::shared_ptr<Communicator>>>().Data();
    tag_as(info.This().As<Napi::Object>(), NativeClass::ProcessGroup);
  });
}

std::shared_ptr<Communicator> AddonProcessGroup::from_value(const Napi::Value& value, const std::string& field) {
  if (value.IsUndefined() || value.IsNull()) return nullptr;
  if (!is_native(value, NativeClass::ProcessGroup)) throw_invalid(field + " must be a ProcessGroup");
  return Unwrap(value.As<Napi::Object>())->live();
}

std::shared_ptr<Communicator> AddonProcessGroup::live() const {
  if (!communicator_) throw DisposedError("the process group");
  return communicator_;
}

Napi::Value AddonProcessGroup::Rank(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), live()->rank()); });
}

Napi::Value AddonProcessGroup::WorldSize(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), live()->world_size()); });
}

Napi::Value AddonProcessGroup::Backends(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const auto names = live()->backends();
    auto result = Napi::Array::New(info.Env(), names.size());
    for (uint32_t i = 0; i < names.size(); ++i) result.Set(i, Napi::String::New(info.Env(), names[i]));
    return result;
  });
}

Napi::Value AddonProcessGroup::Barrier(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value { return (new BarrierWorker(info.Env(), live()))->Start(); });
}

Napi::Value AddonProcessGroup::AllGatherBytes(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw_invalid("allGatherBytes needs a Uint8Array");
    }
    const auto bytes = info[0].As<Napi::Uint8Array>();
    std::string local(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
    return (new AllGatherBytesWorker(info.Env(), live(), std::move(local)))->Start();
  });
}

Napi::Value AddonProcessGroup::Dispose(const Napi::CallbackInfo& info) {
  communicator_.reset();
  return info.Env().Undefined();
}

Napi::Value InitProcessGroup(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    const Fields options(info[0]);
    DistributedConfig config;
    config.master_addr = options.string("masterAddr");
    config.master_port = static_cast<int>(options.integer("masterPort"));
    config.world_size = static_cast<int>(options.integer("worldSize"));
    config.rank = static_cast<int>(options.integer("rank"));
    config.timeout = std::chrono::milliseconds(options.integer("timeoutMs"));
    const auto cuda = options.string("cudaBackend");
    if (cuda == "auto") config.cuda = CudaCollectives::Auto;
    else if (cuda == "nccl") config.cuda = CudaCollectives::Nccl;
    else if (cuda == "gloo") config.cuda = CudaCollectives::Gloo;
    else throw_invalid("cudaBackend must be 'auto', 'nccl' or 'gloo'");
    return (new RendezvousWorker(info.Env(), std::move(config)))->Start();
  });
}

}  // namespace adatt::binding
