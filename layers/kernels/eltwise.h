#pragma once
// Activation functions by canonical IR name (docs/ir.md), expressed as oneDNN eltwise steps.
// Shared by the Activation kernel and by Dense/Conv, which fuse them as post-ops.
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "planetbridge/ir.h"

namespace pb::layers {

struct EltwiseStep {
  dnnl::algorithm algorithm;
  float alpha = 0.f;
  float beta = 0.f;
};

// Reads the function name from attrs[key] and its parameters ("alpha", "beta").
// Throws for an unknown name: nothing is ever silently linear.
std::vector<EltwiseStep> eltwise_steps(const std::string& function, const ir::Attrs& attrs);

// The activation as post-ops of another primitive (Dense and Conv fuse it), appended to `ops`.
dnnl::post_ops eltwise_post_ops(const std::string& function, const ir::Attrs& attrs, dnnl::post_ops ops = {});

}  // namespace pb::layers
