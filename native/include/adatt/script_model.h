// TorchScript modules made in PyTorch (torch.jit.script / torch.jit.trace + torch.jit.save): loaded,
// run, fine-tuned with the same trainer as our models, and saved back.
#pragma once

#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "adatt/task_model.h"

namespace adatt {

// What a TorchScript model's forward receives from a dataset batch, in order.
enum class ScriptInput { Dense, Categorical };

class ScriptTaskModel : public TaskModel {
 public:
  // Loads `path` onto `device`. A file from a newer PyTorch than the linked LibTorch gets a FileError
  // naming both versions.
  static std::shared_ptr<ScriptTaskModel> load(const std::string& path, const torch::Device& device);

  torch::jit::Module& module() { return module_; }
  bool allows_inference_mode() const override { return false; }
  // How dataset batches feed forward() and which task each output is; needed to train or evaluate.
  void configure(std::vector<ScriptInput> inputs, std::vector<TaskSpec> tasks);
  bool configured() const { return !tasks_.empty(); }
  // Writes the module atomically as TorchScript that torch.jit.load reads, in the mode (training or
  // eval) it was loaded in: fit and evaluate switch modes, and a module scripted for serving in eval
  // mode must not come back in training mode.
  void save(const std::string& path);
  int64_t parameter_count();

  // Outputs may be a tuple or list with one tensor per task, a dict keyed by task name, or one
  // [B, sum(outputs)] tensor whose columns are the tasks' outputs in order.
  std::vector<torch::Tensor> forward_tasks(const Batch& batch) override;
  std::vector<torch::Tensor> trainable_parameters() override;
  void set_training(bool on) override { module_.train(on); }
  const std::vector<TaskSpec>& task_specs() const override { return tasks_; }
  void check_dataset(const Dataset& data, const std::vector<bool>& regression) const override;

 private:
  explicit ScriptTaskModel(torch::jit::Module module)
      : module_(std::move(module)), loaded_training_(module_.is_training()) {}
  torch::jit::Module module_;
  bool loaded_training_;
  std::vector<ScriptInput> inputs_;
  std::vector<TaskSpec> tasks_;
};

}  // namespace adatt
