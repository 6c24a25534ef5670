#include "adatt/architectures.h"

#include <cmath>
#include <numeric>
#include <string>

#include "adatt/errors.h"
#include "adatt/fusion.h"
#include "adatt/init.h"

namespace adatt {
namespace {

std::string level_unit_prefix(const std::string& group, size_t level, int64_t unit) {
  return "mtl_arch." + group + "." + std::to_string(level) + "." + std::to_string(unit) + ".";
}

std::vector<int64_t> flatten(const std::vector<std::vector<int64_t>>& levels) {
  std::vector<int64_t> widths;
  for (const auto& level : levels) widths.insert(widths.end(), level.begin(), level.end());
  return widths;
}

std::vector<int64_t> iota_vector(int64_t count) {
  std::vector<int64_t> values(static_cast<size_t>(count));
  std::iota(values.begin(), values.end(), 0);
  return values;
}

// The expert and gate stacks of one fusion level: experts read input modules, gates produce a dense
// [B, G, E] matrix, and the level's output is their product (plus a model-specific residual).
struct FusionLevel {
  GroupedMLP experts{nullptr};
  GateBank gates{nullptr};
};

// Base for the gated kinds: owns the levels and the shared forward loop.
class GatedFusionArch : public MultiTaskArch {
 public:
  torch::Tensor forward(const torch::Tensor& input, ArchProbe* probe) override {
    torch::Tensor hidden = input;  // [B, D] at the first level: every module reads the same input
    for (size_t level = 0; level < levels_.size(); ++level) {
      auto& fusion = levels_[level];
      const torch::Tensor expert_out = fusion.experts->forward(hidden);
      torch::Tensor weights = fusion.gates->forward(gate_input(input, hidden));
      if (probe != nullptr) {
        probe->gates.push_back(weights.detach());
        probe->experts.push_back(expert_out.detach());
      }
      weights = add_residual(level, weights);
      hidden = fuse_experts(weights, expert_out);  // [B, G, E] x [B, E, D] -> [B, G, D]
    }
    return hidden;
  }

  int64_t output_dim() const override { return output_dim_; }

  // Every expert of the last level: every task's gate reads them all (PLE overrides).
  void shared_layer_entries(ReferenceEntries& out) const override {
    last_level_experts(0, levels_.back().experts->units(), out);
  }

 protected:
  void last_level_experts(int64_t first, int64_t count, ReferenceEntries& out) const {
    const size_t level = levels_.size() - 1;
    levels_.back().experts->last_weight_entries([level](int64_t e) { return level_unit_prefix("experts", level, e); },
                                                first, count, out);
  }

  // Which tensor the gates read: the previous level's modules by default (MMoE: the original input).
  virtual torch::Tensor gate_input(const torch::Tensor& /*input*/, const torch::Tensor& hidden) { return hidden; }
  virtual torch::Tensor add_residual(size_t /*level*/, const torch::Tensor& weights) { return weights; }

  // expert_module: the input module of each expert; empty when expert e reads module e (MMoE).
  void add_level(int64_t input_dim, const std::vector<int64_t>& widths, const std::vector<int64_t>& expert_module,
                 GateSpec gate_spec, int64_t gate_input_dim) {
    const std::string suffix = std::to_string(levels_.size());
    const int64_t experts = gate_spec.num_experts;
    FusionLevel fusion;
    fusion.experts = register_module("experts" + suffix, GroupedMLP(experts, input_dim, widths, expert_module));
    fusion.gates = register_module("gates" + suffix, GateBank(gate_input_dim, std::move(gate_spec)));
    levels_.push_back(fusion);
    output_dim_ = widths.back();
  }

  // Experts as mtl_arch.experts.{level}.{expert}; gates as mtl_arch.{gate_group}.{level}.{gate}.{...}.
  void level_reference_entries(ReferenceEntries& out, const std::string& gate_group, const std::string& gate_output,
                               const std::string& gate_mlp) const {
    for (size_t level = 0; level < levels_.size(); ++level) {
      levels_[level].experts->reference_entries([level](int64_t e) { return level_unit_prefix("experts", level, e); },
                                                out);
    }
    for (size_t level = 0; level < levels_.size(); ++level) {
      levels_[level].gates->reference_entries(
          [&, level](int64_t g) { return level_unit_prefix(gate_group, level, g) + gate_output; },
          [&, level](int64_t g) { return level_unit_prefix(gate_group, level, g) + gate_mlp; }, out);
    }
  }

