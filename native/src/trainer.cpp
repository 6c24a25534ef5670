#include "adatt/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <type_traits>

#include "adatt/errors.h"
#include "adatt/weights_io.h"

namespace adatt {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        const OptimizerOptions& o) {
  using namespace torch::optim;
  switch (o.kind) {
    case OptimizerKind::Adam:
      return std::make_unique<Adam>(
          params, AdamOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
    case OptimizerKind::AdamW:
      return std::make_unique<AdamW>(
          params, AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
    case OptimizerKind::Adagrad:
      return std::make_unique<Adagrad>(params, AdagradOptions(o.lr).weight_decay(o.weight_decay).eps(o.eps));
    case OptimizerKind::Sgd:
      return std::make_unique<SGD>(params, SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  throw InvalidArgument("unknown optimizer");
}

// Names of the embedding optimizer's state, beside the dense optimizer's.
constexpr const char* kSparseStatePrefix = "embedding_optimizer.";
constexpr const char* kLogVariancesName = "task_weighting.log_variances";
constexpr const char* kGradNormWeightsName = "task_weighting.gradnorm.weights";
constexpr const char* kGradNormInitialLossesName = "task_weighting.gradnorm.initial_losses";

// Uncertainty weighting's factor on exp(-s_t) L_t: 1 for classification, 1/2 for regression.
double uncertainty_factor(TaskType type) { return type == TaskType::Regression ? 0.5 : 1.0; }

// As torch.nn.utils.clip_grad_norm_ (2-norm over all gradients together), over dense parameters
// gradients and the tables' row gradients alike.
void clip_gradients_(const std::vector<torch::Tensor>& gradients, double max_norm) {
  std::vector<torch::Tensor> norms;
  for (const auto& gradient : gradients) norms.push_back(gradient.norm(2));
  if (norms.empty()) return;
  const auto coefficient = (max_norm / (torch::stack(norms).norm(2) + 1e-6)).clamp_max(1.0);
  for (const auto& gradient : gradients) gradient.mul_(coefficient);
}

// The key of a parameter's state in a LibTorch optimizer: its TensorImpl's address, as text in
// LibTorch 1.x and as the pointer itself in 2.x.
template <typename Map>
typename Map::key_type state_key(const torch::Tensor& param) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream text;
    text << static_cast<const void*>(param.unsafeGetTensorImpl());
    return text.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

// The names of each parameter's state tensors per optimizer; "step" is an int64 scalar.
std::vector<const char*> state_names(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::Adam:
    case OptimizerKind::AdamW: return {"step", "exp_avg", "exp_avg_sq"};
    case OptimizerKind::Adagrad: return {"step", "sum"};
    case OptimizerKind::Sgd: return {"momentum_buffer"};
  }
  return {};
}

template <typename State>
std::vector<torch::Tensor> adam_like(const State& state) {
  return {torch::tensor(state.step(), torch::kLong), state.exp_avg(), state.exp_avg_sq()};
}

// The dense optimizer's state as plain named tensors, "optimizer.{i}.{name}" for parameter i: a
// checkpoint then holds nothing but tensors, read back by our own bounded reader (LibTorch's
// optimizer archives are TorchScript modules, and a crafted one crashed its importer).
TensorMap dense_optimizer_state(const torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& params,
                                OptimizerKind kind) {
  using Map = std::decay_t<decltype(optimizer.state())>;
  TensorMap tensors;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto found = optimizer.state().find(state_key<Map>(params[i]));
    if (found == optimizer.state().end()) continue;  // never stepped
    std::vector<torch::Tensor> values;
    switch (kind) {
      case OptimizerKind::Adam:
        values = adam_like(static_cast<const torch::optim::AdamParamState&>(*found->second));
        break;
      case OptimizerKind::AdamW:
        values = adam_like(static_cast<const torch::optim::AdamWParamState&>(*found->second));
        break;
      case OptimizerKind::Adagrad: {
        const auto& state = static_cast<const torch::optim::AdagradParamState&>(*found->second);
        values = {torch::tensor(state.step(), torch::kLong), state.sum()};
        break;
      }
      case OptimizerKind::Sgd:
        values = {static_cast<const torch::optim::SGDParamState&>(*found->second).momentum_buffer()};
        break;
    }
    const auto names = state_names(kind);
    for (size_t k = 0; k < names.size(); ++k) {
      if (values[k].defined()) tensors["optimizer." + std::to_string(i) + "." + names[k]] = values[k].detach().cpu();
    }
  }
  return tensors;
}

void load_dense_optimizer_state(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& params,
                                OptimizerKind kind, const TensorMap& tensors, const torch::Device& device) {
  using Map = std::decay_t<decltype(optimizer.state())>;
  Map loaded;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string prefix = "optimizer." + std::to_string(i) + ".";
    std::vector<torch::Tensor> values;
    for (const char* name : state_names(kind)) {
      const auto found = tensors.find(prefix + name);
      values.push_back(found == tensors.end() ? torch::Tensor() : found->second);
    }
    if (std::none_of(values.begin(), values.end(), [](const torch::Tensor& t) { return t.defined(); })) continue;
    const auto& param = params[i];
    auto like_param = [&](const torch::Tensor& value, const char* name) {
      if (!value.defined() || value.sizes() != param.sizes() || value.scalar_type() != param.scalar_type()) {
        throw InvalidArgument("trainer state: " + prefix + name + " is missing or does not match parameter " +
                              std::to_string(i) + " (a checkpoint of another model or optimizer?)");
      }
      return value.to(device);
    };
    auto step_of = [&](const torch::Tensor& value) {
      if (!value.defined() || value.numel() != 1 || value.scalar_type() != torch::kLong || value.item<int64_t>() < 0) {
        throw InvalidArgument("trainer state: " + prefix + "step is missing or not a non-negative integer");
      }
      return value.item<int64_t>();
    };
    std::unique_ptr<torch::optim::OptimizerParamState> state;
    switch (kind) {
      case OptimizerKind::Adam:
      case OptimizerKind::AdamW: {
        auto fill = [&](auto adam) {
          adam->step(step_of(values[0]));
          adam->exp_avg(like_param(values[1], "exp_avg"));
          adam->exp_avg_sq(like_param(values[2], "exp_avg_sq"));
          return adam;
        };
        if (kind == OptimizerKind::Adam) state = fill(std::make_unique<torch::optim::AdamParamState>());
        else state = fill(std::make_unique<torch::optim::AdamWParamState>());
        break;
      }
      case OptimizerKind::Adagrad: {
        auto adagrad = std::make_unique<torch::optim::AdagradParamState>();
        adagrad->step(step_of(values[0]));
        adagrad->sum(like_param(values[1], "sum"));
        state = std::move(adagrad);
        break;
      }
      case OptimizerKind::Sgd:
        state = std::make_unique<torch::optim::SGDParamState>();
        static_cast<torch::optim::SGDParamState&>(*state).momentum_buffer(like_param(values[0], "momentum_buffer"));
        break;
    }
    loaded[state_key<Map>(param)] = std::move(state);
  }
  for (const auto& item : tensors) {
    if (item.first.rfind("optimizer.", 0) != 0) continue;
    const auto index = std::strtoull(item.first.c_str() + 10, nullptr, 10);
    if (index >= params.size())
      throw InvalidArgument("trainer state: " + item.first + " names no parameter of this model");
  }
  // Adagrad keeps a state for every parameter from its construction on; other optimizers start empty.
  for (auto& item : loaded) optimizer.state()[item.first] = std::move(item.second);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Trainer::Trainer(std::shared_ptr<TaskModel> model, TrainerOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  if (options_.tasks.size() != model_->task_specs().size()) {
    throw InvalidArgument("trainer: one loss per task is needed");
  }
  if (options_.batch_size <= 0) throw InvalidArgument("trainer: batchSize must be positive");
  parameters_ = model_->trainable_parameters();
  if (options_.embedding_optimizer) {
    tables_ = model_->embedding_tables();
    if (tables_.empty()) throw InvalidArgument("embeddingOptimizer: the model has no embedding tables");
    auto is_table = [this](const torch::Tensor& param) {
      return std::any_of(tables_.begin(), tables_.end(), [&](const torch::Tensor& t) { return t.is_same(param); });
    };
    parameters_.erase(std::remove_if(parameters_.begin(), parameters_.end(), is_table), parameters_.end());
    sparse_optimizer_ = std::make_unique<SparseOptimizer>(tables_, *options_.embedding_optimizer);
  }
  if (parameters_.empty()) throw InvalidArgument("trainer: the model has no trainable parameters");
  set_weights_.assign(options_.tasks.size(), 1.0);
  if (options_.weighting == TaskWeighting::Uncertainty) {
    const auto like = parameters_.front().options();
    log_variances_ = torch::zeros({static_cast<int64_t>(options_.tasks.size())}, like).requires_grad_(true);
    parameters_.push_back(log_variances_);
  }
  if (options_.weighting == TaskWeighting::GradNorm) {
    shared_layer_ = model_->shared_layer();
    if (shared_layer_.empty()) {
      throw InvalidArgument("taskWeighting 'gradnorm' needs a layer that every task reads, and this model has none");
    }
    const auto like = parameters_.front().options();
    gradnorm_weights_ = torch::ones({static_cast<int64_t>(options_.tasks.size())}, like).requires_grad_(true);
    parameters_.push_back(gradnorm_weights_);
    initial_losses_.assign(options_.tasks.size(), std::numeric_limits<double>::quiet_NaN());
  }
  optimizer_ = make_optimizer(parameters_, options_.optimizer);
}

void Trainer::set_task_weights(const std::vector<double>& weights) {
  if (weights.size() != options_.tasks.size()) throw InvalidArgument("setTaskWeights: one weight per task is needed");
  for (double w : weights) {
    if (!std::isfinite(w) || w < 0) throw InvalidArgument("setTaskWeights: weights must be finite and non-negative");
  }
  set_weights_ = weights;
}

std::vector<double> Trainer::task_weights() const {
  std::vector<double> weights;
  for (size_t t = 0; t < options_.tasks.size(); ++t) {
    double w = fixed_weight(t);
    if (log_variances_.defined()) {
      const double s = log_variances_[static_cast<int64_t>(t)].item<double>();
      w *= std::exp(-s) * uncertainty_factor(options_.tasks[t].type);
    }
    if (gradnorm_weights_.defined()) w *= gradnorm_weights_[static_cast<int64_t>(t)].item<double>();
    weights.push_back(w);
  }
  return weights;
}

torch::Tensor Trainer::weighted_term(size_t task, const torch::Tensor& loss) const {
  const double fixed = fixed_weight(task);
  // GradNorm's weight is a constant here: its gradient is GradNorm's own (gradnorm_gradient).
  if (gradnorm_weights_.defined()) return fixed * gradnorm_weights_[static_cast<int64_t>(task)].item<double>() * loss;
  if (!log_variances_.defined()) return fixed * loss;
  const auto s = log_variances_[static_cast<int64_t>(task)];
  return fixed * (uncertainty_factor(options_.tasks[task].type) * torch::exp(-s) * loss + 0.5 * s);
}

std::string Trainer::save_state() const {
  TensorMap tensors = dense_optimizer_state(*optimizer_, parameters_, options_.optimizer.kind);
  if (sparse_optimizer_) sparse_optimizer_->save(tensors, kSparseStatePrefix);
  if (log_variances_.defined()) tensors[kLogVariancesName] = log_variances_.detach().cpu().clone();
  if (gradnorm_weights_.defined()) {
    tensors[kGradNormWeightsName] = gradnorm_weights_.detach().cpu().clone();
    tensors[kGradNormInitialLossesName] = torch::tensor(initial_losses_, torch::kDouble);
  }
  const auto bytes = encode_tensor_file(tensors);
  return std::string(bytes.begin(), bytes.end());
}

void Trainer::load_state(const std::string& bytes, int64_t step, const torch::Device& device) {
  if (step < 0) throw InvalidArgument("trainer state: step must be non-negative");
  const auto tensors =
      decode_tensor_file(std::vector<char>(bytes.begin(), bytes.end()), "the checkpoint's optimizer state");
  load_dense_optimizer_state(*optimizer_, parameters_, options_.optimizer.kind, tensors, device);
  if (sparse_optimizer_) sparse_optimizer_->load(tensors, kSparseStatePrefix, device);
  if (log_variances_.defined()) {
    const auto found = tensors.find(kLogVariancesName);
    if (found == tensors.end() || !found->second.sizes().equals(log_variances_.sizes())) {
      throw InvalidArgument("trainer state: the saved run has no uncertainty weights for these tasks");
    }
    torch::NoGradGuard no_grad;
    log_variances_.copy_(found->second);
  }
  if (gradnorm_weights_.defined()) {
    const auto weights = tensors.find(kGradNormWeightsName);
    const auto initial = tensors.find(kGradNormInitialLossesName);
    const auto tasks = static_cast<int64_t>(options_.tasks.size());
    if (weights == tensors.end() || initial == tensors.end() ||
        !weights->second.sizes().equals(gradnorm_weights_.sizes()) || initial->second.numel() != tasks ||
        initial->second.scalar_type() != torch::kDouble) {
      throw InvalidArgument("trainer state: the saved run has no GradNorm weights for these tasks");
    }
    torch::NoGradGuard no_grad;
    gradnorm_weights_.copy_(weights->second);
    const auto values = initial->second.contiguous();
    initial_losses_.assign(values.data_ptr<double>(), values.data_ptr<double>() + tasks);
  }
  step_ = step;
}

double Trainer::lr_at(int64_t step) const {
  const auto& s = options_.schedule;
  const double base = options_.optimizer.lr;
  if (s.warmup_steps > 0 && step < s.warmup_steps) return base * static_cast<double>(step + 1) / s.warmup_steps;
  const int64_t after_warmup = step - s.warmup_steps;
  if (s.kind == ScheduleKind::Step)
    return base * std::pow(s.gamma, static_cast<double>(after_warmup / std::max<int64_t>(1, s.step_size)));
  if (s.kind == ScheduleKind::Cosine) {
    const int64_t span = std::max<int64_t>(1, s.total_steps - s.warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(after_warmup) / span);
    return s.min_lr + 0.5 * (base - s.min_lr) * (1.0 + std::cos(kPi * progress));
  }
  return base;
}

BatchTaskLoss Trainer::task_loss(size_t task, const torch::Tensor& output, const torch::Tensor& all_labels,
                                 const torch::Tensor& weights) const {
  const auto& spec = options_.tasks[task];
  const auto labels = in_sample_space(all_labels.select(1, static_cast<int64_t>(task)), all_labels, spec.space);
  // Missing labels (NaN, also outside the sample space) are left out of the mean; a batch without
  // any needs no masked copies.
  const auto present = labels.isnan().logical_not();
  const int64_t count = present.sum().item<int64_t>();
  if (count == 0) return {torch::zeros({}, output.options()), 0, 0.0};
  const bool complete = count == labels.size(0);
  const auto y = complete ? labels : labels.index({present});
  const auto out = complete ? output : output.index({present});
  const auto reduction = weights.defined() ? torch::Reduction::None : torch::Reduction::Mean;
  torch::Tensor loss;
  switch (spec.loss) {
    case LossKind::BinaryCrossEntropy:
      loss = torch::binary_cross_entropy_with_logits(out.squeeze(-1), y, {}, {}, reduction);
      break;
    case LossKind::CrossEntropy: loss = torch::cross_entropy_loss(out, y.to(torch::kLong), {}, reduction); break;
    case LossKind::MeanSquaredError: loss = torch::mse_loss(out.squeeze(-1), y, reduction); break;
    case LossKind::Huber: loss = torch::huber_loss(out.squeeze(-1), y, reduction, spec.huber_delta); break;
  }
  if (!weights.defined()) return {loss, count, static_cast<double>(count)};
  const auto task_weights = weights.select(1, static_cast<int64_t>(task));
  const auto w = complete ? task_weights : task_weights.index({present});
  const auto total = w.sum();
  const double mass = total.item<double>();
  if (mass == 0.0) return {torch::zeros({}, output.options()), 0, 0.0};
  return {(w * loss).sum() / total, count, mass};
}

torch::Tensor Trainer::gradnorm_gradient(const std::vector<BatchTaskLoss>& losses) {
  const size_t tasks = losses.size();
  // One input per entry (entries may slice one stacked parameter): grads[i] belongs to entry i.
  std::vector<torch::Tensor> layer_params;
  for (const auto& entry : shared_layer_) layer_params.push_back(entry.param);
  // Per task with labelled rows: G_t = |grad_W (fixed_t w_t L_t)| and the loss ratio L_t / L_t(0).
  std::vector<size_t> present;
  std::vector<double> norms(tasks, 0.0);  // |grad_W L_t|
  std::vector<double> ratios(tasks, 1.0);
  for (size_t t = 0; t < tasks; ++t) {
    const auto& loss = losses[t].loss;
    if (losses[t].count == 0 || !loss.requires_grad()) continue;
    const double value = loss.item<double>();
    if (std::isnan(initial_losses_[t])) initial_losses_[t] = value;
    const auto grads = torch::autograd::grad({loss}, layer_params, {}, /*retain_graph=*/true,
                                             /*create_graph=*/false, /*allow_unused=*/true);
    double squares = 0.0;
    for (size_t i = 0; i < shared_layer_.size(); ++i) {
      if (grads[i].defined())
        squares += shared_layer_[i].slice(grads[i]).to(torch::kDouble).pow(2).sum().item<double>();
    }
    norms[t] = std::sqrt(squares);
    if (initial_losses_[t] > 0) ratios[t] = value / initial_losses_[t];
    present.push_back(t);
  }
  std::vector<double> gradient(tasks, 0.0);
  if (!present.empty()) {
    double mean_ratio = 0.0;
    double mean_norm = 0.0;
    const auto weights = gradnorm_weights_.detach().to(torch::kCPU, torch::kDouble).contiguous();
    const double* w = weights.data_ptr<double>();
    for (size_t t : present) {
      mean_ratio += ratios[t] / static_cast<double>(present.size());
      mean_norm += fixed_weight(t) * w[t] * norms[t] / static_cast<double>(present.size());
    }
    for (size_t t : present) {
      const double relative = mean_ratio > 0 ? ratios[t] / mean_ratio : 1.0;
      const double difference =
          fixed_weight(t) * w[t] * norms[t] - mean_norm * std::pow(relative, options_.gradnorm_alpha);
      // d|G_t - target_t| / dw_t, with G_t = fixed_t w_t |grad_W L_t| and the target constant.
      gradient[t] = static_cast<double>((difference > 0) - (difference < 0)) * fixed_weight(t) * norms[t];
    }
  }
  return torch::tensor(gradient, torch::kDouble).to(gradnorm_weights_.options());
}

void Trainer::measure_conflict(const std::vector<torch::Tensor>& terms, const std::vector<TouchedRows>& touched,
                               GradientConflict& conflict) {
  const auto tasks = static_cast<int64_t>(terms.size());
  std::vector<int64_t> present;
  for (int64_t t = 0; t < tasks; ++t) {
    if (terms[t].defined() && terms[t].requires_grad()) present.push_back(t);
  }
  if (present.size() < 2) return;
  std::vector<torch::Tensor> inputs;
  for (const auto& param : parameters_) {
    if (!param.is_same(log_variances_) && !param.is_same(gradnorm_weights_)) inputs.push_back(param);
  }
  for (const auto& rows : touched) {
    if (rows.rows.defined()) inputs.push_back(rows.rows);
  }
  std::vector<std::vector<torch::Tensor>> grads;
  for (int64_t t : present) {
    grads.push_back(torch::autograd::grad({terms[t]}, inputs, {}, /*retain_graph=*/true, /*create_graph=*/false,
                                          /*allow_unused=*/true));
  }
  torch::NoGradGuard no_grad;
  const auto k = static_cast<int64_t>(present.size());
  // Gram matrix of the tasks' gradients restricted to the elements that two or more of them reach.
  auto gram = torch::zeros({k, k}, torch::kDouble);
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<torch::Tensor> rows;
    for (const auto& task_grads : grads) {
      rows.push_back(task_grads[i].defined() ? task_grads[i].reshape({-1}).to(torch::kDouble)
                                             : torch::zeros({inputs[i].numel()}, torch::kDouble));
    }
    auto stacked = torch::stack(rows);  // [k, numel]
    const auto shared = stacked.ne(0).sum(0).ge(2);
    if (!shared.any().item<bool>()) continue;
    stacked = stacked.mul(shared);
    gram += stacked.mm(stacked.t()).cpu();
  }
  const auto* g = gram.data_ptr<double>();
  if (conflict.norm_sums.empty()) {
    conflict.norm_sums.assign(tasks, 0.0);
    conflict.norm_counts.assign(tasks, 0);
    conflict.cosine_sums.assign(tasks * tasks, 0.0);
    conflict.cosine_counts.assign(tasks * tasks, 0);
  }
  ++conflict.steps;
  for (int64_t a = 0; a < k; ++a) {
    const double norm_a = std::sqrt(g[a * k + a]);
    conflict.norm_sums[present[a]] += norm_a;
    ++conflict.norm_counts[present[a]];
    for (int64_t b = 0; b < k; ++b) {
      const double norm_b = std::sqrt(g[b * k + b]);
      if (a == b || norm_a == 0 || norm_b == 0) continue;
      conflict.cosine_sums[present[a] * tasks + present[b]] += g[a * k + b] / (norm_a * norm_b);
      ++conflict.cosine_counts[present[a] * tasks + present[b]];
    }
  }
}

void Trainer::set_communicator(std::shared_ptr<Communicator> communicator) {
  communicator_ = std::move(communicator);
  if (communicator_) communicator_->broadcast_(model_->trainable_parameters(), 0);
}

std::vector<std::pair<torch::Tensor, torch::Tensor>> Trainer::table_gradients(
    const std::vector<TouchedRows>& touched, const std::vector<std::vector<int64_t>>& rows_per_rank) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> ids;
  std::vector<torch::Tensor> grads;
  for (size_t t = 0; t < tables_.size(); ++t) {
    const auto& table = tables_[t];
    // A rank without rows in this batch still takes part in the exchange.
    const bool has_rows = t < touched.size() && touched[t].ids.defined();
    ids.push_back(has_rows ? touched[t].ids : torch::empty({0}, table.options().dtype(torch::kLong)));
    grads.push_back(has_rows && touched[t].rows.grad().defined()
                        ? touched[t].rows.grad()
                        : torch::zeros({ids.back().size(0), table.size(1)}, table.options()));
  }
  if (communicator_) {
    // Only the touched rows travel, every table's at once: all ranks' (id, row) pairs, summed where ids meet.
    std::vector<torch::Tensor> locals = ids;
    locals.insert(locals.end(), grads.begin(), grads.end());
    auto counts = rows_per_rank;  // ids and row gradients: the same counts twice
    for (auto& rank_counts : counts) rank_counts.insert(rank_counts.end(), rank_counts.begin(), rank_counts.end());
    const auto gathered = communicator_->all_gather_rows(locals, counts);
    for (size_t t = 0; t < tables_.size(); ++t) {
      std::tie(ids[t], grads[t]) = coalesce_rows(gathered[t], gathered[tables_.size() + t]);
    }
  }
  std::vector<std::pair<torch::Tensor, torch::Tensor>> gradients;
  for (size_t t = 0; t < tables_.size(); ++t) gradients.emplace_back(ids[t], grads[t]);
  return gradients;
}

