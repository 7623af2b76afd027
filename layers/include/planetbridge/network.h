#pragma once
// A compiled IR graph: oneDNN primitives created, weights reordered and every value buffer
// allocated once at construction. run() only copies inputs in and executes.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "planetbridge/ir.h"
#include "planetbridge/tensor.h"

namespace pb {

struct CompileOptions {
  bool optimize = true;         // graph passes (layers/src/passes.h): drop nodes nothing uses, fold
                                // BatchNorm into Conv, fuse a residual Add and an Activation into
                                // the Conv/Dense before them (post-ops)
  bool blocked_layouts = true;  // keep activations in oneDNN's preferred layouts between ops;
                                // off, every value is plain and readable with value()
};

// The ops this build has kernels for (layers/kernels/registry.cpp), sorted.
std::vector<std::string> kernel_ops();

class Network {
 public:
  // input_shapes: concrete shapes for graph inputs whose shape has -1 dimensions.
  Network(const ir::Graph& graph, const std::map<std::string, Shape>& input_shapes, CompileOptions options = {});
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  // Inputs in graph.inputs order. Floating inputs of another float dtype (and integer inputs
  // of another integer dtype) are converted into the pre-allocated input buffer.
  void run(const std::vector<const Tensor*>& inputs);

  size_t output_count() const;
  const Tensor& output(size_t i) const;  // a view of the network's buffer, valid until next run()
  // Any value computed by the last run (graph inputs, node outputs) that is held plain, or
  // nullptr (compile with blocked_layouts off to keep every value readable).
  const Tensor* value(const std::string& name) const;
  // The graph after compile-time passes (fusion), as executed.
  const ir::Graph& executed_graph() const;
  std::string describe() const;  // one line per kernel, for --verbose

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pb
