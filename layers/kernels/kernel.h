#pragma once
// What one op's kernel file provides: a builder that creates the op's primitives and allocates
// its outputs through the CompileContext. The node arrives checked against its op schema
// (core/include/planetbridge/ops.h): attributes typed with defaults filled in, input shapes
// fitting, output types inferred; a builder checks only what its implementation cannot do.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "planetbridge/error.h"
#include "planetbridge/ir.h"
#include "planetbridge/ops.h"
#include "planetbridge/tensor.h"

namespace pb::layers {

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void execute(dnnl::stream& stream) = 0;
  // Which implementation runs (e.g. "brg:avx2"), for `--verbose` and benchmarks.
  virtual std::string implementation() const = 0;
};

// A oneDNN primitive with its arguments bound at compile time. Executes through the C API
// with a prepared argument array, so the run loop allocates nothing.
class PrimitiveKernel : public Kernel {
 public:
  PrimitiveKernel(dnnl::primitive p, std::map<int, dnnl::memory> args);
  void execute(dnnl::stream& stream) override;
  std::string implementation() const override;

 private:
  dnnl::primitive primitive_;
  std::map<int, dnnl::memory> args_;  // keeps the memories alive
  std::vector<dnnl_exec_arg_t> c_args_;
};

// Several kernels run in order (e.g. an activation made of two eltwise steps).
class SequenceKernel : public Kernel {
 public:
  void add(std::unique_ptr<Kernel> k) { parts_.push_back(std::move(k)); }
  void execute(dnnl::stream& stream) override {
    for (auto& k : parts_) k->execute(stream);
  }
  std::string implementation() const override {
    std::string s;
    for (const auto& k : parts_) s += (s.empty() ? "" : " + ") + k->implementation();
    return s;
  }
  bool empty() const { return parts_.empty(); }

 private:
  std::vector<std::unique_ptr<Kernel>> parts_;
};

// Values live in plain row-major tensors, except activations between ops that accept the
// blocked layouts oneDNN prefers (Conv, Pool, BatchNorm, Activation, Add...): those stay in
// the producer's layout, and a consumer that needs plain data gets a reorder on demand.
class CompileContext {
 public:
  virtual ~CompileContext() = default;
  virtual const dnnl::engine& engine() const = 0;
  // A value computed earlier (graph input, node output or weight) as a plain tensor. A value held
  // in a blocked layout is reordered into a plain copy (once) before the current node runs.
  virtual const Tensor& value(const std::string& name) = 0;
  virtual const Shape& shape(const std::string& name) = 0;  // logical shape, whatever the layout
  // The value's memory as stored: its blocked layout if it has one, else a plain view.
  virtual dnnl::memory memory(const std::string& name) = 0;
  // Defines an output held in `desc`'s layout (plain if the desc is plain) and returns it.
  virtual dnnl::memory define_layout(const std::string& name, const Shape& shape, const dnnl::memory::desc& desc) = 0;
  // format_tag::any when activations may stay blocked between ops, else the plain tag.
  virtual dnnl::memory::format_tag activation_tag(size_t rank) const = 0;
  // Whether this network's Winograd-shaped convolutions run Winograd (CompileOptions::winograd,
  // the CPU has it, and one fits): its 2-D convolutions then share Winograd's 16-channel-blocked
  // layout, so no reorders run between them.
  virtual bool winograd() const = 0;
  virtual bool is_weight(const std::string& name) const = 0;
  // A constant from graph.weights; `role` ("weight", "bias") is used in error messages.
  virtual const Tensor& weight(const std::string& name, const std::string& role) const = 0;
  // The current node's output types, inferred from its op schema.
  virtual const ir::TensorType& output_type(size_t i = 0) const = 0;
  const Shape& output_shape(size_t i = 0) const { return output_type(i).shape; }
  // Allocates a node output.
  virtual Tensor& define(const std::string& name, DType dtype, const Shape& shape) = 0;
  // Allocates the current node's output i, plain, with its inferred type.
  Tensor& define_output(const ir::Node& node, size_t i = 0) {
    return define(node.outputs.at(i), output_type(i).dtype, output_type(i).shape);
  }
  // Declares a node output that shares the bytes of `source` with another shape (no copy).
  virtual void alias(const std::string& name, const std::string& source, const Shape& shape) = 0;
  // Whether a node after the current one (or the graph's outputs) reads `name`.
  virtual bool read_later(const std::string& name) const = 0;
  // Declares a node output held in `source`'s memory, layout and shape (the node overwrites
  // it in place: only when nothing reads `source` later).
  virtual dnnl::memory define_in_place(const std::string& name, const std::string& source) = 0;
  // Attributes every primitive gets: strict f32 math, user-managed scratchpad.
  virtual dnnl::primitive_attr primitive_attr() const = 0;
  // Registers a primitive's scratchpad need; returns the shared scratchpad memory.
  virtual dnnl::memory scratchpad(const dnnl::memory::desc& desc) = 0;
  // A buffer in `desc`'s layout that only the current node's kernels use, while they run.
  virtual dnnl::memory temporary(const dnnl::memory::desc& desc) = 0;
};

