#include "eltwise.h"

#include <map>

#include "planetbridge/error.h"

namespace pb::layers {

namespace {
using dnnl::algorithm;

// PyTorch / Keras SELU constants.
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
constexpr float kSeluScale = 1.0507009873554804934193349852946f;

using StepsFn = std::vector<EltwiseStep> (*)(const ir::Attrs&);

const std::map<std::string, StepsFn>& table() {
  static const std::map<std::string, StepsFn> t = {
      {"identity", [](const ir::Attrs&) { return std::vector<EltwiseStep>{}; }},
      {"relu", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_relu}}; }},
      {"leaky_relu",
       [](const ir::Attrs& a) { return std::vector<EltwiseStep>{{algorithm::eltwise_relu, float(a.f("alpha"))}}; }},
      {"elu", [](const ir::Attrs& a) { return std::vector<EltwiseStep>{{algorithm::eltwise_elu, float(a.f("alpha", 1.0))}}; }},
      {"selu",
       [](const ir::Attrs&) {
         return std::vector<EltwiseStep>{{algorithm::eltwise_elu, kSeluAlpha}, {algorithm::eltwise_linear, kSeluScale, 0.f}};
       }},
      {"tanh", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_tanh}}; }},
      {"sigmoid", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_logistic}}; }},
      {"gelu_erf", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_gelu_erf}}; }},
      {"gelu_tanh", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_gelu_tanh}}; }},
      {"silu", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_swish, 1.f}}; }},
      {"softplus", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_soft_relu}}; }},
      {"relu6", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_clip_v2, 0.f, 6.f}}; }},
      {"mish", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_mish}}; }},
      {"hardswish", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_hardswish}}; }},
      {"exp", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_exp}}; }},
      {"abs", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_abs}}; }},
      {"sqrt", [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_sqrt}}; }},
      // The reciprocal of the square root, both correctly rounded, as torch's rsqrt computes it.
      {"rsqrt",
       [](const ir::Attrs&) { return std::vector<EltwiseStep>{{algorithm::eltwise_sqrt}, {algorithm::eltwise_pow, 1.f, -1.f}}; }},
      // alpha * x + beta, with the planet's own constants (e.g. hard_sigmoid is linear + clip).
      {"linear",
       [](const ir::Attrs& a) {
         return std::vector<EltwiseStep>{{algorithm::eltwise_linear, float(a.f("alpha")), float(a.f("beta"))}};
       }},
      {"clip",
       [](const ir::Attrs& a) {
         return std::vector<EltwiseStep>{{algorithm::eltwise_clip_v2, float(a.f("alpha")), float(a.f("beta"))}};
       }},
      {"hard_sigmoid",
       [](const ir::Attrs& a) {
         return std::vector<EltwiseStep>{{algorithm::eltwise_linear, float(a.f("alpha")), float(a.f("beta"))},
                                         {algorithm::eltwise_clip_v2, 0.f, 1.f}};
       }},
  };
  return t;
}
}  // namespace

std::vector<EltwiseStep> eltwise_steps(const std::string& function, const ir::Attrs& attrs) {
  auto it = table().find(function);
  if (it == table().end()) {
    std::string known;
    for (const auto& kv : table()) known += (known.empty() ? "" : ", ") + kv.first;
    throw Error(attrs.owner, "unknown activation \"" + function + "\" (known: " + known + ")");
  }
  return it->second(attrs);
}

dnnl::post_ops eltwise_post_ops(const std::string& function, const ir::Attrs& attrs, dnnl::post_ops ops) {
  for (const EltwiseStep& s : eltwise_steps(function, attrs)) ops.append_eltwise(1.f, s.algorithm, s.alpha, s.beta);
  return ops;
}

}  // namespace pb::layers
