#include "adatt/model.h"

#include <set>

#include "adatt/dataset.h"
#include "adatt/errors.h"
#include "adatt/init.h"

namespace adatt {
namespace {

torch::Tensor identity_slice(const torch::Tensor& t) { return t; }

std::string shape_string(at::IntArrayRef shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// Throws naming the first row whose id is outside [0, vocab).
void check_ids(const torch::Tensor& ids, int64_t vocab, const std::string& feature) {
  if (ids.numel() == 0) return;
  const auto bad = (ids < 0).logical_or(ids >= vocab);
  if (!bad.any().item<bool>()) return;
  const int64_t position = bad.nonzero()[0][0].item<int64_t>();
  throw InvalidArgument(feature + ": id " + std::to_string(ids[position].item<int64_t>()) + " at position " +
                        std::to_string(position) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

}  // namespace

Batch Batch::to(const torch::Device& device) const {
  Batch moved;
  moved.size = size;
  if (dense.defined()) moved.dense = dense.to(device);
  if (categorical.defined()) moved.categorical = categorical.to(device);
  for (const auto& bag : multi_valued) moved.multi_valued.push_back({bag.indices.to(device), bag.offsets.to(device)});
  return moved;
}

MultiTaskModelImpl::MultiTaskModelImpl(ModelConfig config) : config_(std::move(config)) {
  config_.validate();
  InitScope init(config_.seed);
  for (size_t i = 0; i < config_.categorical.size(); ++i) {
    auto weight = torch::empty({config_.categorical[i].vocab, config_.categorical[i].dim});
    init_normal_(weight);
    embeddings_.push_back(register_parameter("embedding" + std::to_string(i), weight));
  }
  for (size_t i = 0; i < config_.multi_valued.size(); ++i) {
    auto weight = torch::empty({config_.multi_valued[i].vocab, config_.multi_valued[i].dim});
    init_normal_(weight);
    bag_embeddings_.push_back(register_parameter("bag_embedding" + std::to_string(i), weight));
  }
  arch_ = register_module("arch", make_arch(config_));
  const int64_t tasks = config_.num_tasks();
  int64_t tower_input = arch_->output_dim();
  if (!config_.tower_dims.empty()) {
    tower_mlp_ = register_module("tower_mlp", GroupedMLP(tasks, tower_input, config_.tower_dims));
    tower_input = config_.tower_dims.back();
  }
  std::vector<int64_t> outputs;
  for (const auto& task : config_.tasks) outputs.push_back(task.outputs);
  tower_out_ = register_module("tower_out", RaggedLinear(tower_input, outputs));
  train(false);  // evaluation mode, every submodule, until a trainer's pass (see set_training)
}

void MultiTaskModelImpl::check_batch(const Batch& batch) const {
  if (batch.size <= 0) throw InvalidArgument("batch: size must be positive");
  const int64_t rows = batch.size;
  if (config_.dense_dim > 0) {
    if (!batch.dense.defined() || batch.dense.sizes() != at::IntArrayRef({rows, config_.dense_dim})) {
      throw InvalidArgument("batch: dense must be [" + std::to_string(rows) + ", " + std::to_string(config_.dense_dim) +
                            "]" + (batch.dense.defined() ? ", got " + shape_string(batch.dense.sizes()) : ""));
    }
  }
  const auto features = static_cast<int64_t>(config_.categorical.size());
  if (features > 0) {
    if (!batch.categorical.defined() || batch.categorical.sizes() != at::IntArrayRef({rows, features})) {
      throw InvalidArgument("batch: categorical must be [" + std::to_string(rows) + ", " + std::to_string(features) +
                            "]");
    }
    for (int64_t i = 0; i < features; ++i) {
      check_ids(batch.categorical.select(1, i), config_.categorical[i].vocab, "categorical[" + std::to_string(i) + "]");
    }
  }
  if (batch.multi_valued.size() != config_.multi_valued.size()) {
    throw InvalidArgument("batch: multiValued must have " + std::to_string(config_.multi_valued.size()) + " features");
  }
  for (size_t i = 0; i < batch.multi_valued.size(); ++i) {
    const auto& bag = batch.multi_valued[i];
    const std::string feature = "multiValued[" + std::to_string(i) + "]";
    if (bag.offsets.dim() != 1 || bag.offsets.size(0) != rows || bag.indices.dim() != 1) {
      throw InvalidArgument("batch: " + feature + " needs one offset per row and 1-d indices");
    }
    const auto offsets = bag.offsets;
    const bool monotone = rows < 2 || (offsets.slice(0, 1) >= offsets.slice(0, 0, rows - 1)).all().item<bool>();
    if (offsets[0].item<int64_t>() != 0 || !monotone || offsets[rows - 1].item<int64_t>() > bag.indices.size(0)) {
      throw InvalidArgument("batch: " + feature + " offsets must start at 0, never decrease and stay within indices");
    }
    check_ids(bag.indices, config_.multi_valued[i].vocab, "batch: " + feature);
  }
}

torch::Tensor MultiTaskModelImpl::embed(const Batch& batch, std::vector<TouchedRows>* touched) {
  if (touched) touched->assign(embeddings_.size() + bag_embeddings_.size(), TouchedRows());
  std::vector<torch::Tensor> parts;
  if (config_.dense_dim > 0) parts.push_back(batch.dense);
  for (size_t i = 0; i < embeddings_.size(); ++i) {
    const auto ids = batch.categorical.select(1, static_cast<int64_t>(i));
    parts.push_back(touched ? sparse_embedding(embeddings_[i], ids, (*touched)[i])
                            : torch::embedding(embeddings_[i], ids));
  }
  for (size_t i = 0; i < bag_embeddings_.size(); ++i) {
    const int64_t mode = config_.multi_valued[i].pooling == Pooling::Sum ? 0 : 1;
    const auto& bag = batch.multi_valued[i];
    parts.push_back(touched
                        ? sparse_embedding_bag(bag_embeddings_[i], bag.indices, bag.offsets, mode,
                                               (*touched)[embeddings_.size() + i])
                        : std::get<0>(torch::embedding_bag(bag_embeddings_[i], bag.indices, bag.offsets, false, mode)));
  }
  return parts.size() == 1 ? parts.front() : torch::cat(parts, 1);
}

std::vector<torch::Tensor> MultiTaskModelImpl::embedding_tables() {
  auto tables = embeddings_;
  tables.insert(tables.end(), bag_embeddings_.begin(), bag_embeddings_.end());
  return tables;
}

namespace {

// log(1 - sigmoid(a) sigmoid(b)) without cancellation: 1 - s(a) s(b) = s(-a) + s(a) s(-b).
torch::Tensor log_one_minus_joint(const torch::Tensor& a, const torch::Tensor& b) {
  namespace F = torch::nn::functional;
  return torch::logaddexp(F::logsigmoid(-a), F::logsigmoid(a) + F::logsigmoid(-b));
}

}  // namespace

std::vector<torch::Tensor> joint_outputs(std::vector<torch::Tensor> outputs, const std::vector<TaskSpec>& tasks) {
  namespace F = torch::nn::functional;
  std::vector<bool> done(tasks.size(), false);
  // Parents before children (the config has no cycles): a chain's joint builds on its parent's joint.
  std::function<void(size_t)> compose = [&](size_t t) {
    if (done[t]) return;
    done[t] = true;
    const int64_t parent = tasks[t].conditional_on;
    if (parent < 0) return;
    compose(static_cast<size_t>(parent));
    const auto& a = outputs[parent];
    const auto& b = outputs[t];
    outputs[t] = F::logsigmoid(a) + F::logsigmoid(b) - log_one_minus_joint(a, b);
  };
  for (size_t t = 0; t < tasks.size(); ++t) compose(t);
  return outputs;
}

std::vector<torch::Tensor> MultiTaskModelImpl::forward_touched(const Batch& batch, std::vector<TouchedRows>& touched) {
  return joint_outputs(tower_out_->forward(towers(arch_->forward(embed(batch, &touched), nullptr))), config_.tasks);
}

torch::Tensor MultiTaskModelImpl::towers(const torch::Tensor& representation) {
  return tower_mlp_ ? tower_mlp_->forward(representation) : representation;
}

std::vector<torch::Tensor> MultiTaskModelImpl::forward(const Batch& batch) {
  return joint_outputs(tower_out_->forward(towers(arch_->forward(embed(batch), nullptr))), config_.tasks);
}

std::vector<torch::Tensor> MultiTaskModelImpl::gate_weights(const Batch& batch) {
  auto gates = probe(batch).gates;
  for (auto& level : gates) level = level.mean(0);
  return gates;
}

ArchProbe MultiTaskModelImpl::probe(const Batch& batch) {
  ArchProbe recorded;
  arch_->forward(embed(batch), &recorded);
  return recorded;
}

ReferenceEntries MultiTaskModelImpl::shared_layer() const {
  ReferenceEntries entries;
  arch_->shared_layer_entries(entries);
  return entries;
}

ReferenceEntries MultiTaskModelImpl::reference_entries() const {
  ReferenceEntries entries;
  for (size_t i = 0; i < embeddings_.size(); ++i) {
    entries.push_back({"embeddings." + std::to_string(i) + ".weight", embeddings_[i], identity_slice});
  }
  for (size_t i = 0; i < bag_embeddings_.size(); ++i) {
    entries.push_back({"bag_embeddings." + std::to_string(i) + ".weight", bag_embeddings_[i], identity_slice});
  }
  arch_->reference_entries(entries);
  auto tower_prefix = [](int64_t t, int part) {
    return "task_modules." + std::to_string(t) + "." + std::to_string(part) + ".";
  };
  if (tower_mlp_) tower_mlp_->reference_entries([&](int64_t t) { return tower_prefix(t, 0); }, entries);
  tower_out_->reference_entries([&](int64_t t) { return tower_prefix(t, 1); }, entries);
  return entries;
}

std::map<std::string, torch::Tensor> MultiTaskModelImpl::seeded_gradients(const Batch& batch,
                                                                          const std::vector<torch::Tensor>& seeds) {
  const auto& tasks = config_.tasks;
  if (seeds.size() != tasks.size()) throw InvalidArgument("seeds must have one array per task");
  zero_grad();
  const auto outputs = forward(batch);
  torch::Tensor objective = torch::zeros({}, outputs.front().options());
  for (size_t t = 0; t < outputs.size(); ++t) {
    if (seeds[t].numel() != outputs[t].numel()) {
      throw InvalidArgument("seeds[" + std::to_string(t) + "] must have " + std::to_string(outputs[t].numel()) +
                            " values (batch size x outputs of task '" + tasks[t].name + "')");
    }
    objective = objective + (outputs[t] * seeds[t].view_as(outputs[t])).sum();
  }
  objective.backward();
  auto gradients = export_tensors(WeightLayout::Reference, /*gradients=*/true);
  zero_grad();
  return gradients;
}

std::map<std::string, torch::Tensor> MultiTaskModelImpl::export_tensors(WeightLayout layout, bool gradients) const {
  auto value_of = [gradients](const torch::Tensor& param) {
    if (!gradients) return param;
    return param.grad().defined() ? param.grad() : torch::zeros_like(param);
  };
  std::map<std::string, torch::Tensor> tensors;
  if (layout == WeightLayout::Reference) {
    for (const auto& entry : reference_entries()) {
      tensors[entry.name] = entry.slice(value_of(entry.param)).detach().to(torch::kCPU).clone();
    }
  } else {
    for (const auto& item : named_parameters(true)) {
      tensors[item.key()] = value_of(item.value()).detach().to(torch::kCPU).clone();
    }
  }
  return tensors;
}

void MultiTaskModelImpl::import_tensors(const std::map<std::string, torch::Tensor>& tensors, bool strict) {
  torch::NoGradGuard no_grad;
  // Both layouts as (name, destination view) pairs; the layout is the one the names come from.
  std::map<std::string, torch::Tensor> reference;
  for (const auto& entry : reference_entries()) reference[entry.name] = entry.slice(entry.param);
  std::map<std::string, torch::Tensor> native;
  for (const auto& item : named_parameters(true)) native[item.key()] = item.value();

  auto matches = [&tensors](const std::map<std::string, torch::Tensor>& layout) {
    int64_t count = 0;
    for (const auto& item : tensors) count += layout.count(item.first);
    return count;
  };
  const auto& targets = matches(native) > matches(reference) ? native : reference;

  std::vector<std::string> missing;
  std::vector<std::string> unexpected;
  for (const auto& item : targets) {
    if (!tensors.count(item.first)) missing.push_back(item.first);
  }
  for (const auto& item : tensors) {
    if (!targets.count(item.first)) unexpected.push_back(item.first);
  }
  auto join = [](const std::vector<std::string>& names) {
    std::string text;
    for (size_t i = 0; i < names.size() && i < 8; ++i) text += (i ? ", " : "") + names[i];
    return names.size() > 8 ? text + ", … (" + std::to_string(names.size()) + " in all)" : text;
  };
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string message = "state dict does not match the model";
    if (!missing.empty()) message += "; missing: " + join(missing);
    if (!unexpected.empty()) message += "; unexpected: " + join(unexpected);
    throw InvalidArgument(message);
  }
  for (const auto& item : tensors) {
    auto target = targets.find(item.first);
    if (target == targets.end()) continue;
    if (item.second.sizes() != target->second.sizes()) {
      throw InvalidArgument("state dict: " + item.first + " has shape " + shape_string(item.second.sizes()) +
                            ", the model expects " + shape_string(target->second.sizes()));
    }
    if (!item.second.is_floating_point()) {
      throw InvalidArgument("state dict: " + item.first + " must be a floating-point tensor");
    }
  }
  for (const auto& item : tensors) {
    auto target = targets.find(item.first);
    if (target != targets.end()) target->second.copy_(item.second);
  }
}

void MultiTaskModelImpl::check_dataset(const Dataset& data, const std::vector<bool>& regression) const {
  data.check_features(config_);
  data.check_labels(config_.tasks, regression);
}

int64_t MultiTaskModelImpl::parameter_count() const {
  int64_t count = 0;
  for (const auto& param : parameters(true)) count += param.numel();
  return count;
}

}  // namespace adatt
