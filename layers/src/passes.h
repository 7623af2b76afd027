#pragma once
// Compile-time graph rewrites. Each keeps the graph's meaning exactly.
#include "planetbridge/ir.h"

namespace pb::layers {

// Drops nodes whose outputs nothing reads (e.g. layout copies a decoder adds only so taps
// line up); the tap-checking compile runs without passes and keeps them.
ir::Graph remove_unused(const ir::Graph& graph);

// Folds an Activation into the Dense or Conv that feeds it when that output has no other use
// (and is not a graph output), so oneDNN applies it as a post-op.
ir::Graph fuse_activations(const ir::Graph& graph);

}  // namespace pb::layers