// A reorder between two memories, as a kernel.
std::unique_ptr<Kernel> reorder_kernel(const dnnl::memory& from, const dnnl::memory& to);
// `user` (a weight as stored) reordered once, at compile time, into `desc` (the layout the
// primitive prefers).
dnnl::memory packed_weights(const dnnl::engine& eng, const dnnl::memory& user, const dnnl::memory::desc& desc);
// `mem` in layout `desc`: itself when it already is, else a temporary filled by a reorder
// appended to `seq`.
dnnl::memory in_layout(CompileContext& ctx, const dnnl::memory& mem, const dnnl::memory::desc& desc, SequenceKernel& seq);

// A plain row-major dnnl::memory over a tensor's bytes (f32 / i32 only; the shape may be
// viewed with other dims of the same element count).
dnnl::memory plain_memory(const dnnl::engine& eng, const Tensor& t);
dnnl::memory plain_memory(const dnnl::engine& eng, const Tensor& t, const dnnl::memory::dims& dims);
dnnl::memory::format_tag plain_tag(size_t rank);
dnnl::memory::dims dims_of(const std::vector<int64_t>& v);
// `s` with leading 1s up to `rank` dims: how broadcasting operands line up (numpy's rule).
dnnl::memory::dims padded_dims(const Shape& s, size_t rank);
// Element strides of `s` read at the positions of `out` (numpy broadcasting, `s` aligned to the
// end): 0 along the dims `s` broadcasts. For the C++ loops over a broadcast output (Compare,
// Where, Expand), which walk `out` one innermost run ("row") at a time.
std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out);
// The element offset, under `strides`, of the first element of row `row` of `out`.
int64_t row_offset(int64_t row, const Shape& out, const std::vector<int64_t>& strides);
// oneDNN counts dilation from 0 (no dilation), the IR from 1.
dnnl::memory::dims dnnl_dilations(const ir::Window& w);

// Whether a Conv fits oneDNN's Winograd kernels and gains from them: 2-D, 3x3, stride 1, no
// dilation, one group, input and output channels in multiples of 16, at least 128 positions
// (batch x height x width) per weight (x: its input's shape, w: its weight's).
bool winograd_fits(const ir::Node& conv, const Shape& x, const Shape& w);
// Whether this CPU has them (oneDNN 2.6: AVX-512 only); probed once per process.
bool winograd_available(const dnnl::engine& eng);

// Input i; "" or a missing index is an error unless optional.
const std::string& node_input(const ir::Node& node, size_t i);
bool has_input(const ir::Node& node, size_t i);

using KernelBuilder = std::function<std::unique_ptr<Kernel>(const ir::Node&, CompileContext&)>;

// The op table: IR op name -> builder. One entry per kernel file.
const std::map<std::string, KernelBuilder>& kernel_table();

// The builder networks compiled from now on use for `op`: an override's, else the table's;
// nullptr for an op without a kernel.
KernelBuilder kernel_builder(const std::string& op);

// Replaces `op`'s kernel in this process while it lives (networks compiled meanwhile use it),
// restoring the previous one after: an out-of-tree kernel, or a deliberately broken one that the
// nightly test plugs in to check regressions are reported exactly (tests/test_nightly.cpp).
class KernelOverride {
 public:
  KernelOverride(std::string op, KernelBuilder builder);
  ~KernelOverride();
  KernelOverride(const KernelOverride&) = delete;
  KernelOverride& operator=(const KernelOverride&) = delete;

 private:
  std::string op_;
  KernelBuilder previous_;  // empty: the table's
};

}  // namespace pb::layers
