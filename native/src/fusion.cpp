#include "adatt/fusion.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace adatt {
namespace {

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
// One copy of each kernel per x86-64 level, chosen when the library loads: builds (and prebuilt
// binaries) target the SSE2 baseline, where these loops would run at a quarter of AVX-512's width.
#define ADATT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ADATT_VECTOR_CLONES
#endif

// A batch of row-major float matrices [B, R, C] with unit stride along C.
struct Rows {
  const float* data;
  int64_t batch_stride;
  int64_t row_stride;
  const float* row(int64_t b, int64_t r) const { return data + b * batch_stride + r * row_stride; }
};

// A batch of small float matrices [B, I, J] with any strides (transposes are free).
struct Coefficients {
  const float* data;
  int64_t batch_stride;
  int64_t i_stride;
  int64_t j_stride;
  float at(int64_t b, int64_t i, int64_t j) const { return data[b * batch_stride + i * i_stride + j * j_stride]; }
};

torch::Tensor with_unit_row_stride(const torch::Tensor& t) { return t.stride(2) == 1 ? t : t.contiguous(); }

Rows rows_of(const torch::Tensor& t) { return {t.data_ptr<float>(), t.stride(0), t.stride(1)}; }

Coefficients coefficients_of(const torch::Tensor& t) {
  return {t.data_ptr<float>(), t.stride(0), t.stride(1), t.stride(2)};
}

// Examples per parallel chunk, so that a chunk holds about ATen's usual grain of work.
int64_t grain_for(int64_t work_per_example) {
  return std::max<int64_t>(1, at::internal::GRAIN_SIZE / std::max<int64_t>(1, work_per_example));
}

constexpr int64_t kLanes = 16;  // floats in one AVX-512 register: partial sums of a dot product, narrow blocks

// target[0, width) = sum_j a[b, i, j] * y[b, j, d0 + ...] for a compile-time width, so that the
// accumulator lives in registers and is stored once.
template <int64_t Width>
inline void mix_block(const Coefficients& a, const Rows& y, int64_t b, int64_t i, int64_t terms, int64_t d0,
                      float* target) {
  float acc[Width] = {};
  for (int64_t j = 0; j < terms; ++j) {
    const float c = a.at(b, i, j);
    const float* source = y.row(b, j) + d0;
    for (int64_t d = 0; d < Width; ++d) acc[d] += c * source[d];
  }
  for (int64_t d = 0; d < Width; ++d) target[d] = acc[d];
}

// out[b, i, :] = sum_j a[b, i, j] * y[b, j, :] for examples [begin, end); out is contiguous [B, I, D].
ADATT_VECTOR_CLONES void mix_examples(int64_t begin, int64_t end, Coefficients a, Rows y, int64_t rows, int64_t terms,
                                      int64_t width, float* out) {
  for (int64_t b = begin; b < end; ++b) {
    for (int64_t i = 0; i < rows; ++i) {
      float* target = out + (b * rows + i) * width;
      int64_t d0 = 0;
      for (; d0 + 4 * kLanes <= width; d0 += 4 * kLanes) mix_block<4 * kLanes>(a, y, b, i, terms, d0, target + d0);
      for (; d0 + kLanes <= width; d0 += kLanes) mix_block<kLanes>(a, y, b, i, terms, d0, target + d0);
      for (; d0 < width; ++d0) mix_block<1>(a, y, b, i, terms, d0, target + d0);
    }
  }
}

// out[b, i, j] = <p[b, i, :], q[b, j, :]> for examples [begin, end); out is contiguous [B, I, J].
ADATT_VECTOR_CLONES void dot_examples(int64_t begin, int64_t end, Rows p, Rows q, int64_t rows_p, int64_t rows_q,
                                      int64_t width, float* out) {
  for (int64_t b = begin; b < end; ++b) {
    for (int64_t i = 0; i < rows_p; ++i) {
      const float* x = p.row(b, i);
      for (int64_t j = 0; j < rows_q; ++j) {
        const float* y = q.row(b, j);
        float lanes[kLanes] = {};
        int64_t d = 0;
        for (; d + kLanes <= width; d += kLanes) {
          for (int64_t l = 0; l < kLanes; ++l) lanes[l] += x[d + l] * y[d + l];
        }
        float sum = 0.0f;
        for (float lane : lanes) sum += lane;
        for (; d < width; ++d) sum += x[d] * y[d];
        out[(b * rows_p + i) * rows_q + j] = sum;
      }
    }
  }
}

// [B, I, J] coefficients times [B, J, D] values -> [B, I, D].
torch::Tensor mix(const torch::Tensor& coefficients, const torch::Tensor& values) {
  const auto y = with_unit_row_stride(values);
  const int64_t batch = y.size(0), rows = coefficients.size(1), terms = y.size(1), width = y.size(2);
  auto out = torch::empty({batch, rows, width}, y.options());
  const Coefficients a = coefficients_of(coefficients);
  const Rows source = rows_of(y);
  float* target = out.data_ptr<float>();
  at::parallel_for(0, batch, grain_for(rows * terms * width), [&](int64_t begin, int64_t end) {
    mix_examples(begin, end, a, source, rows, terms, width, target);
  });
  return out;
}

// [B, I, D] and [B, J, D] -> [B, I, J] of row dot products.
torch::Tensor dots(const torch::Tensor& left, const torch::Tensor& right) {
  const auto p = with_unit_row_stride(left);
  const auto q = with_unit_row_stride(right);
  const int64_t batch = p.size(0), rows_p = p.size(1), rows_q = q.size(1), width = p.size(2);
  auto out = torch::empty({batch, rows_p, rows_q}, p.options());
  const Rows x = rows_of(p), y = rows_of(q);
  float* target = out.data_ptr<float>();
  at::parallel_for(0, batch, grain_for(rows_p * rows_q * width),
                   [&](int64_t begin, int64_t end) { dot_examples(begin, end, x, y, rows_p, rows_q, width, target); });
  return out;
}

class FuseExperts : public torch::autograd::Function<FuseExperts> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& gates,
                               const torch::Tensor& experts) {
    ctx->save_for_backward({gates, experts});
    return mix(gates, experts);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& gates = saved[0];
    const auto& experts = saved[1];
    const auto& grad = grads[0];
    // d gates[b] = grad[b] experts[b]^T;  d experts[b] = gates[b]^T grad[b].
    return {ctx->needs_input_grad(0) ? dots(grad, experts) : torch::Tensor(),
            ctx->needs_input_grad(1) ? mix(gates.transpose(1, 2), grad) : torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fuse_experts(const torch::Tensor& gates, const torch::Tensor& experts) {
  const bool cpu_float = gates.device().is_cpu() && experts.device().is_cpu() && gates.scalar_type() == torch::kFloat &&
                         experts.scalar_type() == torch::kFloat;
  if (!cpu_float) return torch::bmm(gates, experts);
  if (torch::GradMode::is_enabled() && (gates.requires_grad() || experts.requires_grad())) {
    return FuseExperts::apply(gates, experts);
  }
  return mix(gates, experts);
}

}  // namespace adatt
