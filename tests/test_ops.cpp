// The op schemas (core/include/planetbridge/ops.h): one table for decoders, the graph check and
// the kernels. docs/ir.md must hold the table as `planetbridge ops` prints it.
#include <set>

#include "planetbridge/ops.h"
#include "test_util.h"

using pb::Shape;
using pb::ir::TensorType;
using pbtest::ErrorAt;
using pbtest::make_node;

namespace {

std::vector<TensorType> infer(const pb::ir::Node& n, const std::vector<TensorType>& ins, const std::set<std::string>& weights = {}) {
  std::vector<const TensorType*> p;
  for (const TensorType& t : ins) p.push_back(&t);
  return pb::ir::infer_node(n, p, [&](const std::string& name) { return weights.count(name) != 0; });
}

TensorType f32(Shape s) { return {pb::DType::f32, std::move(s)}; }

}  // namespace

TEST_CASE("ops: docs/ir.md holds the op table and the activation functions as the schemas print them", "[ops]") {
  const std::string doc = pbtest::read_text(PB_SOURCE_DIR "/docs/ir.md");
  INFO("regenerate with: build/bin/planetbridge ops");
  CHECK_THAT(doc, Catch::Contains(pb::ir::ops_markdown()));
  CHECK_THAT(doc, Catch::Contains(pb::ir::activations_markdown()));
}

TEST_CASE("ops: every op has exactly one kernel, every kernel a schema", "[ops]") {
  std::vector<std::string> ops;
  for (const auto& kv : pb::ir::op_schemas()) ops.push_back(kv.first);
  CHECK(pb::kernel_ops() == ops);
}

TEST_CASE("ops: every activation function compiles, as a node and fused", "[ops]") {
  for (const pb::ir::ActivationInfo& a : pb::ir::activation_functions()) {
    INFO(a.name);
    pb::ir::Graph g;
    g.inputs.push_back({"x", pb::DType::f32, {2, 3}});
    g.weights["w"] = pb::filled({3, 3}, 0.5);
    pb::ir::Attrs attrs = pbtest::attrs({{"function", a.name}});
    for (const std::string& key : a.required) attrs.set(key, 0.5);
    g.nodes.push_back(make_node("fc", "Dense", {"x", "w"}));
    g.nodes.push_back(make_node("act", "Activation", {"fc"}, attrs));
    g.outputs = {"act"};
    for (bool fuse : {false, true}) CHECK_NOTHROW(pb::Network(g, {}, pb::CompileOptions{fuse}));
  }
}

TEST_CASE("ops: shapes infer through unknown batch dims", "[ops]") {
  CHECK(infer(make_node("d", "Dense", {"x", "w"}), {f32({-1, 3}), f32({4, 3})}, {"w"})[0].shape == Shape{-1, 4});
  CHECK(infer(make_node("c", "Conv", {"x", "k"}, pbtest::attrs({{"strides", std::vector<int64_t>{2, 2}}})),
              {f32({-1, 2, 7, 5}), f32({6, 2, 3, 3})}, {"k"})[0]
            .shape == Shape{-1, 6, 3, 2});
  CHECK(infer(make_node("f", "Flatten", {"x"}), {f32({-1, 2, 3, 4})})[0].shape == Shape{-1, 24});
  CHECK(infer(make_node("r", "Reshape", {"x"}, pbtest::attrs({{"shape", std::vector<int64_t>{0, 2, -1}}})), {f32({-1, 6})})[0].shape ==
        Shape{-1, 2, 3});
  CHECK(infer(make_node("a", "Add", {"x", "b"}), {f32({-1, 3}), f32({3})})[0].shape == Shape{-1, 3});
  CHECK(infer(make_node("p", "Pool", {"x"}, pbtest::attrs({{"mode", std::string("avg")}, {"global", int64_t(1)}})), {f32({-1, 4, 5})})[0]
            .shape == Shape{-1, 4, 1});
  const TensorType ids{pb::DType::i64, {-1, 7}};
  CHECK(infer(make_node("e", "Embedding", {"ids", "t"}), {ids, f32({10, 4})}, {"t"})[0].shape == Shape{-1, 7, 4});
  // A class token expanded to a batch known only when compiled; masks over it.
  CHECK(infer(make_node("x", "Expand", {"t", "x"}, pbtest::attrs({{"shape", std::vector<int64_t>{0, -1, -1}}})), {f32({1, 1, 4}), f32({-1, 5, 4})})[0]
            .shape == Shape{-1, 1, 4});
  const std::vector<TensorType> mask = infer(make_node("m", "Compare", {"a", "b"}, pbtest::attrs({{"mode", std::string("eq")}})),
                                             {f32({-1, 1, 3}), f32({})});
  CHECK(mask[0].dtype == pb::DType::i32);
  CHECK(infer(make_node("w", "Where", {"m", "v", "x"}), {mask[0], f32({}), f32({-1, 2, 3})})[0].shape == Shape{-1, 2, 3});
}

