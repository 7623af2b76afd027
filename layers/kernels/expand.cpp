// Expand: x repeated along its dims of 1 and new leading dims, any dtype. A C++ copy, one
// output row (innermost run) at a time: a run of x, or one element of x repeated.
#include <cstring>

#include "kernel.h"

namespace pb::layers {

namespace {

class ExpandKernel : public Kernel {
 public:
  ExpandKernel(const Tensor& x, Tensor& y) : x_(x), y_(y), strides_(broadcast_strides(x.shape(), y.shape())) {}

  void execute(dnnl::stream&) override {
    const Shape& ys = y_.shape();
    const size_t es = dtype_size(x_.dtype());
    const int64_t inner = ys.empty() ? 1 : ys.back(), rows = y_.numel() / inner;
    const bool run = !ys.empty() && strides_.back() == 1;  // else x's innermost dim is 1, repeated
    const char* src = static_cast<const char*>(x_.raw());
    char* dst = static_cast<char*>(y_.raw());
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const char* from = src + size_t(row_offset(row, ys, strides_)) * es;
      char* out = dst + size_t(row * inner) * es;
      if (run) {
        std::memcpy(out, from, size_t(inner) * es);
      } else {
        for (int64_t i = 0; i < inner; ++i) std::memcpy(out + size_t(i) * es, from, es);
      }
    }
  }
  std::string implementation() const override { return "cpp:expand"; }

 private:
  const Tensor x_;
  Tensor y_;
  std::vector<int64_t> strides_;
};

}  // namespace

std::unique_ptr<Kernel> build_expand(const ir::Node& node, CompileContext& ctx) {
  return std::make_unique<ExpandKernel>(ctx.value(node_input(node, 0)), ctx.define_output(node));
}

}  // namespace pb::layers
