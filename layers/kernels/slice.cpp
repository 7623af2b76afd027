// Slice: elements start:end:step along some axes (ONNX semantics, ops.h's slice_range), any
// dtype. A strided copy: each output row of the innermost dim is a run of the input.
#include <cstring>

#include "kernel.h"

namespace pb::layers {

namespace {
class SliceKernel : public Kernel {
 public:
  SliceKernel(const Tensor& x, Tensor& y, std::vector<int64_t> first, std::vector<int64_t> step)
      : x_(x), y_(y), first_(std::move(first)), step_(std::move(step)) {}

  void execute(dnnl::stream&) override {
    const Shape& xs = x_.shape();
    const Shape& ys = y_.shape();
    const size_t rank = xs.size(), es = dtype_size(x_.dtype());
    std::vector<int64_t> stride(rank, 1);  // input strides in elements
    for (size_t d = rank; d-- > 1;) stride[d - 1] = stride[d] * xs[d];
    const char* src = static_cast<const char*>(x_.raw());
    char* dst = static_cast<char*>(y_.raw());
    const int64_t inner = rank ? ys.back() : 1, rows = inner ? y_.numel() / inner : 0;
    const bool contiguous = rank && step_.back() == 1;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      int64_t from = 0;  // the input element of this row's first output element
      for (int64_t d = int64_t(rank) - 2, rest = row; d >= 0; --d) {
        from += (first_[d] + (rest % ys[d]) * step_[d]) * stride[d];
        rest /= ys[d];
      }
      if (rank) from += first_.back();
      char* out = dst + size_t(row * inner) * es;
      if (contiguous) {
        std::memcpy(out, src + size_t(from) * es, size_t(inner) * es);
      } else {
        for (int64_t i = 0; i < inner; ++i) std::memcpy(out + size_t(i) * es, src + size_t(from + i * step_.back()) * es, es);
      }
    }
  }
  std::string implementation() const override { return "cpp:slice"; }

 private:
  const Tensor x_;
  Tensor y_;
  std::vector<int64_t> first_, step_;  // per dim: the first index taken and the stride between
};
}  // namespace

std::unique_ptr<Kernel> build_slice(const ir::Node& node, CompileContext& ctx) {
  const Tensor& x = ctx.value(node_input(node, 0));
  const Shape& xs = x.shape();
  std::vector<int64_t> first(xs.size(), 0), step(xs.size(), 1);
  const std::vector<int64_t>& starts = node.attrs.ints("starts");
  std::vector<int64_t> axes = node.attrs.ints("axes", {}), steps = node.attrs.ints("steps", {});
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t a = ir::normalize_axis(node, axes.empty() ? int64_t(i) : axes[i], xs.size());
    step[a] = steps.empty() ? 1 : steps[i];
    first[a] = ir::slice_range(xs[a], starts[i], node.attrs.ints("ends")[i], step[a]).first;
  }
  return std::make_unique<SliceKernel>(x, ctx.define_output(node), first, step);
}

}  // namespace pb::layers
