#include "planetbridge/network.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "../kernels/kernel.h"
#include "arena.h"
#include "passes.h"

namespace pb {

namespace layers {

PrimitiveKernel::PrimitiveKernel(dnnl::primitive p, std::map<int, dnnl::memory> args)
    : primitive_(std::move(p)), args_(std::move(args)) {
  for (const auto& [arg, mem] : args_) c_args_.push_back({arg, mem.get()});
}

void PrimitiveKernel::execute(dnnl::stream& stream) {
  dnnl::error::wrap_c_api(
      dnnl_primitive_execute(primitive_.get(), stream.get(), static_cast<int>(c_args_.size()), c_args_.data()),
      "could not execute a primitive");
}

std::unique_ptr<Kernel> reorder_kernel(const dnnl::memory& from, const dnnl::memory& to) {
  return std::make_unique<PrimitiveKernel>(dnnl::reorder(from, to), std::map<int, dnnl::memory>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
}

dnnl::memory packed_weights(const dnnl::engine& eng, const dnnl::memory& user, const dnnl::memory::desc& desc) {
  dnnl::memory packed(desc, eng);
  dnnl::stream s(eng);
  dnnl::reorder(user, packed).execute(s, const_cast<dnnl::memory&>(user), packed);
  s.wait();
  return packed;
}

dnnl::memory in_layout(CompileContext& ctx, const dnnl::memory& mem, const dnnl::memory::desc& desc, SequenceKernel& seq) {
  if (mem.get_desc() == desc) return mem;
  dnnl::memory converted = ctx.temporary(desc);
  seq.add(reorder_kernel(mem, converted));
  return converted;
}

std::string PrimitiveKernel::implementation() const {
  const char* info = nullptr;
  dnnl_primitive_desc_query(primitive_.get_primitive_desc(), dnnl_query_impl_info_str, 0, &info);
  return info ? info : "?";
}

dnnl::memory::dims dims_of(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

dnnl::memory::dims padded_dims(const Shape& s, size_t rank) {
  dnnl::memory::dims d(rank - s.size(), 1);
  d.insert(d.end(), s.begin(), s.end());
  return d;
}

std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> strides(out.size(), 0);
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    const size_t o = i + out.size() - s.size();
    strides[o] = s[i] == 1 ? 0 : stride;
    stride *= s[i];
  }
  return strides;
}

int64_t row_offset(int64_t row, const Shape& out, const std::vector<int64_t>& strides) {
  int64_t offset = 0;
  for (size_t d = out.size(); d-- > 1;) {  // the dims before the innermost, last first
    offset += (row % out[d - 1]) * strides[d - 1];
    row /= out[d - 1];
  }
  return offset;
}

dnnl::memory::dims dnnl_dilations(const ir::Window& w) {
  dnnl::memory::dims d;
  for (int64_t v : w.dilations) d.push_back(v - 1);
  return d;
}

dnnl::memory::format_tag plain_tag(size_t rank) {
  using tag = dnnl::memory::format_tag;
  static const tag tags[] = {tag::a, tag::a, tag::ab, tag::abc, tag::abcd, tag::abcde, tag::abcdef};
  if (rank >= sizeof tags / sizeof tags[0]) throw Error("", "rank " + std::to_string(rank) + " is above 6");
  return tags[rank];
}

namespace {
dnnl::memory::data_type dnnl_type(DType t) {
  switch (t) {
    case DType::f32: return dnnl::memory::data_type::f32;
    case DType::i32: return dnnl::memory::data_type::s32;
    default: throw Error("", std::string("oneDNN has no ") + dtype_name(t) + " memory");
  }
}
}  // namespace

dnnl::memory plain_memory(const dnnl::engine& eng, const Tensor& t, const dnnl::memory::dims& dims) {
  dnnl::memory::desc md(dims, dnnl_type(t.dtype()), plain_tag(dims.size()));
  return dnnl::memory(md, eng, const_cast<void*>(t.raw()));
}

dnnl::memory plain_memory(const dnnl::engine& eng, const Tensor& t) {
  dnnl::memory::dims dims(t.shape().begin(), t.shape().end());
  if (dims.empty()) dims = {1};
  return plain_memory(eng, t, dims);
}

bool has_input(const ir::Node& node, size_t i) { return i < node.inputs.size() && !node.inputs[i].empty(); }

const std::string& node_input(const ir::Node& node, size_t i) {
  if (!has_input(node, i)) throw Error(node_where(node), "missing input " + std::to_string(i));
  return node.inputs[i];
}

}  // namespace layers

// ------------------------------------------------------------------ Network

void set_threads(int n) {
  if (n < 1) throw Error("threads", "expected a count >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int threads() { return omp_get_max_threads(); }

std::vector<std::string> kernel_ops() {
  std::vector<std::string> out;
  for (const auto& kv : layers::kernel_table()) out.push_back(kv.first);
  return out;
}

struct Network::Impl : layers::CompileContext {
  ir::Graph graph;
  CompileOptions options;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
  std::map<std::string, Tensor> values;            // plain values (and plain copies of blocked ones)
  std::map<std::string, dnnl::memory> blocked;     // values held in a oneDNN-chosen layout
  std::map<std::string, Shape> blocked_shapes;
  std::vector<Tensor> input_buffers;
  std::vector<Tensor> outputs;
  std::vector<std::unique_ptr<layers::Kernel>> kernels;
  std::vector<std::string> kernel_nodes;
  std::vector<dnnl::memory> scratch_users;
  size_t scratch_bytes = 0;
  Tensor scratch;
  std::string current;  // node being compiled, for error messages
  size_t current_index = 0;
  std::map<std::string, size_t> last_reader;  // value -> index of the last node reading it (SIZE_MAX: kept)
  std::vector<ir::TensorType> current_types;  // its inferred output types
  std::map<std::string, ir::TensorType> types;  // every value's and weight's type
  std::unique_ptr<layers::ActivationArena> arena;  // while nodes compile, when memory is reused
  size_t private_bytes = 0;                        // value bytes allocated outside the arena
  std::vector<PassRecord> pass_log;
  bool uses_winograd = false;

  // Compiles `decoded` into this (empty) Impl; the arena follows `plan` when one is given.
  void build(const ir::Graph& decoded, const std::map<std::string, Shape>& input_shapes, CompileOptions compile_options,
             const layers::ActivationArena::Plan* plan);

  // The step after which nothing reads `name` (the current one if nothing reads it).
  size_t last_use(const std::string& name) const {
    auto it = last_reader.find(name);
    return it == last_reader.end() ? current_index : it->second;
  }
  // Bytes written now and read until step `last`: from the arena, or nullptr when the caller
  // allocates them itself (counted as private).
  void* place(size_t bytes, size_t last) {
    if (void* p = arena ? arena->allocate(bytes, current_index, last) : nullptr) return p;
    private_bytes += bytes;
    return nullptr;
  }
  dnnl::memory new_memory(const dnnl::memory::desc& desc, size_t last) {
    if (void* p = place(desc.get_size(), last)) return dnnl::memory(desc, eng, p);
    return dnnl::memory(desc, eng);
  }
  // `name` now lives in the bytes at `p` too: they stay until its last reader.
  void share(const void* p, const std::string& name) {
    if (arena) arena->extend(p, last_use(name));
  }
  Tensor new_tensor(const std::string& name, DType dtype, const Shape& shape) {
    const size_t bytes = static_cast<size_t>(element_count(shape)) * dtype_size(dtype);
    if (void* p = place(bytes, last_use(name))) return Tensor::view(dtype, shape, p, arena->owner());
    return Tensor(dtype, shape);
  }

  const ir::TensorType& output_type(size_t i) const override {
    if (i >= current_types.size()) throw Error(current, "internal: no output " + std::to_string(i));
    return current_types[i];
  }

  const dnnl::engine& engine() const override { return eng; }

  const Tensor& value(const std::string& name) override {
    if (auto it = values.find(name); it != values.end()) return it->second;
    if (auto it = graph.weights.find(name); it != graph.weights.end()) return it->second;
    if (auto it = blocked.find(name); it != blocked.end()) {  // materialise a plain copy, once
      Tensor& plain = values.emplace(name, new_tensor(name, DType::f32, blocked_shapes.at(name))).first->second;
      kernels.push_back(layers::reorder_kernel(it->second, layers::plain_memory(eng, plain)));
      kernel_nodes.push_back(name + " (to plain)");
      return plain;
    }
    throw Error(current, "value \"" + name + "\" is not computed before this node");
  }

  const Shape& shape(const std::string& name) override {
    if (auto it = blocked_shapes.find(name); it != blocked_shapes.end()) return it->second;
    return value(name).shape();
  }

  dnnl::memory memory(const std::string& name) override {
    if (auto it = blocked.find(name); it != blocked.end()) return it->second;
    return layers::plain_memory(eng, value(name));
  }

  dnnl::memory define_layout(const std::string& name, const Shape& shape, const dnnl::memory::desc& desc) override {
    const dnnl::memory::dims dims(shape.begin(), shape.end());
    if (desc == dnnl::memory::desc(dims, dnnl::memory::data_type::f32, layers::plain_tag(dims.size())))
      return layers::plain_memory(eng, define(name, DType::f32, shape));
    if (values.count(name) || blocked.count(name)) throw Error(current, "value \"" + name + "\" is defined twice");
    blocked_shapes[name] = shape;
    return blocked.emplace(name, new_memory(desc, last_use(name))).first->second;
  }

  dnnl::memory::format_tag activation_tag(size_t rank) const override {
    return options.blocked_layouts ? dnnl::memory::format_tag::any : layers::plain_tag(rank);
  }

  bool winograd() const override { return uses_winograd; }

  bool is_weight(const std::string& name) const override { return graph.weights.count(name) != 0; }

  const Tensor& weight(const std::string& name, const std::string& role) const override {
    auto it = graph.weights.find(name);
    if (it == graph.weights.end())
      throw Error(current, role + " \"" + name + "\" must be a constant weight (it is " +
                               (values.count(name) ? "a computed value)" : "not defined)"));
    return it->second;
  }

  Tensor& define(const std::string& name, DType dtype, const Shape& shape) override {
    if (values.count(name) || blocked.count(name)) throw Error(current, "value \"" + name + "\" is defined twice");
    return values.emplace(name, new_tensor(name, dtype, shape)).first->second;
  }

  bool read_later(const std::string& name) const override {
    auto it = last_reader.find(name);
    return it != last_reader.end() && it->second > current_index;
  }

  dnnl::memory define_in_place(const std::string& name, const std::string& source) override {
    if (values.count(name) || blocked.count(name)) throw Error(current, "value \"" + name + "\" is defined twice");
    if (auto it = blocked.find(source); it != blocked.end()) {
      blocked_shapes[name] = blocked_shapes.at(source);
      share(it->second.get_data_handle(), name);
      return blocked.emplace(name, it->second).first->second;
    }
    share(value(source).raw(), name);
    return layers::plain_memory(eng, values.emplace(name, value(source)).first->second);
  }

  void alias(const std::string& name, const std::string& source, const Shape& shape) override {
    Tensor view = value(source).reshaped(shape);
    if (values.count(name)) throw Error(current, "value \"" + name + "\" is defined twice");
    share(view.raw(), name);
    values.emplace(name, view);
  }

  dnnl::primitive_attr primitive_attr() const override {
    dnnl::primitive_attr attr;
    attr.set_fpmath_mode(dnnl::fpmath_mode::strict);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  dnnl::memory temporary(const dnnl::memory::desc& desc) override { return new_memory(desc, current_index); }

  dnnl::memory scratchpad(const dnnl::memory::desc& desc) override {
    // Bound now, backed later by one buffer as large as the largest need.
    dnnl::memory m(desc, eng, DNNL_MEMORY_NONE);
    scratch_bytes = std::max(scratch_bytes, desc.get_size());
    scratch_users.push_back(m);
    return m;
  }
};

Network::Network(const ir::Graph& graph, const std::map<std::string, Shape>& input_shapes, CompileOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->build(graph, input_shapes, options, nullptr);
  if (!impl_->arena) return;
  // Compiled once more when the plan made knowing every buffer's lifetime saves a sixteenth:
  // the second compile makes the same requests, and keeps the plan only if it matched them all.
  layers::ActivationArena::Plan plan = impl_->arena->offline_plan();
  const size_t online = impl_->arena->stats().arena_bytes;
  if (plan.bytes + online / 16 > online) return;
  impl_ = std::make_unique<Impl>();  // the first compile's weights and arena go before the second's
  impl_->build(graph, input_shapes, options, &plan);
  if (impl_->arena->followed_plan()) return;
  impl_ = std::make_unique<Impl>();
  impl_->build(graph, input_shapes, options, nullptr);
}

void Network::Impl::build(const ir::Graph& decoded, const std::map<std::string, Shape>& input_shapes, CompileOptions compile_options,
                          const layers::ActivationArena::Plan* plan) {
  Impl& m = *this;
  m.options = compile_options;
  decoded.validate();

  for (const ir::ValueInfo& in : decoded.inputs) {
    Shape shape = in.shape;
    auto given = input_shapes.find(in.name);
    if (given != input_shapes.end()) {
      bool fits = given->second.size() == shape.size();
      for (size_t i = 0; fits && i < shape.size(); ++i) fits = shape[i] < 0 || shape[i] == given->second[i];
      if (!fits)
        throw Error("input \"" + in.name + "\"", "the graph expects shape " + shape_str(in.shape) + ", got " +
                                                     shape_str(given->second));
      shape = given->second;
    }
    for (int64_t d : shape)
      if (d < 0) throw Error("input \"" + in.name + "\"", "shape " + shape_str(in.shape) + " needs a concrete size");
    m.input_buffers.push_back(m.define(in.name, in.dtype, shape));
  }
  m.graph = options.optimize ? layers::optimize(decoded, input_shapes, &m.pass_log) : decoded;
  for (size_t i = 0; i < m.graph.nodes.size(); ++i)
    for (const std::string& in : m.graph.nodes[i].inputs) m.last_reader[in] = i;
  // Graph inputs and outputs are the caller's: never overwritten in place.
  for (const std::string& out : m.graph.outputs) m.last_reader[out] = SIZE_MAX;
  for (const ir::ValueInfo& in : m.graph.inputs) m.last_reader[in.name] = SIZE_MAX;

  for (const ir::ValueInfo& in : m.graph.inputs) m.types[in.name] = {in.dtype, m.values.at(in.name).shape()};
  for (const auto& [name, t] : m.graph.weights) m.types[name] = {t.dtype(), t.shape()};
  const auto is_weight = [&](const std::string& name) { return m.graph.weights.count(name) != 0; };
  // Every node checked against its schema and typed before any kernel is built: a builder gets
  // every attribute with its default and its output types, and the arena's reservation is sized.
  std::vector<ir::Node> checked;
  std::vector<std::vector<ir::TensorType>> node_types;
  size_t output_bytes = 0;
  for (const ir::Node& node : m.graph.nodes) {
    ir::Node n = node;
    n.attrs = ir::checked_attrs(node);
    m.current = n.attrs.owner;
    std::vector<const ir::TensorType*> ins;
    for (const std::string& i : n.inputs) ins.push_back(i.empty() ? nullptr : &m.types.at(i));
    node_types.push_back(ir::infer_node(n, ins, is_weight));
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      m.types[n.outputs[i]] = node_types.back()[i];
      output_bytes += static_cast<size_t>(element_count(node_types.back()[i].shape)) * dtype_size(node_types.back()[i].dtype);
    }
    checked.push_back(std::move(n));
  }
  m.uses_winograd = options.winograd && options.blocked_layouts && layers::winograd_available(m.eng) &&
                    std::any_of(checked.begin(), checked.end(), [&](const ir::Node& n) {
                      return n.op == "Conv" && layers::winograd_fits(n, m.types.at(n.inputs[0]).shape, m.types.at(n.inputs[1]).shape);
                    });
  // Twice the plain bytes: room for blocked layouts' channel padding and plain copies of blocked
  // values. A buffer that does not fit is allocated on its own.
  const size_t reserve = 2 * output_bytes + (1 << 20);
  if (options.reuse_memory)
    m.arena = plan ? std::make_unique<layers::ActivationArena>(reserve, *plan) : std::make_unique<layers::ActivationArena>(reserve);

  for (const ir::Node& n : checked) {
    m.current_index = static_cast<size_t>(&n - checked.data());
    m.current = n.attrs.owner;
    m.current_types = node_types[m.current_index];
    const layers::KernelBuilder builder = layers::kernel_builder(n.op);
    if (!builder) throw Error(m.current, "no kernel for op \"" + n.op + "\"");
    // oneDNN refusing a shape the schemas allowed is an error at this node, never its own exception.
    std::unique_ptr<layers::Kernel> kernel;
    try {
      kernel = builder(n, m);
    } catch (const dnnl::error& e) {
      throw Error(m.current, std::string("oneDNN cannot build this node: ") + e.what());
    }
    if (kernel) {
      m.kernels.push_back(std::move(kernel));
      m.kernel_nodes.push_back(n.name);
    }
    for (size_t i = 0; i < n.outputs.size(); ++i) {
      const std::string& out = n.outputs[i];
      if (!m.values.count(out) && !m.blocked.count(out)) throw Error(m.current, "kernel did not define output \"" + out + "\"");
      if (m.shape(out) != m.current_types[i].shape)
        throw Error(m.current, "internal: the kernel made output \"" + out + "\" " + shape_str(m.shape(out)) + ", the schema infers " +
                                   ir::type_str(m.current_types[i]));
    }
  }
  m.current = "graph outputs";
  m.current_index = checked.size();  // plain copies of blocked outputs are made after the last node

  m.scratch = Tensor(DType::f32, {static_cast<int64_t>((m.scratch_bytes + 3) / 4)});
  for (dnnl::memory& s : m.scratch_users) s.set_data_handle(m.scratch.raw());
  for (const std::string& out : m.graph.outputs) m.outputs.push_back(m.value(out));
  if (m.arena) m.arena->trim();
}

Network::~Network() = default;

namespace {
template <typename From, typename To>
void convert_into(const Tensor& src, Tensor& dst) {
  const From* s = src.data<From>();
  To* d = dst.data<To>();
  for (int64_t i = 0, n = src.numel(); i < n; ++i) d[i] = static_cast<To>(s[i]);
}
}  // namespace

void Network::run(const std::vector<const Tensor*>& inputs) {
  Impl& m = *impl_;
  if (inputs.size() != m.input_buffers.size())
    throw Error("inputs", "the graph takes " + std::to_string(m.input_buffers.size()) + " inputs, got " +
                              std::to_string(inputs.size()));
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& src = *inputs[i];
    Tensor& dst = m.input_buffers[i];
    const std::string where = "input \"" + m.graph.inputs[i].name + "\"";
    if (src.shape() != dst.shape())
      throw Error(where, "compiled for shape " + shape_str(dst.shape()) + ", got " + shape_str(src.shape()));
    if (src.dtype() == dst.dtype()) {
      std::memcpy(dst.raw(), src.raw(), src.nbytes());
    } else if (src.dtype() == DType::f64 && dst.dtype() == DType::f32) {
      convert_into<double, float>(src, dst);
    } else if (src.dtype() == DType::i64 && dst.dtype() == DType::i32) {
      // Narrowing must not wrap: an id of 2^32 + 1 is not id 1.
      const int64_t* v = src.data<int64_t>();
      for (int64_t k = 0, n = src.numel(); k < n; ++k)
        if (v[k] < INT32_MIN || v[k] > INT32_MAX)
          throw Error(where, "value " + std::to_string(v[k]) + " at flat position " + std::to_string(k) + " does not fit i32");
      convert_into<int64_t, int32_t>(src, dst);
    } else if (src.dtype() == DType::i32 && dst.dtype() == DType::i64) {
      convert_into<int32_t, int64_t>(src, dst);
    } else {
      throw Error(where, std::string("expects ") + dtype_name(dst.dtype()) + ", got " + dtype_name(src.dtype()));
    }
  }
  for (auto& k : m.kernels) k->execute(m.stream);
  m.stream.wait();
}

size_t Network::output_count() const { return impl_->outputs.size(); }
const Tensor& Network::output(size_t i) const { return impl_->outputs.at(i); }

const Tensor* Network::value(const std::string& name) const {
  auto it = impl_->values.find(name);
  return it == impl_->values.end() ? nullptr : &it->second;
}

const ir::Graph& Network::executed_graph() const { return impl_->graph; }

const std::vector<PassRecord>& Network::passes() const { return impl_->pass_log; }

MemoryStats Network::memory_stats() const {
  MemoryStats s = impl_->arena ? impl_->arena->stats() : MemoryStats{};
  s.private_bytes = impl_->private_bytes;
  return s;
}

std::string Network::describe() const {
  std::ostringstream o;
  for (size_t i = 0; i < impl_->kernels.size(); ++i)
    o << impl_->kernel_nodes[i] << ": " << impl_->kernels[i]->implementation() << "\n";
  return o.str();
}

}  // namespace pb