TEST_CASE("ops: a value above 2^34 elements or 2^31 - 1 per dimension is refused by shape inference, naming the node", "[ops]") {
  // Found by fuzz_entity (tests/fuzz/regressions/entity/conv-padding-4e11): a Conv1d padding of
  // 4*10^11 inferred a 3 TB output that oneDNN then failed to allocate, with no name on it.
  // Window attributes are bounded on their own (< 2^31, what oneDNN holds in an int)...
  const pb::ir::Node conv = make_node("conv", "Conv", {"x", "k"},
                                      pbtest::attrs({{"pads_end", std::vector<int64_t>{399431958530}}}));
  CHECK_THROWS_MATCHES(infer(conv, {f32({-1, 3, 8}), f32({2, 3, 4})}, {"k"}), pb::Error,
                       ErrorAt("node \"conv\" (Conv) from test:conv", "pads must be < 2^31, got 399431958530"));
  // ... and so is every output: 17 channels of 2^30 is just over 2^34.
  const pb::ir::Node wide = make_node("conv", "Conv", {"x", "k"});
  CHECK_THROWS_MATCHES(infer(wide, {f32({1, 1, int64_t(1) << 30}), f32({17, 1, 1})}, {"k"}), pb::Error,
                       ErrorAt("node \"conv\" (Conv) from test:conv", "elements are above the limit of 2^34 per value"));
  CHECK(infer(make_node("c", "Conv", {"x", "k"}, pbtest::attrs({{"pads_end", std::vector<int64_t>{3}}})),
              {f32({-1, 3, 8}), f32({2, 3, 4})}, {"k"})[0]
            .shape == Shape{-1, 2, 8});
  // A window that would see padding alone: pads beyond dilation·(kernel − 1) (fuzz_entity: a
  // Conv padded by 67 million took oneDNN a minute and 8 GB to create).
  CHECK_THROWS_MATCHES(infer(make_node("c", "Conv", {"x", "k"}, pbtest::attrs({{"pads_end", std::vector<int64_t>{4}}})),
                             {f32({-1, 3, 8}), f32({2, 3, 4})}, {"k"}),
                       pb::Error, ErrorAt("node \"c\" (Conv) from test:c", "pads 0 and 4 of spatial dim 0 must be smaller than the window 4"));
  // Inputs too (a graph input's shape comes from the file): a Reshape of [2^43, 2^46] multiplied
  // its dims past int64 (UBSan: signed overflow; fuzz_entity).
  const pb::ir::Node reshape = make_node("r", "Reshape", {"x"}, pbtest::attrs({{"shape", std::vector<int64_t>{-1}}}));
  CHECK_THROWS_MATCHES(infer(reshape, {f32({int64_t(1) << 43, int64_t(1) << 46})}), pb::Error,
                       ErrorAt("node \"r\" (Reshape) from test:r", "input \"x\" is f32[8796093022208, 70368744177664]: dimension 8796093022208 is above the limit of 2^31 - 1"));
  // A dim over the limit next to a 0 (no elements) is refused all the same.
  CHECK_THROWS_AS(infer(reshape, {f32({0, int64_t(1) << 31})}), pb::Error);
  // A value without elements too: oneDNN 2.6 died of SIGFPE creating the matmul of a Dense over an
  // empty batch (fuzz_entity; tests/fuzz/regressions/stream/empty-batch-dense.json by `check`).
  CHECK_THROWS_MATCHES(infer(make_node("d", "Dense", {"x", "w"}), {f32({0, 2}), f32({3, 2})}, {"w"}), pb::Error,
                       ErrorAt("node \"d\" (Dense) from test:d", "input \"x\" is f32[0, 2]: a dimension of 0: values without elements are not supported"));
  // Window attributes: a dilation of 2^62 with a kernel of 5 would overflow the span.
  CHECK_THROWS_MATCHES(infer(make_node("c", "Conv", {"x", "k"}, pbtest::attrs({{"dilations", std::vector<int64_t>{int64_t(1) << 62}}})),
                             {f32({1, 3, 8}), f32({2, 3, 5})}, {"k"}),
                       pb::Error, ErrorAt("node \"c\" (Conv) from test:c", "must be < 2^31"));
  // A stride of 2^32 (< 2^34 elements, but no int for oneDNN) threw oneDNN's own error (fuzz_entity).
  CHECK_THROWS_MATCHES(infer(make_node("c", "Conv", {"x", "k"}, pbtest::attrs({{"strides", std::vector<int64_t>{int64_t(1) << 32}}})),
                             {f32({1, 3, 8}), f32({2, 3, 2})}, {"k"}),
                       pb::Error, ErrorAt("node \"c\" (Conv) from test:c", "must be < 2^31, got 4294967296"));
  // Slice steps and bounds of any int64 count without overflow.
  CHECK(pb::ir::slice_range(10, 0, 10, INT64_MAX).count == 1);
  CHECK(pb::ir::slice_range(10, INT64_MAX, INT64_MIN, INT64_MIN).count == 1);
  CHECK(pb::ir::slice_range(10, 1, 10, 3).count == 3);
  CHECK(pb::ir::slice_range(10, 9, -11, -4).count == 3);
}

