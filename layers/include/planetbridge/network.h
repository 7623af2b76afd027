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
                                // off, every value is plain
  bool reuse_memory = true;     // activation buffers share one arena, reused once their values
                                // are read for the last time (layers/src/arena.h)
  bool winograd = true;         // 3x3 stride-1 convolutions with channels in multiples of 16 run
                                // oneDNN's Winograd kernels where the CPU has them (AVX-512): 2-4x
                                // fewer multiplications, rounded differently (docs/ir.md)

  // Every value kept plain, in its own buffer, and unoptimized: what value() needs to read any
  // intermediate after a run (taps, the ladder, kernel tests).
  static CompileOptions inspectable() { return {false, false, false, false}; }
};

// What one compile-time pass did to a graph (Network::passes, `planetbridge inspect --passes`).
struct PassRecord {
  std::string name;    // e.g. "fold_batchnorm"
  std::string effect;  // e.g. "57 -> 37 nodes: -20 BatchNorm", or "no change"
};

// Activation memory of a compiled network (weights excluded).
struct MemoryStats {
  size_t arena_bytes = 0;      // the shared arena: its high-water mark
  size_t unshared_bytes = 0;   // the same buffers, each in its own allocation
  size_t live_peak_bytes = 0;  // the most bytes live at one step: a lower bound for any plan
  size_t private_bytes = 0;    // buffers outside the arena (graph inputs, reuse off)
  size_t buffers = 0;          // buffers placed in the arena
  bool offline_plan = false;   // placed by a plan made after a first compile (layers/src/arena.h)
};

// Threads for oneDNN's kernels and the network's own loops from now on (both run on the same
// OpenMP runtime); n >= 1. Without a call, OMP_NUM_THREADS decides, else every core.
void set_threads(int n);
int threads();

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
  // nullptr. Compile with CompileOptions::inspectable() to keep every value readable: otherwise
  // a value's bytes may be reused by a later node.
  const Tensor* value(const std::string& name) const;
  // The graph after compile-time passes (fusion), as executed.
  const ir::Graph& executed_graph() const;
  std::string describe() const;  // one line per kernel, for --verbose
  MemoryStats memory_stats() const;
  const std::vector<PassRecord>& passes() const;  // empty when compiled without optimize

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pb
