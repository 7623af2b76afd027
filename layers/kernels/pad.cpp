// Pad: x surrounded by a constant (attrs.value, default 0). attrs pads_begin / pads_end give
// one count per dimension of x. The border is written once at compile time; each run copies x
// into the interior with a reorder into a strided sub-view of the output.
#include <algorithm>

#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_pad(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  Tensor& y = ctx.define_output(node);
  std::fill(y.data<float>(), y.data<float>() + y.numel(), static_cast<float>(node.attrs.f("value")));

  const auto& eng = ctx.engine();
  memory dst = plain_memory(eng, y);
  const memory::desc interior = dst.get_desc().submemory_desc(dims_of(x.shape()), dims_of(node.attrs.ints("pads_begin")));
  memory src = plain_memory(eng, x);
  memory view(interior, eng, y.raw());
  return std::make_unique<PrimitiveKernel>(dnnl::reorder(src, view), std::map<int, memory>{{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, view}});
}

}  // namespace pb::layers
