// LayerNorm: normalise over the trailing dims from attrs.axis (negative counts from the end)
// with attrs.eps; optional scale and shift (weights) over those dims.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_layernorm(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const Tensor& x = ctx.value(node_input(node, 0));
  const int64_t axis = ir::normalize_axis(node, node.attrs.i("axis"), x.shape().size());
  int64_t inner = 1;
  for (size_t d = size_t(axis); d < x.shape().size(); ++d) inner *= x.shape()[d];
  const memory::dims dims = {x.numel() / std::max<int64_t>(inner, 1), inner};
  Tensor& y = ctx.define_output(node);

  const auto& eng = ctx.engine();
  auto flags = dnnl::normalization_flags::none;
  std::map<int, memory> args = {{DNNL_ARG_SRC, plain_memory(eng, x, dims)}, {DNNL_ARG_DST, plain_memory(eng, y, dims)}};
  if (has_input(node, 1)) {
    flags = flags | dnnl::normalization_flags::use_scale;
    args[DNNL_ARG_SCALE] = plain_memory(eng, ctx.weight(node_input(node, 1), "scale"), {inner});
  }
  if (has_input(node, 2)) {
    flags = flags | dnnl::normalization_flags::use_shift;
    args[DNNL_ARG_SHIFT] = plain_memory(eng, ctx.weight(node_input(node, 2), "shift"), {inner});
  }
  const memory::desc md(dims, memory::data_type::f32, memory::format_tag::ab);
  dnnl::layer_normalization_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, static_cast<float>(node.attrs.f("eps")), flags},
                                                       ctx.primitive_attr(), eng);
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
  return std::make_unique<PrimitiveKernel>(dnnl::layer_normalization_forward(pd), std::move(args));
}

}  // namespace pb::layers
