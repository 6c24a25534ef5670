#include "adatt/config.h"

#include <algorithm>
#include <unordered_set>

#include "adatt/errors.h"

namespace adatt {
namespace {

constexpr std::pair<ModelKind, const char*> kKindNames[] = {
    {ModelKind::AdaTTSp, "adatt-sp"},
    {ModelKind::AdaTT, "adatt"},
    {ModelKind::MMoE, "mmoe"},
    {ModelKind::PLE, "ple"},
    {ModelKind::CrossStitch, "cross-stitch"},
    {ModelKind::SharedBottom, "shared-bottom"},
    {ModelKind::SingleTask, "single-task"},
};

void require(bool condition, const std::string& message) {
  if (!condition) throw InvalidArgument("invalid model config: " + message);
}

void require_widths(const std::vector<int64_t>& widths, const std::string& field, bool allow_empty) {
  require(allow_empty || !widths.empty(), field + " must have at least one layer");
  for (int64_t w : widths) require(w > 0, field + " widths must be positive");
}

}  // namespace

ModelKind parse_model_kind(const std::string& name) {
  for (const auto& [kind, kind_name] : kKindNames) {
    if (name == kind_name) return kind;
  }
  throw InvalidArgument("unknown model kind '" + name + "'");
}

const char* model_kind_name(ModelKind kind) {
  for (const auto& [k, kind_name] : kKindNames) {
    if (k == kind) return kind_name;
  }
  return "unknown";
}

int64_t ModelConfig::input_dim() const {
  int64_t dim = dense_dim;
  for (const auto& f : categorical) dim += f.dim;
  for (const auto& f : multi_valued) dim += f.dim;
  return dim;
}

void ModelConfig::validate() const {
  require(dense_dim >= 0, "denseDim must be non-negative");
  for (const auto& f : categorical) require(f.vocab > 0 && f.dim > 0, "categorical vocab and dim must be positive");
  for (const auto& f : multi_valued) require(f.vocab > 0 && f.dim > 0, "multiValued vocab and dim must be positive");
  require(input_dim() > 0, "the model needs at least one input feature");
  require(!tasks.empty(), "at least one task is needed");
  std::unordered_set<std::string> names;
  for (const auto& task : tasks) {
    require(task.outputs > 0, "task outputs must be positive");
    require(names.insert(task.name).second, "duplicate task name '" + task.name + "'");
  }
  for (size_t t = 0; t < tasks.size(); ++t) {
    // Following the chain of parents from any task must end (no cycles), at binary tasks only.
    int64_t at = static_cast<int64_t>(t);
    for (size_t hops = 0; tasks[at].conditional_on >= 0; ++hops) {
      const int64_t parent = tasks[at].conditional_on;
      require(parent < static_cast<int64_t>(tasks.size()), "a task is conditional on an unknown task");
      require(tasks[at].outputs == 1 && tasks[parent].outputs == 1,
              "conditional tasks and their parents must be binary");
      require(hops < tasks.size(), "task '" + tasks[t].name + "' is conditional on itself through a cycle");
      at = parent;
    }
  }
  require(!expert_dims.empty(), "expertDims must have at least one level");
  for (const auto& level : expert_dims) require_widths(level, "expertDims", false);
  require_widths(tower_dims, "towerDims", true);

  const bool per_task_experts = kind == ModelKind::AdaTTSp || kind == ModelKind::AdaTT || kind == ModelKind::PLE;
  if (per_task_experts) {
    require(experts_per_task.size() == tasks.size(), "expertsPerTask must have one entry per task");
    for (int64_t n : experts_per_task) require(n > 0, "expertsPerTask entries must be positive");
  }
  if (kind == ModelKind::AdaTTSp) {
    require(std::all_of(experts_per_task.begin(), experts_per_task.end(),
                        [&](int64_t n) { return n == experts_per_task.front(); }),
            "adatt-sp needs the same number of experts for every task");
  }
  if (kind == ModelKind::AdaTT || kind == ModelKind::PLE || kind == ModelKind::MMoE) {
    require(shared_experts > 0, "sharedExperts must be positive");
  }
  if (kind == ModelKind::MMoE) {
    require(gate_dims.size() == expert_dims.size(), "gateDims must have one entry per level");
    for (const auto& level : gate_dims) require_widths(level, "gateDims", true);
  }
}

}  // namespace adatt
