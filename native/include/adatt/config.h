// Model configuration of the native core: the normalised config that docs/architecture.md describes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adatt {

enum class ModelKind { AdaTTSp, AdaTT, MMoE, PLE, CrossStitch, SharedBottom, SingleTask };

enum class Pooling { Mean, Sum };

struct CategoricalFeature {
  int64_t vocab = 0;
  int64_t dim = 0;
};

struct MultiValuedFeature {
  int64_t vocab = 0;
  int64_t dim = 0;
  Pooling pooling = Pooling::Mean;
};

struct TaskSpec {
  std::string name;
  int64_t outputs = 1;  // 1 for binary and regression, K for K-class
  // ESMM (Ma et al., SIGIR 2018): the index of the binary task this binary task is conditional on,
  // or -1. Its tower then models P(task | parent) and the model's output for it is the logit of the
  // joint P(parent) x P(task | parent) (the parent's own output joint already in a chain).
  int64_t conditional_on = -1;
};

struct ModelConfig {
  ModelKind kind = ModelKind::AdaTTSp;
  int64_t dense_dim = 0;
  std::vector<CategoricalFeature> categorical;
  std::vector<MultiValuedFeature> multi_valued;
  std::vector<TaskSpec> tasks;
  std::vector<std::vector<int64_t>> expert_dims;  // per fusion level, expert MLP widths
  std::vector<int64_t> tower_dims;
  std::vector<int64_t> experts_per_task;        // per task: adatt-sp, adatt, ple
  int64_t shared_experts = 0;                   // adatt, ple: shared experts; mmoe: experts per level
  std::vector<std::vector<int64_t>> gate_dims;  // mmoe gate MLP widths per level
  bool native_residual = true;
  uint64_t seed = 0;

  int64_t num_tasks() const { return static_cast<int64_t>(tasks.size()); }
  int64_t input_dim() const;
  // Checks what would otherwise be undefined behaviour in C++; throws std::invalid_argument.
  void validate() const;
};

ModelKind parse_model_kind(const std::string& name);
const char* model_kind_name(ModelKind kind);

}  // namespace adatt
