// Pool: max or average over windows of x [N, C, spatial...]. attrs: mode ("max" | "avg"),
// kernel, strides, dilations, pads_begin, pads_end, count_include_pad (avg), global (1: the
// window is the whole spatial extent, output [N, C, 1, ...]).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_pool(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Shape xs = ctx.shape(node_input(node, 0));
  const bool global = node.attrs.i("global") != 0;
  const ir::Window win = ir::read_window(node, global ? ir::Attrs{} : node.attrs,
                                         global ? std::vector<int64_t>(xs.begin() + 2, xs.end()) : node.attrs.ints("kernel"));
  const dnnl::algorithm alg = node.attrs.s("mode") == "max" ? dnnl::algorithm::pooling_max
                              : node.attrs.i("count_include_pad") ? dnnl::algorithm::pooling_avg_include_padding
                                                                  : dnnl::algorithm::pooling_avg_exclude_padding;
  const Shape& ys = ctx.output_shape();

  // Pool in the input's layout (blocked after a Conv); the output follows.
  const auto& eng = ctx.engine();
  memory src = ctx.memory(node_input(node, 0));
  memory::desc dst_md(dims_of(ys), memory::data_type::f32, ctx.activation_tag(ys.size()));
  dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src.get_desc(), dst_md, dims_of(win.strides),
                                   dims_of(win.kernel), dnnl_dilations(win), dims_of(win.pads_begin), dims_of(win.pads_end));
  dnnl::pooling_v2_forward::primitive_desc pd(d, ctx.primitive_attr(), eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_DST, ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::pooling_v2_forward(pd), std::move(args));
}

}  // namespace pb::layers
