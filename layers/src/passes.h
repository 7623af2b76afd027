#pragma once
// Compile-time graph rewrites. Each keeps the graph's function; folding weights changes
// rounding only (the compare tolerances hold, and a reload compiles to the same kernels, so
// reloads stay bit-identical).
#include <map>
#include <vector>

#include "planetbridge/network.h"

#include "planetbridge/ir.h"
#include "planetbridge/ops.h"

namespace pb::layers {

// The passes below, in order: remove_unused, cancel_layout_pairs (and remove_unused again),
// fold_batchnorm, fuse_residual_add, fuse_activations. `input_shapes` as Network takes them.
// `log`, when given, gets one record per pass: what it changed in this graph.
ir::Graph optimize(const ir::Graph& graph, const std::map<std::string, Shape>& input_shapes,
                   std::vector<PassRecord>* log = nullptr);

// Drops nodes whose outputs nothing reads (e.g. layout copies a decoder adds only so taps
// line up); the tap-checking compile runs without passes and keeps them.
ir::Graph remove_unused(const ir::Graph& graph);

// A Transpose of a Transpose becomes one Transpose of the first's input (perms composed) and
// goes when that is the identity; a Reshape of a Reshape or Flatten reshapes the first's input;
// a Reshape to its input's own shape goes (its readers read the input). A removed node whose
// output is a graph output stays. The first node of a pair stays while anything else reads it
// (remove_unused drops it otherwise). `types`: every value's type, with concrete shapes.
ir::Graph cancel_layout_pairs(const ir::Graph& graph, const std::map<std::string, ir::TensorType>& types);

// Folds an inference BatchNorm into the Conv (or the Dense with a [N, out] output) that feeds
// it, when that output has no other reader and the producer has no activation: per output
// channel o, s = scale[o] / sqrt(var[o] + eps), w'[o] = w[o]·s, b'[o] = (b[o] − mean[o])·s +
// shift[o] (in double, rounded once). The folded weights are new tensors
// "<weight>@bn:<batchnorm node>"; the stream's stay untouched. `types`: every value's type.
ir::Graph fold_batchnorm(const ir::Graph& graph, const std::map<std::string, ir::TensorType>& types);

// Folds Add(conv, r) into the Conv as its input "add" (a oneDNN sum post-op), when r has the
// Conv output's shape, the Conv's output has no other reader and the Conv has no activation.
// `types`: every value's type (ir::infer_graph).
ir::Graph fuse_residual_add(const ir::Graph& graph, const std::map<std::string, ir::TensorType>& types);

// Folds an Activation into the Dense or Conv that feeds it when that output has no other use
// (and is not a graph output), so oneDNN applies it as a post-op (after the sum of an "add").
ir::Graph fuse_activations(const ir::Graph& graph);

}  // namespace pb::layers
