#include "passes.h"

#include <map>
#include <set>

namespace pb::layers {

namespace {
// Ops whose kernels apply attrs.activation as a oneDNN post-op.
bool fusable_producer(const ir::Node& n) {
  return (n.op == "Dense" || n.op == "Conv") && n.attrs.s("activation", "identity") == "identity";
}
}  // namespace

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

ir::Graph fuse_activations(const ir::Graph& graph) {
  std::map<std::string, int> uses;
  for (const ir::Node& n : graph.nodes)
    for (const std::string& in : n.inputs) ++uses[in];
  for (const std::string& out : graph.outputs) ++uses[out];

  ir::Graph g = graph;
  g.nodes.clear();
  std::map<std::string, size_t> producer;  // value -> index in g.nodes
  for (const ir::Node& n : graph.nodes) {
    if (n.op == "Activation" && !n.inputs.empty() && n.attrs.has("function")) {
      auto it = producer.find(n.inputs[0]);
      if (it != producer.end() && uses[n.inputs[0]] == 1 && fusable_producer(g.nodes[it->second])) {
        ir::Node& producer_node = g.nodes[it->second];
        producer_node.attrs.set("activation", n.attrs.s("function"));
        for (const char* key : {"alpha", "beta"})
          if (n.attrs.has(key)) producer_node.attrs.set(key, n.attrs.all().at(key));
        producer_node.outputs = n.outputs;
        producer_node.origin += " + " + n.origin;
        for (const std::string& out : n.outputs) producer[out] = it->second;
        continue;
      }
    }
    for (const std::string& out : n.outputs) producer[out] = g.nodes.size();
    g.nodes.push_back(n);
  }
  return g;
}

}  // namespace pb::layers
