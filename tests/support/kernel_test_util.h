#pragma once
// What the kernel tests share: graphs built node by node with their tensors, and outputs
// compared with double-precision references.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace pbtest {

using Ref = std::vector<double>;

// The error location of a node built by make_node.
inline std::string where(const std::string& name, const std::string& op) {
  return "node \"" + name + "\" (" + op + ") from test:" + name;
}

inline Ref to_double(const pb::Tensor& t) {
  const float* p = t.data<float>();
  return Ref(p, p + t.numel());
}

// "" when every |got - ref| <= atol + rtol·|ref|, else how many elements are off and the worst.
inline std::string mismatch(const pb::Tensor& got, const Ref& ref, double atol = 1e-5, double rtol = 1e-5) {
  if (got.dtype() != pb::DType::f32) return std::string("got ") + pb::dtype_name(got.dtype()) + ", want f32";
  if (static_cast<size_t>(got.numel()) != ref.size())
    return "got " + std::to_string(got.numel()) + " elements, want " + std::to_string(ref.size());
  int64_t bad = 0;
  size_t worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double err = std::fabs(double(got.data<float>()[i]) - ref[i]);
    const double excess = err - (atol + rtol * std::fabs(ref[i]));
    if (!(excess <= 0)) {
      ++bad;
      if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
    }
  }
  if (bad == 0) return "";
  std::ostringstream o;
  o.precision(9);
  o << bad << " of " << ref.size() << " elements off; worst at flat " << worst << ": got " << got.data<float>()[worst]
    << ", want " << ref[worst];
  return o.str();
}

// A graph whose inputs and weights come with their tensors, so a test compiles and runs it in a
// line. The last node added is the graph output.
struct GraphBuilder {
  pb::ir::Graph g;
  std::vector<pb::Tensor> feeds;  // one per graph input, in order

  GraphBuilder& input(const std::string& name, const pb::Tensor& t) {
    g.inputs.push_back({name, t.dtype(), t.shape()});
    feeds.push_back(t);
    return *this;
  }
  GraphBuilder& weight(const std::string& name, const pb::Tensor& t) {
    g.weights[name] = t;
    return *this;
  }
  GraphBuilder& node(const std::string& name, const std::string& op, std::vector<std::string> inputs, pb::ir::Attrs a = {}) {
    g.nodes.push_back(make_node(name, op, std::move(inputs), std::move(a)));
    g.outputs = {name};
    return *this;
  }
  std::vector<const pb::Tensor*> feed_ptrs() const {
    std::vector<const pb::Tensor*> p;
    for (const pb::Tensor& t : feeds) p.push_back(&t);
    return p;
  }
  // Compiles, runs once on `feeds` and returns a copy of the output.
  pb::Tensor run(pb::CompileOptions options = {}) const {
    pb::Network net(g, {}, options);
    net.run(feed_ptrs());
    REQUIRE(net.output_count() == 1);
    return net.output(0).clone();
  }
};

}  // namespace pbtest
