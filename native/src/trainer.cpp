#include "adatt/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "adatt/errors.h"

namespace adatt {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::vector<torch::Tensor>& params,
                                                        const OptimizerOptions& o) {
  using namespace torch::optim;
  if (o.type == "adam") {
    return std::make_unique<Adam>(
        params, AdamOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
  }
  if (o.type == "adamw") {
    return std::make_unique<AdamW>(
        params, AdamWOptions(o.lr).betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(o.weight_decay));
  }
  if (o.type == "adagrad") {
    return std::make_unique<Adagrad>(params, AdagradOptions(o.lr).weight_decay(o.weight_decay).eps(o.eps));
  }
  if (o.type == "sgd") {
    return std::make_unique<SGD>(params, SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  throw InvalidArgument("unknown optimizer '" + o.type + "' (use adam, adamw, adagrad or sgd)");
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
  if (parameters_.empty()) throw InvalidArgument("trainer: the model has no trainable parameters");
  optimizer_ = make_optimizer(parameters_, options_.optimizer);
}

std::string Trainer::save_state() const {
  torch::serialize::OutputArchive archive;
  optimizer_->save(archive);
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void Trainer::load_state(const std::string& bytes, int64_t step, const torch::Device& device) {
  if (step < 0) throw InvalidArgument("trainer state: step must be non-negative");
  torch::serialize::InputArchive archive;
  std::istringstream in(bytes);
  archive.load_from(in, device);
  optimizer_->load(archive);
  step_ = step;
}

double Trainer::lr_at(int64_t step) const {
  const auto& s = options_.schedule;
  const double base = options_.optimizer.lr;
  if (s.warmup_steps > 0 && step < s.warmup_steps) return base * static_cast<double>(step + 1) / s.warmup_steps;
  const int64_t after_warmup = step - s.warmup_steps;
  if (s.type == "step") return base * std::pow(s.gamma, static_cast<double>(after_warmup / std::max<int64_t>(1, s.step_size)));
  if (s.type == "cosine") {
    const int64_t span = std::max<int64_t>(1, s.total_steps - s.warmup_steps);
    const double progress = std::min(1.0, static_cast<double>(after_warmup) / span);
    return s.min_lr + 0.5 * (base - s.min_lr) * (1.0 + std::cos(kPi * progress));
  }
  return base;
}

torch::Tensor Trainer::task_loss(size_t task, const torch::Tensor& output, const torch::Tensor& labels) const {
  namespace F = torch::nn::functional;
  const auto& spec = options_.tasks[task];
  const auto present = labels.isnan().logical_not();
  const auto y = labels.index({present});
  if (y.numel() == 0) return torch::zeros({}, output.options());
  const auto out = output.index({present});
  switch (spec.loss) {
    case LossKind::BinaryCrossEntropy: return F::binary_cross_entropy_with_logits(out.squeeze(-1), y);
    case LossKind::CrossEntropy: return F::cross_entropy(out, y.to(torch::kLong));
    case LossKind::MeanSquaredError: return F::mse_loss(out.squeeze(-1), y);
    case LossKind::Huber:
      return F::huber_loss(out.squeeze(-1), y, F::HuberLossFuncOptions().delta(spec.huber_delta));
  }
  throw InvalidArgument("unknown loss");
}

EpochResult Trainer::train_epoch(const Dataset& data, int64_t epoch, const torch::Device& device,
                                 const std::function<void(const StepProgress&)>& progress,
                                 const std::atomic<bool>& abort, double progress_interval) {
  model_->set_training(true);
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  // Seeded by (seed, epoch): the same run, or a resumed one, sees the same order.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options_.seed * 1000003ULL + static_cast<uint64_t>(epoch));
  const auto order = torch::randperm(data.size(), generator, torch::kLong);
  const int64_t batch_size = options_.batch_size;
  const int64_t batches = (data.size() + batch_size - 1) / batch_size;
  const size_t tasks = options_.tasks.size();

  EpochResult result;
  std::vector<double> loss_sums(tasks, 0.0);
  int64_t counted_batches = 0;
  auto report = [&](int64_t batch) {
    StepProgress p;
    p.epoch = epoch;
    p.step = step_;
    p.batch = batch;
    p.batches = batches;
    p.examples = result.examples;
    for (double sum : loss_sums) p.loss.push_back(counted_batches ? sum / counted_batches : 0.0);
    p.examples_per_second = result.examples / std::max(1e-9, seconds_since(start));
    p.lr = lr_at(step_);
    progress(p);
  };

  for (int64_t batch = 0; batch < batches; ++batch) {
    if (abort.load()) {
      result.aborted = true;
      break;
    }
    const auto rows = order.slice(0, batch * batch_size, std::min(data.size(), (batch + 1) * batch_size));
    const Batch inputs = data.batch(rows).to(device);
    const auto labels = data.labels_of(rows).to(device);

    const double lr = lr_at(step_);
    for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
    optimizer_->zero_grad();
    const auto outputs = model_->forward_tasks(inputs);
    if (outputs.size() != tasks) throw InvalidArgument("the model returned " + std::to_string(outputs.size()) +
                                                       " outputs for " + std::to_string(tasks) + " tasks");
    torch::Tensor total = torch::zeros({}, outputs.front().options());
    std::vector<double> values(tasks);
    bool finite = true;
    for (size_t t = 0; t < tasks; ++t) {
      const auto loss = task_loss(t, outputs[t], labels.select(1, static_cast<int64_t>(t)));
      values[t] = loss.item<double>();
      if (!std::isfinite(values[t])) {
        finite = false;
        if (options_.non_finite == NonFinitePolicy::Stop) {
          throw NonFiniteLoss("epoch " + std::to_string(epoch) + ", batch " + std::to_string(batch) + " (step " +
                              std::to_string(step_) + "): the loss of task '" + model_->task_specs()[t].name +
                              "' is " + std::to_string(values[t]) + "; lower the learning rate or check the data");
        }
      }
      total = total + options_.tasks[t].weight * loss;
    }
    result.examples += rows.size(0);
    if (!finite) {
      ++result.skipped;
      continue;
    }
    total.backward();
    if (options_.clip_norm > 0) torch::nn::utils::clip_grad_norm_(parameters_, options_.clip_norm);
    optimizer_->step();
    ++step_;
    ++result.steps;
    ++counted_batches;
    for (size_t t = 0; t < tasks; ++t) loss_sums[t] += values[t];
    if (progress && seconds_since(last_report) >= progress_interval) {
      last_report = std::chrono::steady_clock::now();
      report(batch + 1);
    }
  }
  if (progress) report(result.aborted ? result.steps + result.skipped : batches);
  for (double sum : loss_sums) result.loss.push_back(counted_batches ? sum / counted_batches : 0.0);
  result.seconds = seconds_since(start);
  return result;
}

std::vector<torch::Tensor> predict_outputs(TaskModel& model, const Dataset& data, int64_t batch_size,
                                           const torch::Device& device) {
  if (batch_size <= 0) throw InvalidArgument("batchSize must be positive");
  c10::InferenceMode inference;
  model.set_training(false);
  std::vector<std::vector<torch::Tensor>> parts(model.task_specs().size());
  for (int64_t begin = 0; begin < data.size(); begin += batch_size) {
    const auto rows = torch::arange(begin, std::min(data.size(), begin + batch_size), torch::kLong);
    const auto outputs = model.forward_tasks(data.batch(rows).to(device));
    if (outputs.size() != parts.size()) throw InvalidArgument("the model returned the wrong number of outputs");
    for (size_t t = 0; t < outputs.size(); ++t) parts[t].push_back(outputs[t].to(torch::kCPU));
  }
  std::vector<torch::Tensor> outputs;
  for (auto& task_parts : parts) outputs.push_back(torch::cat(task_parts, 0));
  return outputs;
}

}  // namespace adatt
