// LayerNorm: normalise over the trailing dims from attrs.axis (negative counts from the end)
// with attrs.eps; optional scale and shift (weights) over those dims.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_layernorm(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Tensor& x = ctx.value(node_input(node, 0));
  const Shape& xs = x.shape();
  const int64_t rank = static_cast<int64_t>(xs.size());
  int64_t axis = node.attrs.i("axis", -1);
  if (axis < -rank || axis >= rank) throw Error(where, "axis " + std::to_string(axis) + " is out of range for " + shape_str(xs));
  if (axis < 0) axis += rank;
  if (x.dtype() != DType::f32) throw Error(where, "LayerNorm computes in f32");
  int64_t inner = 1;
  for (int64_t d = axis; d < rank; ++d) inner *= xs[d];
  const int64_t outer = x.numel() / std::max<int64_t>(inner, 1);
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, xs);

  const auto& eng = ctx.engine();
  const memory::dims dims = {outer, inner};
  memory::desc md(dims, memory::data_type::f32, memory::format_tag::ab);
  auto flags = dnnl::normalization_flags::none;
  std::map<int, memory> args = {{DNNL_ARG_SRC, plain_memory(eng, x, dims)}, {DNNL_ARG_DST, plain_memory(eng, y, dims)}};
  const std::pair<int, dnnl::normalization_flags> slots[] = {{DNNL_ARG_SCALE, dnnl::normalization_flags::use_scale},
                                                             {DNNL_ARG_SHIFT, dnnl::normalization_flags::use_shift}};
  for (size_t i = 0; i < 2; ++i) {
    if (!has_input(node, 1 + i)) continue;
    const Tensor& p = ctx.weight(node_input(node, 1 + i), i == 0 ? "scale" : "shift");
    if (p.dtype() != DType::f32 || p.numel() != inner)
      throw Error(where, std::string(i == 0 ? "scale" : "shift") + " must be f32 with " + std::to_string(inner) +
                             " elements, got " + shape_str(p.shape()));
    flags = flags | slots[i].second;
    args[slots[i].first] = plain_memory(eng, p, {inner});
  }
  dnnl::layer_normalization_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_inference, md, static_cast<float>(node.attrs.f("eps")), flags}, ctx.primitive_attr(), eng);
  args[DNNL_ARG_SCRATCHPAD] = ctx.scratchpad(pd.scratchpad_desc());
  return std::make_unique<PrimitiveKernel>(dnnl::layer_normalization_forward(pd), std::move(args));
}

}  // namespace pb::layers
