// Compare: 1 where a (mode) b holds, else 0, as i32 (a bool), either operand broadcast. A C++ loop over
// the output one innermost run at a time.
#include <functional>

#include "kernel.h"

namespace pb::layers {

namespace {

template <typename Cmp>
class CompareKernel : public Kernel {
 public:
  CompareKernel(const Tensor& a, const Tensor& b, Tensor& y)
      : a_(a), b_(b), y_(y), sa_(broadcast_strides(a.shape(), y.shape())), sb_(broadcast_strides(b.shape(), y.shape())) {}

  void execute(dnnl::stream&) override {
    const Shape& ys = y_.shape();
    const int64_t inner = ys.empty() ? 1 : ys.back(), rows = y_.numel() / inner;
    const int64_t ia = ys.empty() ? 0 : sa_.back(), ib = ys.empty() ? 0 : sb_.back();
    const float* a = a_.data<float>();
    const float* b = b_.data<float>();
    int32_t* y = y_.data<int32_t>();
    const Cmp cmp;
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const float* ra = a + row_offset(row, ys, sa_);
      const float* rb = b + row_offset(row, ys, sb_);
      int32_t* out = y + row * inner;
      for (int64_t i = 0; i < inner; ++i) out[i] = cmp(ra[i * ia], rb[i * ib]);
    }
  }
  std::string implementation() const override { return "cpp:compare"; }

 private:
  const Tensor a_, b_;
  Tensor y_;
  std::vector<int64_t> sa_, sb_;
};

template <typename Cmp>
std::unique_ptr<Kernel> make(const Tensor& a, const Tensor& b, Tensor& y) {
  return std::make_unique<CompareKernel<Cmp>>(a, b, y);
}

}  // namespace

std::unique_ptr<Kernel> build_compare(const ir::Node& node, CompileContext& ctx) {
  const Tensor& a = ctx.value(node_input(node, 0));
  const Tensor& b = ctx.value(node_input(node, 1));
  Tensor& y = ctx.define_output(node);
  const std::string mode = node.attrs.s("mode");
  if (mode == "eq") return make<std::equal_to<float>>(a, b, y);
  if (mode == "ne") return make<std::not_equal_to<float>>(a, b, y);
  if (mode == "lt") return make<std::less<float>>(a, b, y);
  if (mode == "le") return make<std::less_equal<float>>(a, b, y);
  if (mode == "gt") return make<std::greater<float>>(a, b, y);
  return make<std::greater_equal<float>>(a, b, y);  // the schema allows no other mode
}

}  // namespace pb::layers