EpochResult Trainer::train_epoch(const Dataset& data, int64_t epoch, const torch::Device& device,
                                 const std::function<void(const StepProgress&)>& progress,
                                 const std::atomic<bool>& abort, double progress_interval, const EpochPass& pass) {
  model_->set_training(true);
  // Back to evaluation mode however the pass ends, so that reads never switch it.
  struct EvaluationModeAtEnd {
    TaskModel& model;
    ~EvaluationModeAtEnd() { model.set_training(false); }
  } evaluation_mode_at_end{*model_};
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  // Seeded by (seed, shuffle key): every rank, and a resumed run, sees the same order.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options_.seed * 1000003ULL + pass.shuffle_key);
  const auto order = torch::randperm(data.size(), generator, torch::kLong);
  const int64_t world = communicator_ ? communicator_->world_size() : 1;
  const int64_t rank = communicator_ ? communicator_->rank() : 0;
  const int64_t batch_size = options_.batch_size;
  const int64_t global_batch = batch_size * world;
  const bool own_data = pass.own_batches >= 0;
  const int64_t rows_here = pass.has_rows ? data.size() : 0;
  const int64_t batches = own_data ? pass.own_batches : (data.size() + global_batch - 1) / global_batch;
  const size_t tasks = options_.tasks.size();
  const auto tables = static_cast<int64_t>(tables_.size());
  auto touched_rows_of = [&](const double* stat) {
    std::vector<std::vector<int64_t>> rows(world, std::vector<int64_t>(tables));
    for (int64_t r = 0; r < world; ++r) {
      for (int64_t t = 0; t < tables; ++t) rows[r][t] = static_cast<int64_t>(stat[3 + 2 * tasks + r * tables + t]);
    }
    return rows;
  };

  EpochResult result;
  std::vector<double> loss_sums(tasks, 0.0);  // over the global batches, each weighted by its examples
  int64_t counted_examples = 0;
  auto report = [&](int64_t batch) {
    StepProgress p;
    p.epoch = epoch;
    p.step = step_;
    p.batch = batch;
    p.batches = batches;
    p.examples = result.examples;
    for (double sum : loss_sums) p.loss.push_back(counted_examples ? sum / counted_examples : 0.0);
    p.examples_per_second = result.examples / std::max(1e-9, seconds_since(start));
    p.lr = lr_at(step_);
    progress(p);
  };

  for (int64_t batch = 0; batch < batches; ++batch) {
    const int64_t begin = std::min(rows_here, own_data ? batch * batch_size : batch * global_batch + rank * batch_size);
    const int64_t local = std::min(rows_here, begin + batch_size) - begin;
    const double lr = lr_at(step_);
    for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
    // Gradients set to none rather than zero-filled: backward then hands its buffers over.
    for (auto& param : parameters_) param.mutable_grad() = torch::Tensor();

    // Per-step statistics, summed over ranks: [stop requested, examples, non-finite, per task its
    // loss x labelled mass, per task its labelled mass (rows, or their sample weights), then rank r's
    // touched rows of table t at r * tables + t] (so the row exchange needs no collective of its own
    // to learn the counts).
    auto stats = torch::zeros({3 + 2 * static_cast<int64_t>(tasks) + world * tables}, torch::kDouble);
    auto* stat = stats.data_ptr<double>();
    stat[0] = abort.load() ? 1.0 : 0.0;
    stat[1] = static_cast<double>(local);
    int64_t bad_task = -1;
    std::vector<TouchedRows> touched;
    std::vector<BatchTaskLoss> losses(tasks);
    const bool forward = local > 0 && stat[0] == 0.0;
    if (forward) {
      const auto rows = order.slice(0, begin, begin + local);
      const Batch inputs = data.batch(rows).to(device);
      const auto labels = data.labels_of(rows).to(device);
      const auto sample_weights =
          data.sample_weights().defined() ? data.sample_weights_of(rows).to(device) : torch::Tensor();
      const auto outputs = sparse_optimizer_ ? model_->forward_touched(inputs, touched) : model_->forward_tasks(inputs);
      if (outputs.size() != tasks) {
        throw InvalidArgument("the model returned " + std::to_string(outputs.size()) + " outputs for " +
                              std::to_string(tasks) + " tasks");
      }
      for (size_t t = 0; t < tasks; ++t) {
        losses[t] = task_loss(t, outputs[t], labels, sample_weights);
        const double value = losses[t].loss.item<double>();
        if (!std::isfinite(value) && bad_task < 0) bad_task = static_cast<int64_t>(t);
        stat[3 + t] = value * losses[t].mass;
        stat[3 + tasks + t] = losses[t].mass;
      }
      stat[2] = bad_task >= 0 ? 1.0 : 0.0;
      for (size_t t = 0; t < touched.size(); ++t) {
        stat[3 + 2 * tasks + rank * tables + t] = static_cast<double>(touched[t].ids.size(0));
      }
    }
    // Before backward: each task's term is weighted by this rank's share of the task's labelled
    // mass in the global batch, so that summed gradients are those of one process's batch mean
    // even where ranks hold different numbers of a task's labels.
    if (communicator_) communicator_->all_reduce_sum_({stats});
    if (stat[0] > 0.0) {
      result.aborted = true;
      break;
    }
    const auto examples = static_cast<int64_t>(stat[1]);
    result.examples += examples;
    if (stat[2] > 0.0) {
      if (options_.non_finite == NonFinitePolicy::Stop) {
        const std::string task = bad_task >= 0 ? "'" + model_->task_specs()[bad_task].name + "'" : "of another rank";
        throw NonFiniteLoss("epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) + " (step " +
                            std::to_string(step_) + "): the loss of task " + task +
                            " is not finite; lower the learning rate or check the data");
      }
      ++result.skipped;
      continue;
    }
    if (forward) {
      torch::Tensor total = torch::zeros({}, losses.front().loss.options());
      std::vector<torch::Tensor> terms(tasks);  // undefined for a task without labelled rows
      for (size_t t = 0; t < tasks; ++t) {
        // A task without labelled rows in this batch adds nothing (not even an uncertainty term).
        if (losses[t].count == 0) continue;
        terms[t] = weighted_term(t, losses[t].loss);
        total = total + (communicator_ ? terms[t] * (losses[t].mass / stat[3 + tasks + t]) : terms[t]);
      }
      if (options_.conflict_every > 0 && step_ % options_.conflict_every == 0) {
        measure_conflict(terms, touched, result.conflict);
      }
      const auto gradnorm = gradnorm_weights_.defined() ? gradnorm_gradient(losses) : torch::Tensor();
      total.backward();
      // GradNorm's gradient is this rank's own: its share of the examples enters the sum.
      if (gradnorm.defined())
        gradnorm_weights_.mutable_grad() = communicator_ ? gradnorm * (local / stat[1]) : gradnorm;
    }
    std::function<void()> dense_reduced;
    torch::Tensor produced;  // per parameter: how many ranks produced its gradient
    if (communicator_) {
      torch::NoGradGuard no_grad;
      produced = torch::zeros({static_cast<int64_t>(parameters_.size())});
      auto* made = produced.data_ptr<float>();
      std::vector<torch::Tensor> summed;
      for (size_t p = 0; p < parameters_.size(); ++p) {
        auto& param = parameters_[p];
        if (param.grad().defined()) made[p] = 1.0f;
        else param.mutable_grad() = torch::zeros_like(param);
        summed.push_back(param.grad());
      }
      summed.push_back(produced);
      // The dense all-reduce runs while the tables' rows are exchanged.
      dense_reduced = communicator_->start_all_reduce_sum_(summed);
    }
    const auto table_gradients = sparse_optimizer_ ? this->table_gradients(touched, touched_rows_of(stat))
                                                   : std::vector<std::pair<torch::Tensor, torch::Tensor>>();
    if (dense_reduced) {
      dense_reduced();
      // A parameter no rank produced a gradient for keeps none (the optimizer leaves it be), as in one process.
      const auto* count = produced.data_ptr<float>();
      for (size_t p = 0; p < parameters_.size(); ++p) {
        if (count[p] == 0) parameters_[p].mutable_grad() = torch::Tensor();
      }
    }
    std::vector<torch::Tensor> gradients;
    for (auto& param : parameters_) {
      if (param.grad().defined()) gradients.push_back(param.grad());
    }
    if (options_.clip_norm > 0) {
      // GradNorm's weights have a gradient of their own objective: not the model's to clip.
      std::vector<torch::Tensor> all;
      for (const auto& gradient : gradients) {
        if (!gradnorm_weights_.defined() || !gradient.is_same(gradnorm_weights_.grad())) all.push_back(gradient);
      }
      for (const auto& rows : table_gradients) all.push_back(rows.second);
      torch::NoGradGuard no_grad;
      clip_gradients_(all, options_.clip_norm);
    }
    optimizer_->step();
    if (gradnorm_weights_.defined()) {
      // Renormalised to sum to T after each step, as the paper does.
      torch::NoGradGuard no_grad;
      gradnorm_weights_.clamp_min_(0.0);
      const double sum = gradnorm_weights_.sum().item<double>();
      if (sum > 0) gradnorm_weights_.mul_(static_cast<double>(tasks) / sum);
      else gradnorm_weights_.fill_(1.0);
    }
    if (sparse_optimizer_) {
      const double table_lr = sparse_optimizer_->options().lr * lr / options_.optimizer.lr;
      for (size_t t = 0; t < table_gradients.size(); ++t) {
        sparse_optimizer_->step(t, table_gradients[t].first, table_gradients[t].second, table_lr);
      }
    }
    ++step_;
    ++result.steps;
    counted_examples += examples;
    // Each task's mean over the global batch's labelled rows, weighted by the batch's examples.
    for (size_t t = 0; t < tasks; ++t) {
      if (stat[3 + tasks + t] > 0) loss_sums[t] += stat[3 + t] / stat[3 + tasks + t] * static_cast<double>(examples);
    }
    if (progress && seconds_since(last_report) >= progress_interval) {
      last_report = std::chrono::steady_clock::now();
      report(batch + 1);
    }
  }
  if (progress) report(result.aborted ? result.steps + result.skipped : batches);
  for (double sum : loss_sums) result.loss.push_back(counted_examples ? sum / counted_examples : 0.0);
  result.seconds = seconds_since(start);
  return result;
}

std::vector<torch::Tensor> predict_outputs(TaskModel& model, const Dataset& data, int64_t batch_size,
                                           const torch::Device& device, Communicator* communicator) {
  if (batch_size <= 0) throw InvalidArgument("batchSize must be positive");
  model.set_training(false);
  const int64_t world = communicator ? communicator->world_size() : 1;
  const int64_t shard = (data.size() + world - 1) / world;
  const int64_t first = std::min(data.size(), (communicator ? communicator->rank() : 0) * shard);
  const int64_t last = std::min(data.size(), first + shard);
  const auto& specs = model.task_specs();
  std::vector<torch::Tensor> outputs;
  {
    EvaluationGuard no_autograd(model);
    std::vector<std::vector<torch::Tensor>> parts(specs.size());
    for (size_t t = 0; t < specs.size(); ++t) parts[t].push_back(torch::empty({0, specs[t].outputs}));
    for (int64_t begin = first; begin < last; begin += batch_size) {
      const auto rows = torch::arange(begin, std::min(last, begin + batch_size), torch::kLong);
      const auto batch_outputs = model.forward_tasks(data.batch(rows).to(device));
      if (batch_outputs.size() != parts.size()) throw InvalidArgument("the model returned the wrong number of outputs");
      for (size_t t = 0; t < batch_outputs.size(); ++t) parts[t].push_back(batch_outputs[t].to(torch::kCPU));
    }
    for (auto& task_parts : parts) outputs.push_back(torch::cat(task_parts, 0));
  }
  // Outside inference mode: the collective writes into its buffers from Gloo's own threads.
  if (communicator) {
    outputs = communicator->all_gather_rows(outputs);
  }
  return outputs;
}

}  // namespace adatt