  std::vector<FusionLevel> levels_;
  int64_t output_dim_ = 0;
};

// AdaTT-sp: T task modules of m experts; every task gate fuses all T*m experts; the native-expert
// residual adds a learnable combination of the task's own experts (or the expert itself when m = 1).
class AdaTTSpArch : public GatedFusionArch {
 public:
  explicit AdaTTSpArch(const ModelConfig& config)
      : tasks_(config.num_tasks()),
        experts_per_task_(config.experts_per_task.front()),
        residual_(config.native_residual) {
    const int64_t experts = tasks_ * experts_per_task_;
    std::vector<int64_t> expert_module;
    for (int64_t e = 0; e < experts; ++e) expert_module.push_back(e / experts_per_task_);
    identity_ = register_buffer("identity", torch::eye(tasks_).unsqueeze(2));  // [T, T, 1]
    int64_t input_dim = config.input_dim();
    for (const auto& widths : config.expert_dims) {
      GateSpec gate_spec{iota_vector(tasks_), std::vector<std::vector<int64_t>>(tasks_), experts, {}};
      add_level(input_dim, widths, expert_module, std::move(gate_spec), input_dim);
      if (residual_ && experts_per_task_ > 1) {
        auto weights = torch::empty({tasks_, experts_per_task_});
        init_uniform_(weights, std::sqrt(1.0 / static_cast<double>(experts_per_task_)));
        self_weights_.push_back(register_parameter("self_exp_weights" + std::to_string(self_weights_.size()), weights));
      }
      input_dim = widths.back();
    }
  }

  void reference_entries(ReferenceEntries& out) const override {
    level_reference_entries(out, "gate_weights", "0.", "");
    for (size_t level = 0; level < self_weights_.size(); ++level) {
      out.push_back({"mtl_arch.self_exp_weights." + std::to_string(level), self_weights_[level],
                     [](const torch::Tensor& t) { return t; }});
    }
  }

 protected:
  torch::Tensor add_residual(size_t level, const torch::Tensor& weights) override {
    if (!residual_) return weights;
    // Adding R to the gate weights equals adding R x experts after the fusion: R[t, t*m + j] = w[t, j].
    const torch::Tensor own = experts_per_task_ > 1 ? identity_ * self_weights_[level].unsqueeze(1) : identity_;
    return weights + own.reshape({tasks_, tasks_ * experts_per_task_});
  }

 private:
  int64_t tasks_;
  int64_t experts_per_task_;
  bool residual_;
  torch::Tensor identity_;
  std::vector<torch::Tensor> self_weights_;
};

// AdaTT (general): T task modules plus one shared module, each with its own expert count. The
// native-expert residual is added into the gate weights; at the last level the shared gate is dropped.
class AdaTTArch : public GatedFusionArch {
 public:
  explicit AdaTTArch(const ModelConfig& config) : tasks_(config.num_tasks()), residual_(config.native_residual) {
    module_experts_ = config.experts_per_task;
    module_experts_.push_back(config.shared_experts);
    const auto modules = static_cast<int64_t>(module_experts_.size());
    std::vector<int64_t> expert_module;
    for (int64_t m = 0; m < modules; ++m) {
      module_offsets_.push_back(static_cast<int64_t>(expert_module.size()));
      expert_module.insert(expert_module.end(), static_cast<size_t>(module_experts_[m]), m);
    }
    total_experts_ = static_cast<int64_t>(expert_module.size());
    const auto levels = static_cast<int64_t>(config.expert_dims.size());
    unit_weights_ = std::all_of(module_experts_.begin(), module_experts_.end(), [](int64_t n) { return n == 1; });

    int64_t input_dim = config.input_dim();
    for (int64_t level = 0; level < levels; ++level) {
      const int64_t gates = level == levels - 1 ? tasks_ : tasks_ + 1;
      GateSpec gate_spec{iota_vector(gates), std::vector<std::vector<int64_t>>(gates), total_experts_, {}};
      add_level(input_dim, config.expert_dims[level], expert_module, std::move(gate_spec), input_dim);
      if (residual_ && unit_weights_) {
        auto ones = torch::zeros({gates, total_experts_});
        for (int64_t g = 0; g < gates; ++g) ones[g][module_offsets_[g]] = 1.0;
        unit_residuals_.push_back(register_buffer("unit_residual" + std::to_string(level), ones));
      }
      input_dim = config.expert_dims[level].back();
    }
    if (residual_ && !unit_weights_) {
      for (int64_t m = 0; m < modules; ++m) {
        auto weights = torch::empty({m == tasks_ ? levels - 1 : levels, module_experts_[m]});
        init_uniform_(weights, std::sqrt(1.0 / static_cast<double>(module_experts_[m])));
        self_weights_.push_back(register_parameter("self_exp_weights" + std::to_string(m), weights));
      }
    }
  }

