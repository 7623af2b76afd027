// cancel_layout_pairs on small graphs against the unoptimized result, and the pass log a
// Network keeps (what `planetbridge inspect --passes` prints).
#include <random>

#include "kernel_test_util.h"
#include "planetbridge/network.h"

using pb::Tensor;
using pbtest::attrs;
using pbtest::GraphBuilder;
using pbtest::random_tensor;
using Ints = std::vector<int64_t>;

namespace {
std::vector<std::string> ops(const pb::Network& net) {
  std::vector<std::string> out;
  for (const pb::ir::Node& n : net.executed_graph().nodes) out.push_back(n.op);
  return out;
}

// Runs the graph optimized and not; every output must be bit-identical (the pass moves no math).
void check_same(const GraphBuilder& gb) {
  pb::Network fast(gb.g, {}), plain(gb.g, {}, pb::CompileOptions::inspectable());
  fast.run(gb.feed_ptrs());
  plain.run(gb.feed_ptrs());
  REQUIRE(fast.output_count() == plain.output_count());
  for (size_t i = 0; i < fast.output_count(); ++i) CHECK(fast.output(i).bit_equal(plain.output(i)));
}
}  // namespace

TEST_CASE("passes: a transpose and its inverse cancel", "[passes]") {
  std::mt19937 rng(5);
  GraphBuilder gb;
  gb.input("x", random_tensor({2, 3, 4, 5}, rng));
  gb.node("nhwc", "Transpose", {"x"}, attrs({{"perm", Ints{0, 2, 3, 1}}}));
  gb.node("nchw", "Transpose", {"nhwc"}, attrs({{"perm", Ints{0, 3, 1, 2}}}));
  gb.node("act", "Activation", {"nchw"}, attrs({{"function", std::string("tanh")}}));
  check_same(gb);
  pb::Network net(gb.g, {});
  CHECK(ops(net) == std::vector<std::string>{"Activation"});
  CHECK(net.executed_graph().nodes[0].inputs == std::vector<std::string>{"x"});
  REQUIRE(net.passes().size() == 5);
  CHECK(net.passes()[1].name == "cancel_layout_pairs");
  CHECK(net.passes()[1].effect == "3 -> 1 nodes: -2 Transpose");
  CHECK(net.passes()[0].effect == "no change");
}

TEST_CASE("passes: two transposes compose into one; a shorter perm permutes the leading dims", "[passes]") {
  std::mt19937 rng(6);
  GraphBuilder gb;
  gb.input("x", random_tensor({2, 3, 4}, rng));
  gb.node("t1", "Transpose", {"x"}, attrs({{"perm", Ints{1, 0}}}));          // [3, 2, 4]
  gb.node("t2", "Transpose", {"t1"}, attrs({{"perm", Ints{0, 2, 1}}}));      // [3, 4, 2]
  gb.node("t3", "Transpose", {"t2"}, attrs({{"perm", Ints{2, 0, 1}}}));      // [2, 3, 4]: x again
  gb.node("t4", "Transpose", {"t3"}, attrs({{"perm", Ints{0, 2, 1}}}));      // [2, 4, 3]
  check_same(gb);
  pb::Network net(gb.g, {});
  CHECK(ops(net) == std::vector<std::string>{"Transpose"});
  CHECK(net.executed_graph().nodes[0].inputs == std::vector<std::string>{"x"});
  CHECK(net.executed_graph().nodes[0].attrs.ints("perm") == Ints{0, 2, 1});
}

TEST_CASE("passes: a transpose read elsewhere stays; an identity that is a graph output stays", "[passes]") {
  std::mt19937 rng(7);
  GraphBuilder gb;
  gb.input("x", random_tensor({3, 5}, rng));
  gb.node("t1", "Transpose", {"x"}, attrs({{"perm", Ints{1, 0}}}));
  gb.node("back", "Transpose", {"t1"}, attrs({{"perm", Ints{1, 0}}}));
  gb.node("act", "Activation", {"t1"}, attrs({{"function", std::string("relu")}}));
  gb.g.outputs = {"back", "act"};
  check_same(gb);
  pb::Network net(gb.g, {});
  CHECK(ops(net) == std::vector<std::string>{"Transpose", "Transpose", "Activation"});
  CHECK(net.executed_graph().nodes[1].inputs == std::vector<std::string>{"x"});  // composed: identity, kept as an output
}

TEST_CASE("passes: a reshape of a reshape reshapes the input; a reshape to the same shape goes", "[passes]") {
  std::mt19937 rng(8);
  GraphBuilder gb;
  gb.input("x", random_tensor({2, 3, 4, 5}, rng)).weight("w", random_tensor({7, 20}, rng));
  gb.node("flat", "Flatten", {"x"}, attrs({{"start", int64_t(0)}, {"end", int64_t(1)}}));  // [6, 4, 5]
  gb.node("r1", "Reshape", {"flat"}, attrs({{"shape", Ints{6, -1}}}));                        // [6, 20]
  gb.node("same", "Reshape", {"r1"}, attrs({{"shape", Ints{0, 20}}}));                        // [6, 20]
  gb.node("fc", "Dense", {"same", "w"});
  check_same(gb);
  pb::Network net(gb.g, {});
  CHECK(ops(net) == std::vector<std::string>{"Reshape", "Dense"});
  CHECK(net.executed_graph().nodes[0].inputs == std::vector<std::string>{"x"});
  CHECK(net.executed_graph().nodes[0].attrs.ints("shape") == Ints{6, 20});
  CHECK(net.executed_graph().nodes[1].inputs[0] == "r1");
}

TEST_CASE("passes: compiled without optimize, a network records no passes", "[passes]") {
  GraphBuilder gb;
  gb.input("x", pbtest::f32({2}, {1.f, -1.f})).node("act", "Activation", {"x"}, attrs({{"function", std::string("relu")}}));
  CHECK(pb::Network(gb.g, {}, pb::CompileOptions{false}).passes().empty());
}
