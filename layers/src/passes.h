#pragma once
// Compile-time graph rewrites. Each keeps the graph's meaning exactly.
#include "planetbridge/ir.h"

namespace pb::layers {

// Folds an Activation into the Dense or Conv that feeds it when that output has no other use
// (and is not a graph output), so oneDNN applies it as a post-op.
ir::Graph fuse_activations(const ir::Graph& graph);

}  // namespace pb::layers
