// Reduce: mean, sum, max or min of x over attrs.axes (none: all), keepdims or not. The output
// holds the same elements whether the reduced dims are kept or dropped, so the primitive always
// writes the kept-dims shape.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_reduce(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  const Shape& xs = x.shape();
  std::vector<bool> reduced(xs.size(), node.attrs.ints("axes").empty());
  for (int64_t axis : node.attrs.ints("axes")) reduced[size_t(ir::normalize_axis(node, axis, xs.size()))] = true;
  memory::dims kept = dims_of(xs);
  for (size_t i = 0; i < xs.size(); ++i)
    if (reduced[i]) kept[i] = 1;
  Tensor& y = ctx.define_output(node);

  const std::string mode = node.attrs.s("mode");
  const dnnl::algorithm alg = mode == "mean"  ? dnnl::algorithm::reduction_mean
                              : mode == "sum" ? dnnl::algorithm::reduction_sum
                              : mode == "max" ? dnnl::algorithm::reduction_max
                                              : dnnl::algorithm::reduction_min;
  const auto& eng = ctx.engine();
  const memory src = plain_memory(eng, x), dst = plain_memory(eng, y, kept);
  dnnl::reduction::primitive_desc pd({alg, src.get_desc(), dst.get_desc(), 0.f, 0.f}, ctx.primitive_attr(), eng);
  std::map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())}};
  return std::make_unique<PrimitiveKernel>(dnnl::reduction(pd), std::move(args));
}

}  // namespace pb::layers
