// Conv (1-D, 2-D, 3-D): x [N, C, spatial...], weight [O, C/groups, k...], optional bias [O];
// attrs strides, dilations, pads_begin, pads_end, groups, activation (fused post-op).
// Weights are reordered once into the layout oneDNN prefers.
#include "eltwise.h"
#include "kernel.h"
#include "spatial.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_conv(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Shape xs = ctx.shape(node_input(node, 0));
  const Tensor& w = ctx.weight(node_input(node, 1), "weight");
  const Shape& ws = w.shape();
  if (w.dtype() != DType::f32) throw Error(where, "Conv computes in f32");
  if (xs.size() < 3 || xs.size() > 5) throw Error(where, "input must be [N, C, spatial...] with 1-3 spatial dims, got " + shape_str(xs));
  if (ws.size() != xs.size()) throw Error(where, "weight " + shape_str(ws) + " must have the input's rank " + std::to_string(xs.size()));
  const int64_t groups = node.attrs.i("groups", 1);
  const int64_t out_c = ws[0], in_c = xs[1];
  if (groups < 1 || in_c % groups || out_c % groups || ws[1] != in_c / groups)
    throw Error(where, "weight " + shape_str(ws) + " does not fit " + std::to_string(in_c) + " input channels in " +
                           std::to_string(groups) + " groups (expected [O, C/groups, k...])");

  const Window win = read_window(node, {ws.begin() + 2, ws.end()});
  const std::vector<int64_t> out_sp = window_output(node, {xs.begin() + 2, xs.end()}, win);
  Shape ys = {xs[0], out_c};
  ys.insert(ys.end(), out_sp.begin(), out_sp.end());

  const auto& eng = ctx.engine();
  const size_t rank = xs.size();
  memory::dims wdims(ws.begin(), ws.end());
  memory::format_tag wtag = plain_tag(rank);
  if (groups > 1) {  // oneDNN wants grouped weights as [G, O/G, I/G, k...]: the same bytes
    wdims.insert(wdims.begin(), groups);
    wdims[1] = out_c / groups;
    wtag = plain_tag(rank + 1);
  }
  // Source and destination in whatever layout the fastest implementation wants.
  memory::desc src_md({xs.begin(), xs.end()}, memory::data_type::f32, ctx.activation_tag(rank));
  memory::desc dst_md({ys.begin(), ys.end()}, memory::data_type::f32, ctx.activation_tag(rank));
  memory::desc any_w(wdims, memory::data_type::f32, memory::format_tag::any);
  const bool has_bias = has_input(node, 2);
  if (has_bias) {
    const Tensor& b = ctx.weight(node_input(node, 2), "bias");
    if (b.dtype() != DType::f32 || b.numel() != out_c)
      throw Error(where, "bias must be f32 with " + std::to_string(out_c) + " elements, got " + shape_str(b.shape()));
  }
  memory::desc bias_md({out_c}, memory::data_type::f32, memory::format_tag::a);

  dnnl::primitive_attr attr = ctx.primitive_attr();
  dnnl::post_ops ops;
  for (const EltwiseStep& s : eltwise_steps(node.attrs.s("activation", "identity"), node.attrs))
    ops.append_eltwise(1.f, s.algorithm, s.alpha, s.beta);
  attr.set_post_ops(ops);

  const memory::dims strides(win.strides.begin(), win.strides.end());
  const memory::dims pl(win.pads_begin.begin(), win.pads_begin.end()), pr(win.pads_end.begin(), win.pads_end.end());
  const auto prop = dnnl::prop_kind::forward_inference;
  const auto alg = dnnl::algorithm::convolution_direct;
  auto desc = has_bias ? dnnl::convolution_forward::desc(prop, alg, src_md, any_w, bias_md, dst_md, strides, dnnl_dilations(win), pl, pr)
                       : dnnl::convolution_forward::desc(prop, alg, src_md, any_w, dst_md, strides, dnnl_dilations(win), pl, pr);
  dnnl::convolution_forward::primitive_desc pd(desc, attr, eng);

  memory user_w({wdims, memory::data_type::f32, wtag}, eng, const_cast<void*>(w.raw()));
  memory packed_w(pd.weights_desc(), eng);
  dnnl::stream s(eng);
  dnnl::reorder(user_w, packed_w).execute(s, user_w, packed_w);
  s.wait();

  auto seq = std::make_unique<SequenceKernel>();
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, in_layout(eng, ctx.memory(node_input(node, 0)), pd.src_desc(), *seq)},
      {DNNL_ARG_WEIGHTS, packed_w},
      {DNNL_ARG_DST, ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  if (has_bias) args[DNNL_ARG_BIAS] = plain_memory(eng, ctx.weight(node_input(node, 2), "bias"));
  seq->add(std::make_unique<PrimitiveKernel>(dnnl::convolution_forward(pd), std::move(args)));
  return seq;
}

}  // namespace pb::layers
