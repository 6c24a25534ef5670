#include "adatt/script_model.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/frontend/error_report.h>
#include <torch/version.h>

#include <regex>
#include <set>
#include <sstream>

#include "adatt/dataset.h"
#include "adatt/errors.h"
#include "adatt/model.h"
#include "adatt/weights_io.h"
#include "adatt/zip_check.h"

namespace adatt {
namespace {

torch::Tensor as_task_output(const torch::Tensor& output, const TaskSpec& task, int64_t rows) {
  if (output.numel() != rows * task.outputs) {
    throw InvalidArgument("TorchScript output for task '" + task.name + "' has " + std::to_string(output.numel()) +
                          " values, expected " + std::to_string(rows) + " x " + std::to_string(task.outputs));
  }
  return output.reshape({rows, task.outputs});
}

}  // namespace

// The archive without its *.debug_pkl records. Those only map code to source lines for error
// messages, yet LibTorch unpickles them without bounds checks while reporting an error, so a damaged
// one crashes the process; leaving them out makes damaged files fail with an error instead.
static std::string archive_without_debug_info(const std::string& path) {
  const auto bytes = read_file(path);
  const auto verified = open_verified_archive(bytes, path);
  auto& reader = *verified;
  std::ostringstream out;
  caffe2::serialize::PyTorchStreamWriter writer([&out](const void* data, size_t size) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    return size;
  });
  writer.setMinVersion(reader.version());
  static const std::set<std::string> kWrittenByWriter = {"version", ".data/version", "byteorder",
                                                         ".data/serialization_id"};
  for (const auto& name : reader.getAllRecords()) {
    if (kWrittenByWriter.count(name) || (name.size() > 10 && name.compare(name.size() - 10, 10, ".debug_pkl") == 0)) {
      continue;
    }
    auto [data, size] = reader.getRecord(name);
    writer.writeRecord(name, data.get(), size);
  }
  writer.writeEndOfFile();
  return out.str();
}

std::shared_ptr<ScriptTaskModel> ScriptTaskModel::load(const std::string& path, const torch::Device& device) {
  try {
    std::istringstream archive(archive_without_debug_info(path));
    return std::shared_ptr<ScriptTaskModel>(new ScriptTaskModel(torch::jit::load(archive, device)));
  } catch (const torch::jit::ErrorReport&) {
    // Its what() is noexcept yet may throw while rendering source context from a damaged file,
    // which would terminate the process: report without calling it.
    throw FileError("cannot load TorchScript file " + path + " with LibTorch " + TORCH_VERSION +
                    ": its code does not compile here (a damaged file, or one saved by a newer PyTorch — "
                    "re-export it with torch " +
                    TORCH_VERSION + " or build adatt against a newer LibTorch)");
  } catch (const c10::Error& e) {
    const std::string reason = e.what_without_backtrace();
    std::smatch versions;
    static const std::regex kNewer("file with version (\\d+), but the maximum supported version for reading is (\\d+)");
    if (std::regex_search(reason, versions, kNewer)) {
      throw FileError(path + " was saved by a newer PyTorch: TorchScript file format version " + versions[1].str() +
                      ", while the linked LibTorch " + TORCH_VERSION + " reads up to version " + versions[2].str() +
                      ". Save it with an older torch, or build adatt against a newer LibTorch (LIBTORCH=… or "
                      "LIBTORCH_USE_PYTORCH=1).");
    }
    throw FileError("cannot load TorchScript file " + path + " with LibTorch " + TORCH_VERSION + ": " + reason);
  } catch (const std::exception& e) {
    throw FileError("cannot load TorchScript file " + path + ": " + e.what());
  }
}

void ScriptTaskModel::configure(std::vector<ScriptInput> inputs, std::vector<TaskSpec> tasks) {
  if (tasks.empty()) throw InvalidArgument("a TorchScript model needs at least one task");
  inputs_ = std::move(inputs);
  tasks_ = std::move(tasks);
}

