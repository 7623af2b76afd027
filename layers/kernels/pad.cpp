// Pad: x surrounded by a constant (attrs.value, default 0). attrs pads_begin / pads_end give
// one count per dimension of x. The border is written once at compile time; each run copies x
// into the interior with a reorder into a strided sub-view of the output.
#include <algorithm>

#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_pad(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Tensor& x = ctx.value(node_input(node, 0));
  const Shape& xs = x.shape();
  if (x.dtype() != DType::f32) throw Error(where, "Pad supports f32");
  const std::vector<int64_t> pb = node.attrs.ints("pads_begin"), pe = node.attrs.ints("pads_end");
  if (pb.size() != xs.size() || pe.size() != xs.size())
    throw Error(where, "pads_begin and pads_end need one count per dimension of " + shape_str(xs));
  Shape ys(xs.size());
  for (size_t d = 0; d < xs.size(); ++d) {
    if (pb[d] < 0 || pe[d] < 0) throw Error(where, "pads must be >= 0");
    ys[d] = xs[d] + pb[d] + pe[d];
  }
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, ys);
  std::fill(y.data<float>(), y.data<float>() + y.numel(), static_cast<float>(node.attrs.f("value", 0.0)));

  const auto& eng = ctx.engine();
  memory dst = plain_memory(eng, y);
  const memory::desc interior = dst.get_desc().submemory_desc({xs.begin(), xs.end()}, {pb.begin(), pb.end()});
  memory src = plain_memory(eng, x);
  memory view(interior, eng, y.raw());
  return std::make_unique<PrimitiveKernel>(dnnl::reorder(src, view), std::map<int, memory>{{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, view}});
}

}  // namespace pb::layers