TEST_CASE("ops: a pool's or a convolution's pads must be smaller than its window", "[ops]") {
  // Found by fuzz_entity (tests/fuzz/regressions/entity/avgpool-pads-beyond-window): an AvgPool
  // with pads_end 117506049 passed shape inference and oneDNN then threw its own dnnl::error.
  auto pool = [](int64_t pad, int64_t dilation) {
    return make_node("p", "Pool", {"x"}, pbtest::attrs({{"mode", std::string("avg")}, {"kernel", std::vector<int64_t>{2}},
                                                        {"pads_end", std::vector<int64_t>{pad}}, {"dilations", std::vector<int64_t>{dilation}}}));
  };
  CHECK_THROWS_MATCHES(infer(pool(117506049, 1), {f32({1, 4, 8})}), pb::Error,
                       ErrorAt("node \"p\" (Pool) from test:p", "pads 0 and 117506049 of spatial dim 0 must be smaller than the window 2"));
  CHECK_THROWS_AS(infer(pool(2, 1), {f32({1, 4, 8})}), pb::Error);
  CHECK(infer(pool(1, 1), {f32({1, 4, 8})})[0].shape == Shape{1, 4, 8});
  CHECK(infer(pool(2, 3), {f32({1, 4, 8})})[0].shape == Shape{1, 4, 7});  // a dilated window of 4 takes a pad of 2
}

TEST_CASE("ops: attributes are typed, defaulted and never unknown", "[ops]") {
  const pb::ir::Node pool = make_node("p", "Pool", {"x"}, pbtest::attrs({{"mode", std::string("max")}, {"kernel", std::vector<int64_t>{2}}}));
  const pb::ir::Attrs a = pb::ir::checked_attrs(pool);
  CHECK(a.i("global") == 0);           // defaults filled in
  CHECK(a.i("count_include_pad") == 0);
  CHECK_FALSE(a.has("strides"));       // optional, per spatial dim: read_window expands it
  pb::ir::Node n = make_node("sm", "Softmax", {"x"}, pbtest::attrs({{"axis", int64_t(-1)}, {"temperature", 2.0}}));
  CHECK_THROWS_MATCHES(pb::ir::checked_attrs(n), pb::Error,
                       ErrorAt("node \"sm\" (Softmax) from test:sm", "attribute \"temperature\" is not an attribute of Softmax (known: axis, log)"));
  n = make_node("sm", "Softmax", {"x"}, pbtest::attrs({{"axis", std::string("last")}}));
  CHECK_THROWS_MATCHES(pb::ir::checked_attrs(n), pb::Error, ErrorAt("node \"sm\" (Softmax) from test:sm", "attribute \"axis\" must be int"));
  n = make_node("sm", "Softmax", {"x"});
  CHECK_THROWS_MATCHES(pb::ir::checked_attrs(n), pb::Error, ErrorAt("node \"sm\" (Softmax) from test:sm", "missing attribute \"axis\" (int)"));
  // A float attribute may be written as an integer; it reads as a float.
  n = make_node("ln", "LayerNorm", {"x"}, pbtest::attrs({{"eps", int64_t(1)}}));
  CHECK(pb::ir::checked_attrs(n).f("eps") == 1.0);
}

TEST_CASE("ops: inputs are counted, weights must be constants, the graph check names the node", "[ops]") {
  CHECK_THROWS_MATCHES(infer(make_node("d", "Dense", {"x"}), {f32({2, 3})}), pb::Error,
                       ErrorAt("node \"d\" (Dense) from test:d", "missing input 1 (weight)"));
  CHECK_THROWS_MATCHES(infer(make_node("d", "Dense", {"x", "w"}), {f32({2, 3}), f32({4, 3})}), pb::Error,
                       ErrorAt("node \"d\" (Dense) from test:d", "input 1 (weight) \"w\" must be a constant weight"));
  CHECK_THROWS_MATCHES(infer(make_node("i", "Identity", {"x", "y"}), {f32({2}), f32({2})}), pb::Error,
                       ErrorAt("node \"i\" (Identity) from test:i", "takes at most 1 inputs, got 2"));
  CHECK(infer(make_node("c", "Concat", {"a", "b", "c"}, pbtest::attrs({{"axis", int64_t(1)}})), {f32({2, 1}), f32({2, 2}), f32({2, 3})})[0]
            .shape == Shape{2, 6});

  pb::ir::Graph g;
  g.inputs.push_back({"x", pb::DType::f32, {-1, 3}});
  g.weights["w"] = pb::filled({4, 5}, 1.0);
  g.nodes.push_back(make_node("fc", "Dense", {"x", "w"}));
  g.outputs = {"fc"};
  CHECK_THROWS_MATCHES(pb::ir::infer_graph(g), pb::Error,
                       ErrorAt("node \"fc\" (Dense) from test:fc", "input [-1, 3] does not end in the weight's in-features 5"));
  g.weights["w"] = pb::filled({4, 3}, 1.0);
  CHECK(pb::ir::infer_graph(g, {{"x", {8, 3}}}).at("fc").shape == Shape{8, 4});
}