void ScriptTaskModel::save(const std::string& path) {
  std::ostringstream out;
  const bool training = module_.is_training();
  module_.train(loaded_training_);
  try {
    module_.save(out);
  } catch (...) {
    module_.train(training);
    throw;
  }
  module_.train(training);
  const std::string bytes = out.str();
  write_file_atomic(path, std::vector<char>(bytes.begin(), bytes.end()));
}

int64_t ScriptTaskModel::parameter_count() {
  int64_t count = 0;
  for (const auto& param : module_.parameters()) count += param.numel();
  return count;
}

std::vector<torch::Tensor> ScriptTaskModel::trainable_parameters() {
  std::vector<torch::Tensor> params;
  for (const auto& param : module_.parameters()) {
    if (param.requires_grad()) params.push_back(param);
  }
  return params;
}

std::vector<torch::Tensor> ScriptTaskModel::forward_tasks(const Batch& batch) {
  if (!configured()) throw InvalidArgument("configure the TorchScript model's inputs and tasks before training");
  std::vector<c10::IValue> args;
  for (auto input : inputs_) {
    const auto& tensor = input == ScriptInput::Dense ? batch.dense : batch.categorical;
    if (!tensor.defined()) {
      throw InvalidArgument(std::string("the dataset has no ") +
                            (input == ScriptInput::Dense ? "dense" : "categorical") + " features for this model");
    }
    args.emplace_back(tensor);
  }
  const c10::IValue output = module_.forward(args);
  std::vector<torch::Tensor> outputs;
  const int64_t rows = batch.size;
  if (output.isTensor()) {
    int64_t column = 0;
    const auto all = output.toTensor().reshape({rows, -1});
    for (const auto& task : tasks_) {
      if (column + task.outputs > all.size(1)) throw InvalidArgument("the TorchScript output has too few columns");
      outputs.push_back(all.narrow(1, column, task.outputs));
      column += task.outputs;
    }
    if (column != all.size(1)) throw InvalidArgument("the TorchScript output has more columns than the tasks' outputs");
    return outputs;
  }
  if (output.isGenericDict()) {
    const auto dict = output.toGenericDict();
    for (const auto& task : tasks_) {
      const auto found = dict.find(c10::IValue(task.name));
      if (found == dict.end() || !found->value().isTensor()) {
        throw InvalidArgument("the TorchScript output dict has no tensor for task '" + task.name + "'");
      }
      outputs.push_back(as_task_output(found->value().toTensor(), task, rows));
    }
    return outputs;
  }
  std::vector<c10::IValue> items;
  if (output.isTuple()) items = output.toTupleRef().elements().vec();
  else if (output.isList()) items = output.toListRef().vec();
  else throw InvalidArgument("TorchScript forward must return a tensor, a tuple or list of tensors, or a dict");
  if (items.size() != tasks_.size()) {
    throw InvalidArgument("the TorchScript model returned " + std::to_string(items.size()) + " outputs for " +
                          std::to_string(tasks_.size()) + " tasks");
  }
  for (size_t t = 0; t < items.size(); ++t) {
    if (!items[t].isTensor()) throw InvalidArgument("TorchScript output " + std::to_string(t) + " is not a tensor");
    outputs.push_back(as_task_output(items[t].toTensor(), tasks_[t], rows));
  }
  return outputs;
}

void ScriptTaskModel::check_dataset(const Dataset& data, const std::vector<bool>& regression) const {
  if (!configured()) throw InvalidArgument("configure the TorchScript model's inputs and tasks before training");
  for (auto input : inputs_) {
    const auto& tensor = input == ScriptInput::Dense ? data.dense() : data.categorical();
    if (!tensor.defined() || tensor.size(1) == 0) {
      throw InvalidArgument(std::string("the dataset has no ") +
                            (input == ScriptInput::Dense ? "dense" : "categorical") + " features for this model");
    }
  }
  data.check_labels(tasks_, regression);
}

}  // namespace adatt
