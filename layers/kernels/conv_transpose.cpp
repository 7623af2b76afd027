// ConvTranspose (1-D, 2-D, 3-D): x [N, C, spatial...], weight [C, O/groups, k...] (PyTorch's and
// ONNX's layout), optional bias [O]; attrs strides, dilations, pads_begin, pads_end,
// output_padding, groups. oneDNN's deconvolution wants the weight as [groups, O/groups,
// C/groups, k...]: described over the stored bytes by strides and reordered once into the layout
// the primitive prefers. output_padding extends the end of each dim: oneDNN takes it as a
// smaller (possibly negative) right padding.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_conv_transpose(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Shape xs = ctx.shape(node_input(node, 0));
  const Tensor& w = ctx.weight(node_input(node, 1), "weight");
  const Shape& ws = w.shape();
  const Shape& ys = ctx.output_shape();
  const size_t rank = xs.size();
  const int64_t groups = node.attrs.i("groups"), cg = ws[0] / groups, og = ws[1];
  const ir::Window win = ir::read_window(node, node.attrs, {ws.begin() + 2, ws.end()});
  const std::vector<int64_t> extra = node.attrs.ints("output_padding", std::vector<int64_t>(rank - 2, 0));

  // The weight's element (g, o, c, k...) sits at ((g·C/groups + c)·O/groups + o)·K + k.
  memory::dims kdims(ws.begin() + 2, ws.end()), kstrides(kdims.size());
  int64_t k = 1;
  for (size_t i = kdims.size(); i-- > 0;) {
    kstrides[i] = k;
    k *= kdims[i];
  }
  memory::dims wdims = {og, cg}, wstrides = {k, og * k};
  if (groups > 1) {
    wdims.insert(wdims.begin(), groups);
    wstrides.insert(wstrides.begin(), cg * og * k);
  }
  wdims.insert(wdims.end(), kdims.begin(), kdims.end());
  wstrides.insert(wstrides.end(), kstrides.begin(), kstrides.end());

  const auto& eng = ctx.engine();
  memory::desc src_md(dims_of(xs), memory::data_type::f32, ctx.activation_tag(rank));
  memory::desc dst_md(dims_of(ys), memory::data_type::f32, ctx.activation_tag(rank));
  memory::desc any_w(wdims, memory::data_type::f32, memory::format_tag::any);
  const bool has_bias = has_input(node, 2);
  memory::desc bias_md({ys[1]}, memory::data_type::f32, memory::format_tag::a);
  memory::dims pr = dims_of(win.pads_end);
  for (size_t i = 0; i < pr.size(); ++i) pr[i] -= extra[i];
  const memory::dims strides = dims_of(win.strides), pl = dims_of(win.pads_begin);
  const auto prop = dnnl::prop_kind::forward_inference;
  const auto alg = dnnl::algorithm::deconvolution_direct;
  auto desc = has_bias ? dnnl::deconvolution_forward::desc(prop, alg, src_md, any_w, bias_md, dst_md, strides, dnnl_dilations(win), pl, pr)
                       : dnnl::deconvolution_forward::desc(prop, alg, src_md, any_w, dst_md, strides, dnnl_dilations(win), pl, pr);
  dnnl::deconvolution_forward::primitive_desc pd(desc, ctx.primitive_attr(), eng);

  auto seq = std::make_unique<SequenceKernel>();
  const memory user_w(memory::desc(wdims, memory::data_type::f32, wstrides), eng, const_cast<void*>(w.raw()));
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, in_layout(ctx, ctx.memory(node_input(node, 0)), pd.src_desc(), *seq)},
      {DNNL_ARG_WEIGHTS, packed_weights(eng, user_w, pd.weights_desc())},
      {DNNL_ARG_DST, ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  if (has_bias) args[DNNL_ARG_BIAS] = plain_memory(eng, ctx.weight(node_input(node, 2), "bias"));
  seq->add(std::make_unique<PrimitiveKernel>(dnnl::deconvolution_forward(pd), std::move(args)));
  return seq;
}

}  // namespace pb::layers
