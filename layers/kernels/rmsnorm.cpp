// RMSNorm: y = x / sqrt(mean(x², last dim) + eps) * scale. oneDNN 2.6 has no primitive, so a
// plain loop (the inner loops vectorise); mean accumulated in double.
#include <cmath>

#include "kernel.h"

namespace pb::layers {

namespace {
class RmsNormKernel : public Kernel {
 public:
  RmsNormKernel(const Tensor& x, const Tensor* scale, Tensor& y, int64_t inner, float eps)
      : x_(x), scale_(scale), y_(y), inner_(inner), eps_(eps) {}

  void execute(dnnl::stream&) override {
    const float* x = x_.data<float>();
    const float* s = scale_ ? scale_->data<float>() : nullptr;
    float* y = y_.data<float>();
    const int64_t rows = x_.numel() / std::max<int64_t>(inner_, 1);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * inner_;
      float* yr = y + r * inner_;
      double ss = 0;
      for (int64_t i = 0; i < inner_; ++i) ss += double(xr[i]) * xr[i];
      const float inv = static_cast<float>(1.0 / std::sqrt(ss / double(inner_) + eps_));
      if (s) {
        for (int64_t i = 0; i < inner_; ++i) yr[i] = xr[i] * inv * s[i];
      } else {
        for (int64_t i = 0; i < inner_; ++i) yr[i] = xr[i] * inv;
      }
    }
  }
  std::string implementation() const override { return "cpp:rmsnorm"; }

 private:
  const Tensor x_;
  const Tensor* scale_;
  Tensor y_;
  int64_t inner_;
  float eps_;
};
}  // namespace

std::unique_ptr<Kernel> build_rmsnorm(const ir::Node& node, CompileContext& ctx) {
  const Tensor& x = ctx.value(node_input(node, 0));
  if (ir::normalize_axis(node, node.attrs.i("axis"), x.shape().size()) + 1 != static_cast<int64_t>(x.shape().size()))
    throw Error(ir::node_where(node), "RMSNorm normalises the last axis only (axis -1)");
  const Tensor* scale = has_input(node, 1) ? &ctx.weight(node_input(node, 1), "scale") : nullptr;
  Tensor& y = ctx.define_output(node);
  return std::make_unique<RmsNormKernel>(x, scale, y, x.shape().back(), static_cast<float>(node.attrs.f("eps")));
}

}  // namespace pb::layers
