#include "passes.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "planetbridge/ops.h"

namespace pb::layers {

namespace {
// Ops whose kernels apply attrs.activation as a oneDNN post-op.
bool fusable_producer(const ir::Node& n) {
  return (n.op == "Dense" || n.op == "Conv") && n.attrs.s("activation", "identity") == "identity";
}

// How many nodes read each value; a graph output counts as a reader.
std::map<std::string, int> readers(const ir::Graph& graph) {
  std::map<std::string, int> uses;
  for (const ir::Node& n : graph.nodes)
    for (const std::string& in : n.inputs) ++uses[in];
  for (const std::string& out : graph.outputs) ++uses[out];
  return uses;
}

// Rewrites nodes in order: `fold(node, producer_of, g)` may merge `node` into the node (already
// kept) that produced one of its inputs and return it; producer_of(value) is that node or
// nullptr. The merged node moves to `node`'s place: its other inputs (a residual computed after
// the producer) are ready there, and nothing between read the producer's old output.
template <typename Fold>
ir::Graph merge_into_producers(const ir::Graph& graph, Fold fold) {
  ir::Graph g = graph;
  g.nodes.clear();
  std::vector<bool> moved;                 // g.nodes[i] was merged and moved on
  std::map<std::string, size_t> producer;  // value -> index in g.nodes
  auto producer_of = [&](const std::string& value) -> ir::Node* {
    auto it = producer.find(value);
    return it == producer.end() ? nullptr : &g.nodes[it->second];
  };
  for (const ir::Node& n : graph.nodes) {
    if (ir::Node* merged = fold(n, producer_of, g)) {
      const size_t at = static_cast<size_t>(merged - g.nodes.data());
      g.nodes.push_back(g.nodes[at]);
      moved[at] = true;
    } else {
      g.nodes.push_back(n);
    }
    moved.push_back(false);
    for (const std::string& out : g.nodes.back().outputs) producer[out] = g.nodes.size() - 1;
  }
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!moved[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  return g;
}

bool is_f32_weight(const ir::Graph& g, const std::string& name, int64_t count) {
  auto it = g.weights.find(name);
  return it != g.weights.end() && it->second.dtype() == DType::f32 && (count < 0 || it->second.numel() == count);
}
}  // namespace

namespace {
// "57 -> 37 nodes: -20 BatchNorm" from the op counts before and after a pass.
std::string effect(const ir::Graph& before, const ir::Graph& after) {
  std::map<std::string, int> delta;
  for (const ir::Node& n : before.nodes) --delta[n.op];
  for (const ir::Node& n : after.nodes) ++delta[n.op];
  std::string ops;
  for (const auto& [op, d] : delta)
    if (d) ops += (ops.empty() ? "" : ", ") + std::string(d > 0 ? "+" : "") + std::to_string(d) + " " + op;
  if (ops.empty()) return "no change";
  return std::to_string(before.nodes.size()) + " -> " + std::to_string(after.nodes.size()) + " nodes: " + ops;
}
}  // namespace

ir::Graph optimize(const ir::Graph& graph, const std::map<std::string, Shape>& input_shapes, std::vector<PassRecord>* log) {
  ir::Graph g = graph;
  const auto step = [&](const char* name, ir::Graph next) {
    if (log) log->push_back({name, effect(g, next)});
    g = std::move(next);
  };
  step("remove_unused", remove_unused(g));
  // Every pass below keeps the type of each value it leaves.
  const std::map<std::string, ir::TensorType> types = ir::infer_graph(g, input_shapes);
  step("cancel_layout_pairs", remove_unused(cancel_layout_pairs(g, types)));
  step("fold_batchnorm", fold_batchnorm(g, types));
  step("fuse_residual_add", fuse_residual_add(g, types));
  step("fuse_activations", fuse_activations(g));
  return g;
}

ir::Graph remove_unused(const ir::Graph& graph) {
  std::set<std::string> needed(graph.outputs.begin(), graph.outputs.end());
  std::vector<bool> keep(graph.nodes.size(), false);
  for (size_t i = graph.nodes.size(); i-- > 0;) {
    const ir::Node& n = graph.nodes[i];
    for (const std::string& out : n.outputs) keep[i] = keep[i] || needed.count(out);
    if (keep[i]) needed.insert(n.inputs.begin(), n.inputs.end());
  }
  ir::Graph g = graph;
  g.nodes.clear();
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    if (keep[i]) g.nodes.push_back(graph.nodes[i]);
  return g;
}

ir::Graph cancel_layout_pairs(const ir::Graph& graph, const std::map<std::string, ir::TensorType>& types) {
  const std::set<std::string> outputs(graph.outputs.begin(), graph.outputs.end());
  ir::Graph g = graph;
  g.nodes.clear();
  std::map<std::string, size_t> producer;           // value -> its (rewritten) node in g.nodes
  std::map<std::string, std::string> same_as;       // removed node's output -> the value it equals
  for (const ir::Node& node : graph.nodes) {
    ir::Node n = node;
    for (std::string& in : n.inputs)
      if (auto it = same_as.find(in); it != same_as.end()) in = it->second;
    const ir::Node* p = n.inputs.size() == 1 && producer.count(n.inputs[0]) ? &g.nodes[producer.at(n.inputs[0])] : nullptr;
    const auto type = [&](const std::string& v) { return types.count(v) ? &types.at(v) : nullptr; };
    const ir::TensorType* in_type = n.inputs.size() == 1 ? type(n.inputs[0]) : nullptr;
    const ir::TensorType* out_type = n.outputs.size() == 1 ? type(n.outputs[0]) : nullptr;
    bool identity = false;
    if (n.op == "Transpose" && in_type && n.attrs.has("perm")) {
      const size_t rank = in_type->shape.size();
      const auto full = [rank](std::vector<int64_t> perm) {  // a shorter perm permutes the leading dims only
        for (size_t i = perm.size(); i < rank; ++i) perm.push_back(static_cast<int64_t>(i));
        return perm;
      };
      const auto is_identity = [](const std::vector<int64_t>& perm) {
        for (size_t i = 0; i < perm.size(); ++i)
          if (perm[i] != static_cast<int64_t>(i)) return false;
        return true;
      };
      std::vector<int64_t> perm = full(n.attrs.ints("perm"));
      identity = is_identity(perm);
      if (!identity && p && p->op == "Transpose" && p->attrs.has("perm") && type(p->inputs[0])) {
        const std::vector<int64_t> first = full(p->attrs.ints("perm"));  // y[i] = t[perm[i]] = x[first[perm[i]]]
        for (int64_t& d : perm) d = first.at(static_cast<size_t>(d));
        n.inputs[0] = p->inputs[0];
        n.attrs.set("perm", perm);
        n.origin += " (with " + p->origin + ")";
        identity = is_identity(perm);
      }
    } else if (n.op == "Reshape" && in_type && out_type) {
      const Shape& ys = out_type->shape;
      const bool concrete = std::all_of(ys.begin(), ys.end(), [](int64_t d) { return d > 0; });  // 0 would mean "copy"
      identity = concrete && in_type->shape == ys;
      if (!identity && concrete && p && (p->op == "Reshape" || p->op == "Flatten") && type(p->inputs[0])) {
        n.inputs[0] = p->inputs[0];
        n.attrs.set("shape", std::vector<int64_t>(ys.begin(), ys.end()));
        n.origin += " (with " + p->origin + ")";
        identity = type(n.inputs[0])->shape == ys;
      }
    }
    if (identity && !outputs.count(n.outputs[0])) {
      same_as[n.outputs[0]] = n.inputs[0];
      continue;
    }
    for (const std::string& out : n.outputs) producer[out] = g.nodes.size();
    g.nodes.push_back(std::move(n));
  }
  return g;
}

ir::Graph fold_batchnorm(const ir::Graph& graph, const std::map<std::string, ir::TensorType>& types) {
  std::map<std::string, int> uses = readers(graph);
  return merge_into_producers(graph, [&](const ir::Node& bn, auto producer_of, ir::Graph& g) -> ir::Node* {
    if (bn.op != "BatchNorm" || bn.inputs.size() != 5) return nullptr;
    ir::Node* producer = producer_of(bn.inputs[0]);  // a Conv, or a Dense whose [N, out] output BatchNorm1d normalises
    const bool foldable = producer && (producer->op == "Conv" || (producer->op == "Dense" && types.count(bn.inputs[0]) &&
                                                          types.at(bn.inputs[0]).shape.size() == 2));
    if (!foldable || uses[bn.inputs[0]] != 1 || !fusable_producer(*producer) || producer->inputs.size() < 2 || producer->inputs.size() > 3 ||
        !is_f32_weight(g, producer->inputs[1], -1))
      return nullptr;
    const Tensor& w = g.weights.at(producer->inputs[1]);
    const int64_t out_c = w.shape()[0], per_out = w.numel() / out_c;
    const bool has_bias = producer->inputs.size() == 3 && !producer->inputs[2].empty();
    if (has_bias && !is_f32_weight(g, producer->inputs[2], out_c)) return nullptr;
    for (size_t i = 1; i < 5; ++i)
      if (!is_f32_weight(g, bn.inputs[i], out_c)) return nullptr;
    const float* scale = g.weights.at(bn.inputs[1]).data<float>();
    const float* shift = g.weights.at(bn.inputs[2]).data<float>();
    const float* mean = g.weights.at(bn.inputs[3]).data<float>();
    const float* var = g.weights.at(bn.inputs[4]).data<float>();
    const double eps = bn.attrs.f("eps");
    Tensor folded_w(DType::f32, w.shape()), folded_b(DType::f32, {out_c});
    for (int64_t o = 0; o < out_c; ++o) {
      const double s = double(scale[o]) / std::sqrt(double(var[o]) + eps);
      const float* src = w.data<float>() + o * per_out;
      float* dst = folded_w.data<float>() + o * per_out;
      for (int64_t k = 0; k < per_out; ++k) dst[k] = static_cast<float>(double(src[k]) * s);
      const double b = has_bias ? double(g.weights.at(producer->inputs[2]).data<float>()[o]) : 0.0;
      folded_b.data<float>()[o] = static_cast<float>((b - double(mean[o])) * s + double(shift[o]));
    }
    const std::string suffix = "@bn:" + bn.name;
    producer->inputs.resize(3);
    producer->inputs[1] += suffix;
    producer->inputs[2] = (has_bias ? producer->inputs[2] : bn.inputs[2]) + suffix;
    g.weights[producer->inputs[1]] = std::move(folded_w);
    g.weights[producer->inputs[2]] = std::move(folded_b);
    producer->outputs = bn.outputs;
    producer->origin += " + " + bn.origin;
    return producer;
  });
}

ir::Graph fuse_residual_add(const ir::Graph& graph, const std::map<std::string, ir::TensorType>& types) {
  std::map<std::string, int> uses = readers(graph);
  return merge_into_producers(graph, [&](const ir::Node& add, auto producer_of, ir::Graph&) -> ir::Node* {
    if (add.op != "Add" || add.inputs.size() != 2) return nullptr;
    for (size_t i = 0; i < 2; ++i) {
      ir::Node* conv = producer_of(add.inputs[i]);
      const std::string& other = add.inputs[1 - i];
      if (!conv || conv->op != "Conv" || uses[add.inputs[i]] != 1 || !fusable_producer(*conv) || conv->inputs.size() > 3 ||
          other == add.inputs[i] || !types.count(other) || !(types.at(other) == types.at(add.inputs[i])))
        continue;
      conv->inputs.resize(3);
      conv->inputs.push_back(other);
      conv->outputs = add.outputs;
      conv->origin += " + " + add.origin;
      return conv;
    }
    return nullptr;
  });
}

ir::Graph fuse_activations(const ir::Graph& graph) {
  std::map<std::string, int> uses = readers(graph);
  return merge_into_producers(graph, [&](const ir::Node& n, auto producer_of, ir::Graph&) -> ir::Node* {
    if (n.op != "Activation" || n.inputs.empty() || !n.attrs.has("function")) return nullptr;
    ir::Node* producer = producer_of(n.inputs[0]);
    if (!producer || uses[n.inputs[0]] != 1 || !fusable_producer(*producer)) return nullptr;
    producer->attrs.set("activation", n.attrs.s("function"));
    for (const char* key : {"alpha", "beta"})
      if (n.attrs.has(key)) producer->attrs.set(key, n.attrs.all().at(key));
    producer->outputs = n.outputs;
    producer->origin += " + " + n.origin;
    return producer;
  });
}

}  // namespace pb::layers
