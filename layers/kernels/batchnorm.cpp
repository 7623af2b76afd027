// BatchNorm (inference): x [N, C, ...] normalised per channel with the running statistics.
// inputs: x, scale (gamma) [C], shift (beta) [C], mean [C], variance [C]; attrs eps.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_batchnorm(const ir::Node& node, CompileContext& ctx) {
  using dnnl::memory;
  const std::string where = node_where(node);
  const Tensor& x = ctx.value(node_input(node, 0));
  if (x.dtype() != DType::f32 || x.shape().size() < 2) throw Error(where, "BatchNorm needs an f32 input [N, C, ...]");
  const int64_t c = x.shape()[1];
  const char* roles[] = {"scale", "shift", "mean", "variance"};
  const Tensor* params[4];
  for (int i = 0; i < 4; ++i) {
    params[i] = &ctx.weight(node_input(node, 1 + i), roles[i]);
    if (params[i]->dtype() != DType::f32 || params[i]->numel() != c)
      throw Error(where, std::string(roles[i]) + " must be f32 with " + std::to_string(c) + " elements, got " +
                             shape_str(params[i]->shape()));
  }
  Tensor& y = ctx.define(node.outputs.at(0), DType::f32, x.shape());

  const auto& eng = ctx.engine();
  memory::dims dims(x.shape().begin(), x.shape().end());
  if (dims.size() == 2) dims.push_back(1);  // [N, C] as [N, C, 1]: oneDNN wants a spatial dim
  memory::desc md(dims, memory::data_type::f32, plain_tag(dims.size()));
  const auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                     dnnl::normalization_flags::use_shift;
  const float eps = static_cast<float>(node.attrs.f("eps"));
  dnnl::batch_normalization_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, eps, flags},
                                                       ctx.primitive_attr(), eng);
  std::map<int, memory> args = {
      {DNNL_ARG_SRC, plain_memory(eng, x, dims)},
      {DNNL_ARG_DST, plain_memory(eng, y, dims)},
      {DNNL_ARG_SCALE, plain_memory(eng, *params[0], {c})},
      {DNNL_ARG_SHIFT, plain_memory(eng, *params[1], {c})},
      {DNNL_ARG_MEAN, plain_memory(eng, *params[2], {c})},
      {DNNL_ARG_VARIANCE, plain_memory(eng, *params[3], {c})},
      {DNNL_ARG_SCRATCHPAD, ctx.scratchpad(pd.scratchpad_desc())},
  };
  return std::make_unique<PrimitiveKernel>(dnnl::batch_normalization_forward(pd), std::move(args));
}

}  // namespace pb::layers
