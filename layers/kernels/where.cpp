// Where: cond ? a : b element-wise, the three broadcast; cond is true where non-zero (f32 masks
// from Compare, i32 / i64 ones from a stream). oneDNN 2.6 has no select: a C++ loop over the
// output one innermost run at a time.
#include "kernel.h"

namespace pb::layers {

namespace {

template <typename C>
class WhereKernel : public Kernel {
 public:
  WhereKernel(const Tensor& cond, const Tensor& a, const Tensor& b, Tensor& y)
      : cond_(cond), a_(a), b_(b), y_(y), sc_(broadcast_strides(cond.shape(), y.shape())),
        sa_(broadcast_strides(a.shape(), y.shape())), sb_(broadcast_strides(b.shape(), y.shape())) {}

  void execute(dnnl::stream&) override {
    const Shape& ys = y_.shape();
    const int64_t inner = ys.empty() ? 1 : ys.back(), rows = y_.numel() / inner;
    const int64_t ic = ys.empty() ? 0 : sc_.back(), ia = ys.empty() ? 0 : sa_.back(), ib = ys.empty() ? 0 : sb_.back();
    const C* cond = cond_.data<C>();
    const float* a = a_.data<float>();
    const float* b = b_.data<float>();
    float* y = y_.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t row = 0; row < rows; ++row) {
      const C* rc = cond + row_offset(row, ys, sc_);
      const float* ra = a + row_offset(row, ys, sa_);
      const float* rb = b + row_offset(row, ys, sb_);
      float* out = y + row * inner;
      for (int64_t i = 0; i < inner; ++i) out[i] = rc[i * ic] != C(0) ? ra[i * ia] : rb[i * ib];
    }
  }
  std::string implementation() const override { return "cpp:where"; }

 private:
  const Tensor cond_, a_, b_;
  Tensor y_;
  std::vector<int64_t> sc_, sa_, sb_;
};

}  // namespace

std::unique_ptr<Kernel> build_where(const ir::Node& node, CompileContext& ctx) {
  const Tensor& cond = ctx.value(node_input(node, 0));
  const Tensor& a = ctx.value(node_input(node, 1));
  const Tensor& b = ctx.value(node_input(node, 2));
  Tensor& y = ctx.define_output(node);
  switch (cond.dtype()) {
    case DType::i32: return std::make_unique<WhereKernel<int32_t>>(cond, a, b, y);
    case DType::i64: return std::make_unique<WhereKernel<int64_t>>(cond, a, b, y);
    default: return std::make_unique<WhereKernel<float>>(cond, a, b, y);  // the schema allows f32, i32, i64
  }
}

}  // namespace pb::layers
