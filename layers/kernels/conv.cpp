// Conv (1-D, 2-D, 3-D): x [N, C, spatial...], weight [O, C/groups, k...], optional bias [O],
// optional add (y's shape: a residual summed before the activation); attrs strides, dilations,
// pads_begin, pads_end, groups, activation (fused post-op). Weights are reordered once into the
// layout oneDNN prefers. In a network that runs Winograd (CompileContext::winograd), the
// convolutions that fit it run it, and 2-D convolutions hold activations in its layout, nChw16c.
// The sum post-op accumulates into the destination: it is the residual's own memory when nothing
// reads the residual later (the conv's source included) and its layout fits, else a copy of it.
#include "eltwise.h"
#include "kernel.h"

namespace pb::layers {

bool winograd_fits(const ir::Node& conv, const Shape& x, const Shape& w) {
  if (x.size() != 4 || w.size() != 4 || w[2] != 3 || w[3] != 3 || conv.attrs.i("groups") != 1) return false;
  if (x[1] % 16 != 0 || w[0] % 16 != 0) return false;
  // Under 128 positions (batch x height x width) per weight, the layer streams its weights
  // (ResNet's 512 channels at 7x7, batch 1), and Winograd's transformed weights, 1.8-4x larger,
  // make it slower than direct.
  if (x[0] * x[2] * x[3] < 128) return false;
  const ir::Window win = ir::read_window(conv, conv.attrs, {3, 3});
  return win.strides == std::vector<int64_t>{1, 1} && win.dilations == std::vector<int64_t>{1, 1};
}

bool winograd_available(const dnnl::engine& eng) {
  static const bool available = [&] {
    using dnnl::memory;
    const memory::desc x({1, 16, 8, 8}, memory::data_type::f32, memory::format_tag::any);
    const memory::desc w({16, 16, 3, 3}, memory::data_type::f32, memory::format_tag::any);
    try {
      const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_winograd, x, w, x,
                                              {1, 1}, {1, 1}, {1, 1});
      dnnl::convolution_forward::primitive_desc(d, eng);
      return true;
    } catch (const dnnl::error&) {
      return false;
    }
  }();
  return available;
}

std::unique_ptr<Kernel> build_conv(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Shape xs = ctx.shape(node_input(node, 0));
  const Tensor& w = ctx.weight(node_input(node, 1), "weight");
  const Shape& ws = w.shape();
  const Shape& ys = ctx.output_shape();
  const int64_t groups = node.attrs.i("groups"), out_c = ws[0];
  const ir::Window win = ir::read_window(node, node.attrs, {ws.begin() + 2, ws.end()});

  const auto& eng = ctx.engine();
  const size_t rank = xs.size();
  memory::dims wdims(ws.begin(), ws.end());
  memory::format_tag wtag = plain_tag(rank);
  if (groups > 1) {  // oneDNN wants grouped weights as [G, O/G, I/G, k...]: the same bytes
    wdims.insert(wdims.begin(), groups);
    wdims[1] = out_c / groups;
    wtag = plain_tag(rank + 1);
  }
  // Source and destination in whatever layout the fastest implementation wants, or Winograd's.
  memory::format_tag src_tag = ctx.activation_tag(rank), dst_tag = src_tag;
  if (ctx.winograd() && rank == 4 && groups == 1 && ys[1] % 16 == 0) {
    dst_tag = memory::format_tag::nChw16c;
    if (xs[1] % 16 == 0) src_tag = dst_tag;
  }
  const memory::desc src_md(dims_of(xs), memory::data_type::f32, src_tag);
  const memory::desc dst_md(dims_of(ys), memory::data_type::f32, dst_tag);
  memory::desc any_w(wdims, memory::data_type::f32, memory::format_tag::any);
  const bool has_bias = has_input(node, 2);
  memory::desc bias_md({out_c}, memory::data_type::f32, memory::format_tag::a);

  dnnl::primitive_attr attr = ctx.primitive_attr();
  const bool has_add = has_input(node, 3);
  dnnl::post_ops ops;
  if (has_add) ops.append_sum(1.f);
  attr.set_post_ops(eltwise_post_ops(node.attrs.s("activation"), node.attrs, ops));
  const memory::dims strides = dims_of(win.strides), pl = dims_of(win.pads_begin), pr = dims_of(win.pads_end);
  const auto prop = dnnl::prop_kind::forward_inference;
  const auto primitive = [&](dnnl::algorithm alg) {
    auto desc = has_bias ? dnnl::convolution_forward::desc(prop, alg, src_md, any_w, bias_md, dst_md, strides, dnnl_dilations(win), pl, pr)
                         : dnnl::convolution_forward::desc(prop, alg, src_md, any_w, dst_md, strides, dnnl_dilations(win), pl, pr);
    return dnnl::convolution_forward::primitive_desc(desc, attr, eng);
  };
  dnnl::convolution_forward::primitive_desc pd;
  if (ctx.winograd() && winograd_fits(node, xs, ws)) {
    try {
      pd = primitive(dnnl::algorithm::convolution_winograd);
    } catch (const dnnl::error&) {  // a post-op Winograd lacks: direct
    }
  }
  if (!pd) pd = primitive(dnnl::algorithm::convolution_direct);

  auto seq = std::make_unique<SequenceKernel>();
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, in_layout(ctx, ctx.memory(node_input(node, 0)), pd.src_desc(), *seq)},
      {DNNL_ARG_WEIGHTS, packed_weights(eng, memory({wdims, memory::data_type::f32, wtag}, eng, const_cast<void*>(w.raw())), pd.weights_desc())},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  if (!has_add) {
    args[DNNL_ARG_DST] = ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc());
  } else {
    const std::string& residual = node_input(node, 3);
    const memory r = ctx.memory(residual);
    // In place only when the convolution does not also read it (its source cannot be its destination).
    if (!ctx.read_later(residual) && residual != node_input(node, 0) && r.get_desc() == pd.dst_desc()) {
      args[DNNL_ARG_DST] = ctx.define_in_place(node.outputs.at(0), residual);
    } else {
      args[DNNL_ARG_DST] = ctx.define_layout(node.outputs.at(0), ys, pd.dst_desc());
      seq->add(reorder_kernel(r, args[DNNL_ARG_DST]));
    }
  }
  if (has_bias) args[DNNL_ARG_BIAS] = plain_memory(eng, ctx.weight(node_input(node, 2), "bias"));
  seq->add(std::make_unique<PrimitiveKernel>(dnnl::convolution_forward(pd), std::move(args)));
  return seq;
}

}  // namespace pb::layers
