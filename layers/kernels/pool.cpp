// Pool: max or average over windows of x [N, C, spatial...]. attrs: mode ("max" | "avg"),
// kernel, strides, dilations, pads_begin, pads_end, count_include_pad (avg), global (1: the
// window is the whole spatial extent, output [N, C, 1, ...]).
#include "kernel.h"
#include "spatial.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_pool(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Tensor& x = ctx.value(node_input(node, 0));
  const Shape& xs = x.shape();
  if (x.dtype() != DType::f32) throw Error(where, "Pool computes in f32");
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
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, ys);

  const auto& eng = ctx.engine();
  memory::desc src_md({xs.begin(), xs.end()}, memory::data_type::f32, plain_tag(xs.size()));
  memory::desc dst_md({ys.begin(), ys.end()}, memory::data_type::f32, plain_tag(ys.size()));
  dnnl::pooling_v2_forward::desc d(dnnl::prop_kind::forward_inference, alg, src_md, dst_md,
                                   {win.strides.begin(), win.strides.end()}, {win.kernel.begin(), win.kernel.end()},
                                   dnnl_dilations(win), {win.pads_begin.begin(), win.pads_begin.end()},
                                   {win.pads_end.begin(), win.pads_end.end()});
  dnnl::pooling_v2_forward::primitive_desc pd(d, ctx.primitive_attr(), eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, plain_memory(eng, x)},
      {DNNL_ARG_DST, plain_memory(eng, y)},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::pooling_v2_forward(pd), std::move(args));
}

}  // namespace pb::layers