  void reference_entries(ReferenceEntries& out) const override {
    level_reference_entries(out, "gate_weights", "0.", "");
    for (size_t m = 0; m < self_weights_.size(); ++m) {
      out.push_back({"mtl_arch.self_exp_weights." + std::to_string(m), self_weights_[m],
                     [](const torch::Tensor& t) { return t; }});
    }
  }

 protected:
  torch::Tensor add_residual(size_t level, const torch::Tensor& weights) override {
    if (!residual_) return weights;
    if (unit_weights_) return weights + unit_residuals_[level];
    const int64_t gates = weights.size(1);
    std::vector<torch::Tensor> rows;
    for (int64_t g = 0; g < gates; ++g) {
      const int64_t before = module_offsets_[g];
      const int64_t after = total_experts_ - before - module_experts_[g];
      const auto& own = self_weights_[g][static_cast<int64_t>(level)];
      rows.push_back(torch::cat({own.new_zeros({before}), own, own.new_zeros({after})}));
    }
    return weights + torch::stack(rows);
  }

 private:
  int64_t tasks_;
  bool residual_;
  bool unit_weights_ = false;
  int64_t total_experts_ = 0;
  std::vector<int64_t> module_experts_;
  std::vector<int64_t> module_offsets_;
  std::vector<torch::Tensor> unit_residuals_;
  std::vector<torch::Tensor> self_weights_;
};

// PLE (CGC per level): a task gate selects its own and the shared experts; the shared gate, present
// below the last level, selects all experts.
class PLEArch : public GatedFusionArch {
 public:
  explicit PLEArch(const ModelConfig& config) {
    const int64_t tasks = config.num_tasks();
    std::vector<int64_t> expert_module;
    std::vector<std::vector<int64_t>> own(static_cast<size_t>(tasks));
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t j = 0; j < config.experts_per_task[t]; ++j) {
        own[t].push_back(static_cast<int64_t>(expert_module.size()));
        expert_module.push_back(t);
      }
    }
    std::vector<int64_t> shared;
    first_shared_ = static_cast<int64_t>(expert_module.size());
    for (int64_t j = 0; j < config.shared_experts; ++j) {
      shared.push_back(static_cast<int64_t>(expert_module.size()));
      expert_module.push_back(tasks);
    }
    const auto total = static_cast<int64_t>(expert_module.size());
    const auto levels = config.expert_dims.size();
    int64_t input_dim = config.input_dim();
    for (size_t level = 0; level < levels; ++level) {
      GateSpec gate_spec;
      gate_spec.num_experts = total;
      for (int64_t t = 0; t < tasks; ++t) {
        gate_spec.input_module.push_back(t);
        auto selected = own[t];
        selected.insert(selected.end(), shared.begin(), shared.end());
        gate_spec.selected.push_back(selected);
      }
      if (level + 1 < levels) {
        gate_spec.input_module.push_back(tasks);
        gate_spec.selected.emplace_back();  // all experts
      }
      add_level(input_dim, config.expert_dims[level], expert_module, std::move(gate_spec), input_dim);
      input_dim = config.expert_dims[level].back();
    }
  }

  void reference_entries(ReferenceEntries& out) const override {
    level_reference_entries(out, "gate_weights", "0.", "");
  }

  // Task gates read their own experts and the shared ones: only the shared experts serve every task.
  void shared_layer_entries(ReferenceEntries& out) const override {
    last_level_experts(first_shared_, levels_.back().experts->units() - first_shared_, out);
  }

 private:
  int64_t first_shared_ = 0;
};

// Multi-level MMoE: E experts per level; every gate reads the original input; inner levels have one
// gate per next-level expert, the last level one per task.
class MMoEArch : public GatedFusionArch {
 public:
  explicit MMoEArch(const ModelConfig& config) {
    const int64_t experts = config.shared_experts;
    const auto levels = config.expert_dims.size();
    const int64_t original_dim = config.input_dim();
    int64_t input_dim = original_dim;
    for (size_t level = 0; level < levels; ++level) {
      const int64_t gates = level + 1 < levels ? experts : config.num_tasks();
      GateSpec gate_spec{{}, std::vector<std::vector<int64_t>>(gates), experts, config.gate_dims[level]};
      // Expert e of an inner level reads gate e's output of the level below: an identity index.
      add_level(input_dim, config.expert_dims[level], {}, std::move(gate_spec), original_dim);
      input_dim = config.expert_dims[level].back();
    }
  }

  void reference_entries(ReferenceEntries& out) const override { level_reference_entries(out, "gates", "1.", "0."); }

 protected:
  torch::Tensor gate_input(const torch::Tensor& input, const torch::Tensor& /*hidden*/) override { return input; }
};

