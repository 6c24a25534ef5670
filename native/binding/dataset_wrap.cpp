#include "dataset_wrap.h"

#include <cstring>

#include "addon_data.h"
#include "convert.h"
#include "errors.h"

namespace adatt::binding {
namespace {

template <typename TypedArray, typename Element>
torch::Tensor copy_array(const Napi::Value& value, napi_typedarray_type type, const char* type_name,
                         const std::string& field, torch::ScalarType dtype, int64_t expected) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_invalid(field + " must be a " + type_name);
  }
  const auto array = value.As<TypedArray>();
  const auto length = static_cast<int64_t>(array.ElementLength());
  if (expected >= 0 && length != expected) {
    throw_invalid(field + " has " + std::to_string(length) + " values, expected " + std::to_string(expected));
  }
  auto tensor = torch::empty({length}, dtype);
  if (length > 0) std::memcpy(tensor.data_ptr(), array.Data(), sizeof(Element) * static_cast<size_t>(length));
  return tensor;
}

int64_t to_count(const Napi::Value& value, const std::string& field) {
  if (!value.IsNumber()) throw_invalid(field + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (number < 0 || number != static_cast<double>(static_cast<int64_t>(number))) {
    throw_invalid(field + " must be a non-negative integer");
  }
  return static_cast<int64_t>(number);
}

std::shared_ptr<const Dataset> dataset_from_object(const Napi::Object& init) {
  const int64_t size = to_count(init.Get("size"), "size");
  if (size == 0) throw_invalid("a dataset needs at least one row");
  torch::Tensor dense;
  if (!init.Get("dense").IsUndefined()) {
    const int64_t width = to_count(init.Get("denseDim"), "denseDim");
    dense = copy_array<Napi::Float32Array, float>(init.Get("dense"), napi_float32_array, "Float32Array", "dense",
                                                  torch::kFloat32, size * width)
                .view({size, width});
  }
  torch::Tensor categorical;
  if (!init.Get("categorical").IsUndefined()) {
    const int64_t width = to_count(init.Get("categoricalCount"), "categoricalCount");
    categorical = copy_array<Napi::Int32Array, int32_t>(init.Get("categorical"), napi_int32_array, "Int32Array",
                                                        "categorical", torch::kInt32, size * width)
                      .view({size, width});
  }
  std::vector<MultiValuedColumn> columns;
  const auto bags = init.Get("multiValued");
  if (!bags.IsUndefined()) {
    if (!bags.IsArray()) throw_invalid("multiValued must be an array");
    const auto array = bags.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) {
      const std::string field = "multiValued[" + std::to_string(i) + "]";
      if (!array.Get(i).IsObject()) throw_invalid(field + " must be { indices, offsets }");
      const auto bag = array.Get(i).As<Napi::Object>();
      auto indices = copy_array<Napi::Int32Array, int32_t>(bag.Get("indices"), napi_int32_array, "Int32Array",
                                                           field + ".indices", torch::kInt32, -1);
      auto offsets = copy_array<Napi::Int32Array, int32_t>(bag.Get("offsets"), napi_int32_array, "Int32Array",
                                                           field + ".offsets", torch::kInt32, size)
                         .to(torch::kLong);
      // Stored with the closing offset so each row's bag is offsets[r] .. offsets[r + 1].
      offsets = torch::cat({offsets, torch::full({1}, indices.size(0), torch::kLong)});
      columns.push_back({indices, offsets});
    }
  }
  // Labels and sample weights: one Float32Array of `size` values per task, as a [size, T] tensor.
  auto per_task = [&](const Napi::Value& value, const std::string& field) {
    if (!value.IsArray()) throw_invalid(field + " must be an array of Float32Array (one per task)");
    const auto arrays = value.As<Napi::Array>();
    std::vector<torch::Tensor> tasks;
    for (uint32_t t = 0; t < arrays.Length(); ++t) {
      tasks.push_back(copy_array<Napi::Float32Array, float>(arrays.Get(t), napi_float32_array, "Float32Array",
                                                            field + "[" + std::to_string(t) + "]", torch::kFloat32,
                                                            size));
    }
    if (tasks.empty()) throw_invalid(field + " must hold one array per task");
    return torch::stack(tasks, 1);
  };
  const auto labels = per_task(init.Get("labels"), "labels");
  const auto weights_value = init.Get("sampleWeights");
  const auto sample_weights = weights_value.IsUndefined() ? torch::Tensor() : per_task(weights_value, "sampleWeights");
  const auto groups_value = init.Get("groups");
  const auto groups = groups_value.IsUndefined() ? torch::Tensor() : to_group_ids(groups_value);
  return std::make_shared<const Dataset>(size, dense, categorical, std::move(columns), labels, sample_weights, groups);
}

}  // namespace

