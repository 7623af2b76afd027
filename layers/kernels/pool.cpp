// Pool: max or average over windows of x [N, C, spatial...]. attrs: mode ("max" | "avg"),
// kernel, strides, dilations, pads_begin, pads_end, count_include_pad (avg), global (1: the
// window is the whole spatial extent, output [N, C, 1, ...]).
#include "kernel.h"
#include "spatial.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_pool(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Shape xs = ctx.shape(node_input(node, 0));
  if (xs.size() < 3 || xs.size() > 5) throw Error(where, "input must be [N, C, spatial...] with 1-3 spatial dims, got " + shape_str(xs));
  const std::vector<int64_t> in_sp(xs.begin() + 2, xs.end());
  const bool global = node.attrs.i("global", 0) != 0;
  const Window win = read_window(node, global ? in_sp : node.attrs.ints("kernel"));
  if (win.kernel.size() != in_sp.size())
    throw Error(where, "kernel " + shape_str(win.kernel) + " does not match " + std::to_string(in_sp.size()) + " spatial dims");

  const std::string mode = node.attrs.s("mode");
  dnnl::algorithm alg;
  if (mode == "max") alg = dnnl::algorithm::pooling_max;
  else if (mode == "avg")
    alg = node.attrs.i("count_include_pad", 0) ? dnnl::algorithm::pooling_avg_include_padding
                                               : dnnl::algorithm::pooling_avg_exclude_padding;
  else throw Error(where, "unknown pooling mode \"" + mode + "\" (expected \"max\" or \"avg\")");

  const std::vector<int64_t> out_sp = window_output(node, in_sp, win);
  Shape ys = {xs[0], xs[1]};
  ys.insert(ys.end(), out_sp.begin(), out_sp.end());

  // Pool in the input's layout (blocked after a Conv); the output follows.
  const auto& eng = ctx.engine();
  memory src = ctx.memory(node_input(node, 0));
  memory::desc src_md = src.get_desc();
  memory::desc dst_md({ys.begin(), ys.end()}, memory::data_type::f32, ctx.activation_tag(ys.size()));
  dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, dst_md,
                                   {win.strides.begin(), win.strides.end()}, {win.kernel.begin(), win.kernel.end()},
                                   dnnl_dilations(win), {win.pads_begin.begin(), win.pads_begin.end()},
                                   {win.pads_end.begin(), win.pads_end.end()});
  dnnl::pooling_v2_forward::primitive_desc pd(d, ctx.primitive_attr(), eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_DST, ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::pooling_v2_forward(pd), std::move(args));
}

}  // namespace pb::layers
