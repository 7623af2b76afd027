// BatchNorm (inference): x [N, C, ...] normalised per channel with the running statistics.
// inputs: x, scale (gamma) [C], shift (beta) [C], mean [C], variance [C]; attrs eps.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_batchnorm(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Shape xs = ctx.shape(node_input(node, 0));
  if (xs.size() < 2) throw Error(where, "BatchNorm needs an input [N, C, ...], got " + shape_str(xs));
  const int64_t c = xs[1];
  const char* roles[] = {"scale", "shift", "mean", "variance"};
  const Tensor* params[4];
  for (int i = 0; i < 4; ++i) {
    params[i] = &ctx.weight(node_input(node, 1 + i), roles[i]);
    if (params[i]->dtype() != DType::f32 || params[i]->numel() != c)
      throw Error(where, std::string(roles[i]) + " must be f32 with " + std::to_string(c) + " elements, got " +
                             shape_str(params[i]->shape()));
  }
  const auto& eng = ctx.engine();
  // Normalise in the input's layout (blocked after a Conv). [N, C] is seen as [N, C, 1]:
  // oneDNN wants a spatial dim.
  memory src, dst;
  if (xs.size() == 2) {
    const memory::dims dims = {xs[0], xs[1], 1};
    src = plain_memory(eng, ctx.value(node_input(node, 0)), dims);
    dst = plain_memory(eng, ctx.define(node.outputs.at(0), DType::f32, xs), dims);
  } else {
    src = ctx.memory(node_input(node, 0));
    dst = ctx.define_layout(node.outputs.at(0), xs, src.get_desc());
  }
  const memory::desc md = src.get_desc();
  const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                     dnnl::normalization_flags::use_shift;
  const float eps = static_cast<float>(node.attrs.f("eps"));
  dnnl::batch_normalization_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, eps, flags},
                                                       ctx.primitive_attr(), eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, src},
      {DNNL_ARG_DST, dst},
      {DNNL_ARG_SCALE, plain_memory(eng, *params[0], {c})},
      {DNNL_ARG_SHIFT, plain_memory(eng, *params[1], {c})},
      {DNNL_ARG_MEAN, plain_memory(eng, *params[2], {c})},
      {DNNL_ARG_VARIANCE, plain_memory(eng, *params[3], {c})},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::batch_normalization_forward(pd), std::move(args));
}

}  // namespace pb::layers