Napi::Function AddonDataset::Define(Napi::Env env) {
  return DefineClass(env, "Dataset",
                     {
                         InstanceMethod<&AddonDataset::Size>("size"),
                         InstanceMethod<&AddonDataset::Bytes>("bytes"),
                         InstanceMethod<&AddonDataset::Subset>("subset"),
                         InstanceMethod<&AddonDataset::Labels>("labels"),
                         InstanceMethod<&AddonDataset::SampleWeights>("sampleWeights"),
                         InstanceMethod<&AddonDataset::Dispose>("dispose"),
                     });
}

AddonDataset::AddonDataset(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonDataset>(info) {
  guarded(info.Env(), [&] {
    if (info[0].IsExternal()) {  // from subset(): adopt an already built dataset
      dataset_ = *info[0].As<Napi::External<std::shared_ptr<const Dataset>>>().Data();
    } else {
      if (!info[0].IsObject()) throw_invalid("Dataset needs { size, dense?, categorical?, multiValued?, labels }");
      dataset_ = dataset_from_object(info[0].As<Napi::Object>());
    }
    memory_.track(info.Env(), static_cast<int64_t>(dataset_->bytes()));
    tag_as(info.This().As<Napi::Object>(), NativeClass::Dataset);
  });
}

std::shared_ptr<const Dataset> AddonDataset::from_value(const Napi::Value& value, const std::string& field) {
  if (!is_native(value, NativeClass::Dataset)) throw_invalid(field + " must be a Dataset");
  const auto* wrapper = Unwrap(value.As<Napi::Object>());
  if (!wrapper->dataset_) throw DisposedError("the dataset");
  return wrapper->dataset_;
}

const Dataset& AddonDataset::live() const {
  if (!dataset_) throw DisposedError("the dataset");
  return *dataset_;
}

Napi::Value AddonDataset::Size(const Napi::CallbackInfo& info) {
  return guarded(info.Env(),
                 [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(live().size())); });
}

Napi::Value AddonDataset::Bytes(const Napi::CallbackInfo& info) {
  return guarded(info.Env(),
                 [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(live().bytes())); });
}

namespace {

// Per task, column t of a [N, T] tensor as a Float32Array (a copy).
Napi::Array task_columns(Napi::Env env, const torch::Tensor& table) {
  auto result = Napi::Array::New(env, static_cast<size_t>(table.size(1)));
  for (int64_t t = 0; t < table.size(1); ++t) {
    result.Set(static_cast<uint32_t>(t), to_float32_array(env, table.select(1, t).contiguous()));
  }
  return result;
}

}  // namespace

Napi::Value AddonDataset::Labels(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return task_columns(info.Env(), live().labels()); });
}

Napi::Value AddonDataset::SampleWeights(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const auto& weights = live().sample_weights();
    return weights.defined() ? Napi::Value(task_columns(info.Env(), weights)) : info.Env().Undefined();
  });
}

Napi::Value AddonDataset::Subset(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const Dataset& dataset = live();
    auto rows =
        copy_array<Napi::Int32Array, int32_t>(info[0], napi_int32_array, "Int32Array", "rows", torch::kInt32, -1)
            .to(torch::kLong);
    if (rows.numel() == 0) throw_invalid("rows must not be empty");
    if ((rows < 0).logical_or(rows >= dataset.size()).any().item<bool>()) {
      throw_invalid("rows must lie in [0, " + std::to_string(dataset.size()) + ")");
    }
    auto subset = std::make_shared<const Dataset>(dataset.subset(rows));
    auto external = Napi::External<std::shared_ptr<const Dataset>>::New(
        info.Env(), new std::shared_ptr<const Dataset>(std::move(subset)),
        [](Napi::Env, std::shared_ptr<const Dataset>* data) { delete data; });
    return addon_data(info.Env()).dataset_class.New({external});
  });
}

Napi::Value AddonDataset::Dispose(const Napi::CallbackInfo& info) {
  dataset_.reset();  // operations in flight hold their own reference
  memory_.release();
  return info.Env().Undefined();
}

}  // namespace adatt::binding