// Cross-stitch: one MLP per task per level, then a learnable T x T mixing across tasks.
class CrossStitchArch : public MultiTaskArch {
 public:
  explicit CrossStitchArch(const ModelConfig& config) : tasks_(config.num_tasks()) {
    int64_t input_dim = config.input_dim();
    for (const auto& widths : config.expert_dims) {
      const std::string suffix = std::to_string(experts_.size());
      experts_.push_back(register_module("experts" + suffix, GroupedMLP(tasks_, input_dim, widths)));
      auto stitch = torch::empty({tasks_, tasks_});
      init_uniform_(stitch, 1.0 / std::sqrt(static_cast<double>(tasks_)));  // nn.Linear(T, T, bias=False)
      stitches_.push_back(register_parameter("stitch" + suffix, stitch));
      input_dim = widths.back();
    }
    output_dim_ = input_dim;
  }

  torch::Tensor forward(const torch::Tensor& input, ArchProbe* probe) override {
    torch::Tensor hidden = input;
    for (size_t level = 0; level < experts_.size(); ++level) {
      const torch::Tensor expert_out = experts_[level]->forward(hidden);  // [B, T, D]
      if (probe != nullptr) probe->experts.push_back(expert_out.detach());
      const torch::Tensor by_task = expert_out.transpose(0, 1);  // [T, B, D]
      const auto shape = by_task.sizes().vec();
      // out[t] = sum_s W[t, s] x[s]: one GEMM over the flattened batch.
      hidden = torch::mm(stitches_[level], by_task.reshape({tasks_, -1})).view(shape).transpose(0, 1);
    }
    return hidden;
  }

  int64_t output_dim() const override { return output_dim_; }

  void reference_entries(ReferenceEntries& out) const override {
    for (size_t level = 0; level < experts_.size(); ++level) {
      experts_[level]->reference_entries([level](int64_t t) { return level_unit_prefix("experts", level, t); }, out);
      out.push_back({"mtl_arch.stitchs." + std::to_string(level) + ".weight", stitches_[level],
                     [](const torch::Tensor& t) { return t; }});
    }
  }

  // The last level's experts: the stitch after them mixes every task's into every task's output.
  void shared_layer_entries(ReferenceEntries& out) const override {
    const size_t level = experts_.size() - 1;
    experts_.back()->last_weight_entries([level](int64_t t) { return level_unit_prefix("experts", level, t); }, 0,
                                         tasks_, out);
  }

 private:
  int64_t tasks_;
  int64_t output_dim_ = 0;
  std::vector<GroupedMLP> experts_;
  std::vector<torch::Tensor> stitches_;
};

// Shared-bottom (one MLP read by every tower) and single-task (one independent MLP per task).
class BottomArch : public MultiTaskArch {
 public:
  BottomArch(const ModelConfig& config, bool shared)
      : shared_(shared),
        bottoms_(register_module(
            "bottoms", GroupedMLP(shared ? 1 : config.num_tasks(), config.input_dim(), flatten(config.expert_dims)))) {}

  torch::Tensor forward(const torch::Tensor& input, ArchProbe* probe) override {
    const torch::Tensor out = bottoms_->forward(input);  // [B, N, D]
    if (probe != nullptr) probe->experts.push_back(out.detach());
    return shared_ ? out.squeeze(1) : out;
  }

  int64_t output_dim() const override { return bottoms_->output_dim(); }

  void reference_entries(ReferenceEntries& out) const override {
    const bool shared = shared_;
    bottoms_->reference_entries(
        [shared](int64_t t) {
          return shared ? std::string("mtl_arch.bottom_projection.") : "mtl_arch.task_nets." + std::to_string(t) + ".";
        },
        out);
  }

  // The shared bottom's last layer; single-task networks share nothing.
  void shared_layer_entries(ReferenceEntries& out) const override {
    if (shared_)
      bottoms_->last_weight_entries([](int64_t) { return std::string("mtl_arch.bottom_projection."); }, 0, 1, out);
  }

 private:
  bool shared_;
  GroupedMLP bottoms_;
};

}  // namespace

std::shared_ptr<MultiTaskArch> make_arch(const ModelConfig& config) {
  switch (config.kind) {
    case ModelKind::AdaTTSp: return std::make_shared<AdaTTSpArch>(config);
    case ModelKind::AdaTT: return std::make_shared<AdaTTArch>(config);
    case ModelKind::MMoE: return std::make_shared<MMoEArch>(config);
    case ModelKind::PLE: return std::make_shared<PLEArch>(config);
    case ModelKind::CrossStitch: return std::make_shared<CrossStitchArch>(config);
    case ModelKind::SharedBottom: return std::make_shared<BottomArch>(config, true);
    case ModelKind::SingleTask: return std::make_shared<BottomArch>(config, false);
  }
  throw InvalidArgument("unknown model kind");
}

}  // namespace adatt
