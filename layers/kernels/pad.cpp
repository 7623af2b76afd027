// Pad: x surrounded by a constant (attrs.value, default 0). attrs pads_begin / pads_end give
// one count per dimension of x. Each run fills the output with the constant (its bytes may hold
// another value between runs: activation memory is reused) and copies x into the interior with
// a reorder into a strided sub-view of the output.
#include <algorithm>

#include "kernel.h"

namespace pb::layers {

namespace {
class PadKernel : public Kernel {
 public:
  PadKernel(Tensor y, float value, std::unique_ptr<Kernel> interior) : y_(std::move(y)), value_(value), interior_(std::move(interior)) {}
  void execute(dnnl::stream& stream) override {
    std::fill(y_.data<float>(), y_.data<float>() + y_.numel(), value_);
    interior_->execute(stream);
  }
  std::string implementation() const override { return "cpp:fill + " + interior_->implementation(); }

 private:
  Tensor y_;
  float value_;
  std::unique_ptr<Kernel> interior_;
};
}  // namespace

std::unique_ptr<Kernel> build_pad(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  Tensor& y = ctx.define_output(node);
  const auto& eng = ctx.engine();
  memory dst = plain_memory(eng, y);
  const memory::desc interior = dst.get_desc().submemory_desc(dims_of(x.shape()), dims_of(node.attrs.ints("pads_begin")));
  memory src = plain_memory(eng, x);
  memory view(interior, eng, y.raw());
  auto copy = std::make_unique<PrimitiveKernel>(dnnl::reorder(src, view), std::map<int, memory>{{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, view}});
  return std::make_unique<PadKernel>(y, static_cast<float>(node.attrs.f("value")), std::move(copy));
}

}  // namespace pb::layers
