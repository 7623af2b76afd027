// The pytorch decoder on shape introspection and the tensor-method idioms of real code
// (plugins/pytorch/op/scalar.cpp, select.cpp, shape.cpp), on streams recorded from torch 1.13
// with taps (make_streams.py: channel_shuffle, gpt_attention, class_token, shape_methods,
// llama_pieces, rope_interleaved; no torch needed here). Python values computed from shapes
// leave no node; a size that depends on the batch never becomes a constant, so each graph also
// runs at twice the captured batch.
// Error cases mutate copies of those documents.
#include <cmath>
#include <cstring>

#include "fx_doc.h"
#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_close;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::node;
using pbtest::to_stream;
using pytorch_test::fx_node;
using pytorch_test::graph_path;

namespace {

const pb::Dialect& pytorch() { return pbtest::planet(); }

using Ints = std::vector<int64_t>;
using Names = std::vector<std::string>;

// t twice along dim 0.
Tensor twice(const Tensor& t) {
  pb::Shape shape = t.shape();
  shape[0] *= 2;
  Tensor out(t.dtype(), shape);
  std::memcpy(out.raw(), t.raw(), t.nbytes());
  std::memcpy(static_cast<char*>(out.raw()) + t.nbytes(), t.raw(), t.nbytes());
  return out;
}

// The graph compiled for twice the captured batch, each input repeated along dim 0: every output
// must be the captured one repeated (the samples are independent), so no size the graph fixed
// stands for the batch.
void check_twice_the_batch(const pb::Stream& s, const Graph& g) {
  std::map<std::string, pb::Shape> shapes;
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    inputs.push_back(twice(s.tensors.at(s.inputs[i])));
    shapes[g.inputs[i].name] = inputs.back().shape();
  }
  pb::Network net(g, shapes);
  std::vector<const Tensor*> feeds;
  for (const Tensor& t : inputs) feeds.push_back(&t);
  net.run(feeds);
  REQUIRE(net.output_count() == s.expected.size());
  for (size_t i = 0; i < net.output_count(); ++i) {
    INFO("output " << i);
    check_close(net.output(i), twice(s.tensors.at(s.expected[i])));
  }
}

// Decodes, passes the ladder with every tap lined up, and runs at twice the batch.
Graph check_recorded(const std::string& name) {
  const pb::Stream s = to_stream(load_doc(name));
  const Graph g = pytorch().decode(s);
  pbtest::check_passes(pbtest::ladder(s, pytorch()), s);
  check_twice_the_batch(s, g);
  return g;
}

// No IR node comes from fx node `name` (a Python value computed while decoding).
void check_no_node(const Graph& g, const std::string& name) {
  for (const pb::ir::Node& n : g.nodes) CHECK(n.origin.rfind("fx:" + name + " (", 0) != 0);
}

json modified(json doc, const std::function<void(json&)>& f) {
  f(doc);
  return doc;
}

}  // namespace

// ------------------------------------------------------------------ translations

TEST_CASE("pytorch shape: ShuffleNet's channel shuffle - x.size(), //, views with computed sizes, chunk", "[pytorch]") {
  const Graph g = check_recorded("channel_shuffle");
  for (const char* scalar : {"size", "getitem", "getitem_1", "getitem_2", "getitem_3", "floordiv", "getitem_4", "getitem_5"})
    check_no_node(g, scalar);
  // view(batchsize, 2, num_channels // 2, height, width): the batch stays open (0), the rest
  // are the captured sizes; view(batchsize, -1, height, width) keeps the user's -1.
  CHECK(node(g, "view").op == "Reshape");
  CHECK(node(g, "view").attrs.ints("shape") == Ints{0, 2, 3, 3, 4});
  CHECK(node(g, "view_1").attrs.ints("shape") == Ints{0, -1, 3, 4});
  // x.chunk(2, dim=1): a Slice per piece, the tuple's elements bound by getitem.
  for (int64_t k : {0, 1}) {
    const pb::ir::Node& piece = node(g, "chunk/" + std::to_string(k));
    CHECK(piece.op == "Slice");
    CHECK(piece.attrs.ints("axes") == Ints{1});
    CHECK(piece.attrs.ints("starts") == Ints{3 * k});
    CHECK(piece.attrs.ints("ends") == Ints{3 * k + 3});
  }
  CHECK(node(g, "branch").inputs[0] == "chunk/1");
  CHECK(node(g, "cat").inputs == Names{"chunk/0", "branch"});
}

TEST_CASE("pytorch shape: nanoGPT's attention - split, heads by view, 1/sqrt(k.size(-1)), masked_fill of a sliced tril, arange positions",
          "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("gpt_attention"));
  const Graph g = check_recorded("gpt_attention");
  for (const char* scalar : {"size", "getattr_1", "arange", "size_1", "floordiv", "size_2", "sqrt", "truediv"}) check_no_node(g, scalar);
  // torch.arange(0, t) of a traced size as the ids of wpe: its first t rows, a Slice of the table.
  const pb::ir::Node& wpe = node(g, "wpe");
  CHECK(wpe.op == "Slice");
  CHECK(wpe.inputs == Names{"wpe.weight"});
  CHECK(wpe.attrs.ints("starts") == Ints{0});
  CHECK(wpe.attrs.ints("ends") == Ints{4});
  // q, k, v = c_attn(x).split(n_embd, dim=2)
  CHECK(node(g, "split/2").attrs.ints("starts") == Ints{8});
  CHECK(node(g, "view").inputs == Names{"split/1"});
  CHECK(node(g, "view").attrs.ints("shape") == Ints{0, 4, 2, 2});
  CHECK(node(g, "view_3").attrs.ints("shape") == Ints{0, 4, 4});
  // * (1.0 / math.sqrt(k.size(-1))): the Python value as a constant.
  CHECK(node(g, "mul").inputs == Names{"matmul", "mul.rhs"});
  CHECK(g.weights.at("mul.rhs").data<float>()[0] == float(1.0 / std::sqrt(2.0)));
  // bias[:, :, :T, :T] == 0 -> a Compare (an i32 mask); masked_fill(mask, -inf) -> Where(mask, -inf, att).
  CHECK(node(g, "getitem_8").attrs.ints("ends") == Ints{4, 4});
  const pb::ir::Node& eq = node(g, "eq");
  CHECK(eq.op == "Compare");
  CHECK(eq.attrs.s("mode") == "eq");
  CHECK(eq.inputs == Names{"getitem_8", "eq.rhs"});
  const pb::ir::Node& fill = node(g, "masked_fill");
  CHECK(fill.op == "Where");
  CHECK(fill.inputs == Names{"eq", "masked_fill.value", "mul"});
  CHECK(g.weights.at("masked_fill.value").data<float>()[0] == -INFINITY);
  // x[:, [-1], :]: the last position, its dim kept.
  const pb::ir::Node& last = node(g, "getitem_9");
  CHECK(last.op == "Slice");
  CHECK(last.attrs.ints("starts") == Ints{-1});
  CHECK(last.attrs.ints("axes") == Ints{1});
  CHECK(s.tensors.at("output.0").shape() == pb::Shape{2, 1, 4});
}

TEST_CASE("pytorch shape: ViT's input - x.shape, torch._assert, the class token expanded to the batch, x[:, 0]", "[pytorch]") {
  const Graph g = check_recorded("class_token");
  for (const char* scalar : {"getattr_1", "eq", "_assert", "floordiv", "mul", "getattr_2", "dim", "eq_1", "_assert_1"}) check_no_node(g, scalar);
  // reshape(n, hidden, (h // p) * (w // p))
  CHECK(node(g, "reshape").attrs.ints("shape") == Ints{0, 4, 4});
  // class_token.expand(x.shape[0], -1, -1): the batch copied from x when compiled.
  const pb::ir::Node& expand = node(g, "expand");
  CHECK(expand.op == "Expand");
  CHECK(expand.inputs == Names{"class_token", "permute"});
  CHECK(expand.attrs.ints("shape") == Ints{0, -1, -1});
  CHECK(node(g, "getitem_5/slice").attrs.ints("starts") == Ints{0});
}

TEST_CASE("pytorch shape: split into sizes, unsqueeze, expand, numel, a size tuple extended, expand_as, squeeze, torch.where, -x",
          "[pytorch]") {
  const Graph g = check_recorded("shape_methods");
  CHECK(node(g, "split/0").attrs.ints("ends") == Ints{2});
  CHECK(node(g, "split/1").attrs.ints("starts") == Ints{2});
  CHECK(node(g, "unsqueeze").attrs.ints("shape") == Ints{0, 1, 2, 4});
  CHECK(node(g, "expand").attrs.ints("shape") == Ints{-1, 3, -1, -1});
  CHECK(node(g, "expand").inputs == Names{"unsqueeze"});
  // reshape(x.shape[0], s.numel() // x.shape[0]): 24·N // N is no form of the batch the graph
  // could copy, so the graph infers it.
  CHECK(node(g, "reshape").attrs.ints("shape") == Ints{0, -1});
  // b.view(b.size()[:-1] + (2, 2))
  CHECK(node(g, "view").attrs.ints("shape") == Ints{0, 4, 2, 2});
  // b[:, :1].expand_as(b): every dim of b, its batch copied from b itself.
  CHECK(node(g, "expand_as").inputs == Names{"getitem_5", "split/1"});
  CHECK(node(g, "expand_as").attrs.ints("shape") == Ints{0, 4, 4});
  CHECK(node(g, "squeeze").attrs.ints("shape") == Ints{0, 4, 4});
  CHECK(node(g, "neg").op == "Mul");
  CHECK(node(g, "gt").attrs.s("mode") == "gt");
  CHECK(node(g, "where").inputs == Names{"gt", "squeeze", "mul"});
}

// ------------------------------------------------------------------ refusals

TEST_CASE("pytorch shape: a false torch._assert, and one true for the captured batch only, are errors naming the node", "[pytorch]") {
  json doc = load_doc("class_token");
  json wrong = modified(doc, [](json& d) { fx_node(d, "eq")["args"][1] = 5; });
  CHECK_THROWS_MATCHES(decode(wrong), pb::Error,
                       ErrorAt(graph_path(doc, "_assert"), "torch._assert failed: Wrong image height! Expected 4 but got"));
  // x.shape[0] == 2 holds for the captured batch (2) and for no other.
  json batch = modified(doc, [](json& d) { fx_node(d, "eq")["args"] = json::array({{{"node", "getitem"}}, 2}); });
  CHECK_THROWS_MATCHES(decode(batch), pb::Error, ErrorAt(graph_path(doc, "_assert") + ".args[0]", "holds for the captured batch only"));
  // n == n holds for every batch.
  json same = modified(doc, [](json& d) { fx_node(d, "eq")["args"] = json::array({{{"node", "getitem"}}, {{"node", "getitem"}}}); });
  CHECK_NOTHROW(decode(same));
  json tensor = modified(doc, [](json& d) { fx_node(d, "_assert")["args"][0] = {{"node", "x"}}; });
  CHECK_THROWS_MATCHES(decode(tensor), pb::Error, ErrorAt(graph_path(doc, "_assert") + ".args[0]", "torch._assert on a tensor is not supported"));
}

TEST_CASE("pytorch shape: a reshape or expand that would fix the batch is refused, naming the node", "[pytorch]") {
  json doc = load_doc("channel_shuffle");
  // view(-1, batchsize, height, width): the batch away from its dim needs the -1 the user took.
  json moved_batch = modified(doc, [](json& d) { fx_node(d, "view_1")["args"][1] = -1, fx_node(d, "view_1")["args"][2] = {{"node", "getitem"}}; });
  CHECK_THROWS_MATCHES(decode(moved_batch), pb::Error, ErrorAt(graph_path(doc, "view_1"), "more than one size depends on the batch or is -1"));
  // Cutting the batch into pieces fixes how many there are.
  json chunk_batch = modified(doc, [](json& d) { fx_node(d, "chunk")["kwargs"]["dim"] = 0; });
  CHECK_THROWS_MATCHES(decode(chunk_batch), pb::Error, ErrorAt(graph_path(doc, "chunk"), "dim 0 depends on the batch"));

  json vit = load_doc("class_token");
  // expand(-1, n, -1): the batch at a dim where no value holds it.
  json moved = modified(vit, [](json& d) { fx_node(d, "expand")["args"] = json::array({{{"node", "class_token"}}, 1, {{"node", "getitem_4"}}, -1}); });
  CHECK_THROWS_MATCHES(decode(moved), pb::Error, ErrorAt(graph_path(vit, "expand"), "expand: size 1 (2) depends on the batch"));

  // x * n with n the batch: a constant would fix it.
  json shapes = load_doc("shape_methods");
  json scaled = modified(shapes, [](json& d) { fx_node(d, "mul")["args"][1] = {{"node", "getitem_2"}}; });
  CHECK_THROWS_MATCHES(decode(scaled), pb::Error, ErrorAt(graph_path(shapes, "mul") + ".args[1]", "depends on the batch"));
}

TEST_CASE("pytorch shape: out-of-range indexes, Python numbers where a tensor belongs and unsupported forms name their path",
          "[pytorch]") {
  json doc = load_doc("channel_shuffle");
  json tuple_index = modified(doc, [](json& d) { fx_node(d, "getitem_3")["args"][1] = 4; });
  CHECK_THROWS_MATCHES(decode(tuple_index), pb::Error, ErrorAt(graph_path(doc, "getitem_3") + ".args[1]", "index 4 is out of range for a tuple of 4"));
  json negative = modified(doc, [](json& d) { fx_node(d, "getitem_3")["args"][1] = -5; });
  CHECK_THROWS_MATCHES(decode(negative), pb::Error, ErrorAt(graph_path(doc, "getitem_3") + ".args[1]", "index -5 is out of range"));
  json tensor_floordiv = modified(doc, [](json& d) { fx_node(d, "floordiv")["args"][0] = {{"node", "conv"}}; });
  CHECK_THROWS_MATCHES(decode(tensor_floordiv), pb::Error, ErrorAt(graph_path(doc, "floordiv"), "a tensor operand of // is not supported"));

  json gpt = load_doc("gpt_attention");
  json tensor_index = modified(gpt, [](json& d) { fx_node(d, "getitem_9")["args"][1][1] = json::array({7}); });
  CHECK_THROWS_MATCHES(decode(tensor_index), pb::Error,
                       ErrorAt(graph_path(gpt, "getitem_9") + ".args[1][1]", "index 7 is out of range for dim 1 of size 4"));
  json gather = modified(gpt, [](json& d) { fx_node(d, "getitem_9")["args"][1][1] = json::array({0, 1}); });
  CHECK_THROWS_MATCHES(decode(gather), pb::Error, ErrorAt(graph_path(gpt, "getitem_9") + ".args[1][1]", "is not supported"));
  json number_mask = modified(gpt, [](json& d) { fx_node(d, "masked_fill")["args"][1] = {{"node", "getitem_3"}}; });
  CHECK_THROWS_MATCHES(decode(number_mask), pb::Error,
                       ErrorAt(graph_path(gpt, "masked_fill") + ".args[1]", "\"getitem_3\" is a Python number computed from shapes, not a tensor"));
  json float_range = modified(gpt, [](json& d) { fx_node(d, "arange")["kwargs"]["dtype"] = {{"repr", "torch.float32"}}; });
  CHECK_THROWS_MATCHES(decode(float_range), pb::Error,
                       ErrorAt(graph_path(gpt, "arange") + ".kwargs.dtype", "torch.arange with dtype torch.float32 is not supported"));
  json past_table = modified(gpt, [](json& d) { fx_node(d, "arange")["args"][1] = 6; });
  CHECK_THROWS_MATCHES(decode(past_table), pb::Error, ErrorAt(graph_path(gpt, "wpe"), "ids 0..5 (torch.arange) are out of range for 5 rows"));
}

// ------------------------------------------------------------------ transpose spellings, float32 softmax

TEST_CASE("pytorch shape: swapaxes, swapdims, x.mT / x.mH are transposes, softmax with dtype float32 (or x.dtype) is a softmax, .to(x.dtype) none",
          "[pytorch]") {
  const Graph g = check_recorded("swap_forms");
  // x.swapaxes(1, 2), torch.swapaxes(axis0=-1, axis1=1), torch.swapdims(1, 2), x.swapdims(-1, -2), .mT, .mH: [2, 3, 4] <-> [2, 4, 3].
  for (const char* swap : {"swapaxes", "swapaxes_1", "swapdims", "swapdims_1", "getattr_1", "getattr_2"}) {
    INFO(swap);
    CHECK(node(g, swap).op == "Transpose");
    CHECK(node(g, swap).attrs.ints("perm") == Ints{0, 2, 1});
  }
  // F.softmax(dtype=torch.float32), torch.softmax(x, -1, torch.float32), x.softmax(1, dtype=x.dtype): no cast;
  // x.dtype is a Python value (no node), .to(x.dtype) of float32 an Identity.
  CHECK(node(g, "softmax").op == "Softmax");
  CHECK(node(g, "softmax").inputs == Names{"getattr_2"});
  CHECK(node(g, "softmax_1").attrs.i("axis") == -1);
  CHECK(node(g, "softmax_2").attrs.i("axis") == 1);
  CHECK(node(g, "to").op == "Identity");
  check_no_node(g, "getattr_3");
  check_no_node(g, "getattr_4");
}

TEST_CASE("pytorch shape: a softmax to another dtype, a transpose spelling it cannot compute, or a dtype as a number is refused naming its path",
          "[pytorch]") {
  const json doc = load_doc("swap_forms");
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& path, const std::string& message) {
    json d = doc;
    edit(d);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(path, message));
  };
  refused([](json& d) { fx_node(d, "softmax")["kwargs"]["dtype"] = {{"repr", "torch.float64"}}; }, graph_path(doc, "softmax") + ".kwargs.dtype",
          "softmax with dtype {\"repr\":\"torch.float64\"} is not supported (float32 only");
  refused([](json& d) { fx_node(d, "softmax_1")["args"][2] = {{"repr", "torch.float16"}}; }, graph_path(doc, "softmax_1") + ".args[2]",
          "softmax with dtype {\"repr\":\"torch.float16\"} is not supported");
  refused([](json& d) { fx_node(d, "getattr_1")["args"][1] = "T"; }, graph_path(doc, "getattr_1") + ".args[1]",
          "getattr(tensor, \"T\") is not supported (shape, ndim, device, dtype, mT and mH are)");
  // x.dtype is no number.
  refused([](json& d) { fx_node(d, "add")["args"][1] = {{"node", "getattr_4"}}; }, graph_path(doc, "add") + ".args[1]", "a dtype is not a number");
  refused([](json& d) { fx_node(d, "swapaxes_1")["kwargs"].erase("axis1"); }, graph_path(doc, "swapaxes_1"), "swapaxes needs axis0 and axis1");
  refused([](json& d) { fx_node(d, "swapdims")["args"][1] = 3; }, graph_path(doc, "swapdims"), "transpose dim 3");
}

// ------------------------------------------------------------------ LLaMA's pieces

TEST_CASE("pytorch shape: LLaMA's pieces - RMSNorm by pow, mean, rsqrt, float/type_as; rotate_half by ...; repeat_kv by None and expand;"
          " repeat_interleave; to, pow, sqrt, **",
          "[pytorch]") {
  const Graph g = check_recorded("llama_pieces");
  // x.pow(2) and x ** 2: x · x, as torch computes them; torch.pow(x, 3): x · x · x.
  CHECK(node(g, "pow_1").op == "Mul");
  CHECK(node(g, "pow_1").inputs == Names{"x", "x"});
  CHECK(node(g, "pow_3").inputs == Names{"x", "x"});
  CHECK(node(g, "pow_2").inputs == Names{"pow_2/square", "to"});
  CHECK(node(g, "rsqrt").op == "Activation");
  CHECK(node(g, "rsqrt").attrs.s("function") == "rsqrt");
  CHECK(node(g, "sqrt").attrs.s("function") == "sqrt");
  for (const char* cast : {"float_1", "type_as", "to"}) CHECK(node(g, cast).op == "Identity");  // float32 already
  // x[..., 2:] and x[..., :2]: the Ellipsis stands for the leading dims.
  CHECK(node(g, "getitem").op == "Slice");
  CHECK(node(g, "getitem").attrs.ints("axes") == Ints{3});
  CHECK(node(g, "getitem").attrs.ints("starts") == Ints{2});
  CHECK(node(g, "getitem_1").attrs.ints("ends") == Ints{2});
  // x[:, :, None, :, :]: a dim of 1, the batch kept open; expand(b, h, 3, t, d); reshape(b, h * 3, t, d).
  CHECK(node(g, "getitem_6").op == "Reshape");
  CHECK(node(g, "getitem_6").attrs.ints("shape") == Ints{0, 2, 1, 2, 4});
  CHECK(node(g, "expand").attrs.ints("shape") == Ints{-1, 2, 3, 2, 4});
  CHECK(node(g, "reshape").attrs.ints("shape") == Ints{0, 6, 2, 4});
  // x.repeat_interleave(2, dim=1): [N, 2, 2, 4] -> [N, 2, 1, 2, 4] -> expanded [N, 2, 2, 2, 4] -> [N, 4, 2, 4].
  CHECK(node(g, "repeat_interleave/apart").attrs.ints("shape") == Ints{0, 2, 1, 2, 4});
  CHECK(node(g, "repeat_interleave/expanded").attrs.ints("shape") == Ints{-1, -1, 2, -1, -1});
  CHECK(node(g, "repeat_interleave").attrs.ints("shape") == Ints{0, 4, 2, 4});
  // The method forms, and torch.repeat_interleave along the last dim (then every other element).
  CHECK(node(g, "sqrt_1").attrs.s("function") == "sqrt");
  CHECK(node(g, "rsqrt_1").attrs.s("function") == "rsqrt");
  CHECK(node(g, "repeat_interleave_1").attrs.ints("shape") == Ints{0, 2, 2, 8});
}

TEST_CASE("pytorch shape: powers, casts, repeat_interleave and indexes the IR cannot compute are refused, naming their path", "[pytorch]") {
  const json doc = load_doc("llama_pieces");
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& path, const std::string& message) {
    json d = doc;
    edit(d);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(path, message));
  };
  refused([](json& d) { fx_node(d, "pow_2")["args"][1] = 4; }, graph_path(doc, "pow_2") + ".args[1]",
          "pow with exponent 4 is not supported (1, 2, 3, 0.5 and -0.5 are)");
  refused([](json& d) { fx_node(d, "pow_2")["args"][1] = {{"node", "x"}}; }, graph_path(doc, "pow_2") + ".args[1]",
          "the exponent must be a Python number");
  refused([](json& d) { fx_node(d, "to")["args"][1] = {{"repr", "torch.float16"}}; }, graph_path(doc, "to") + ".args[1]",
          "x.to({\"repr\":\"torch.float16\"}) is not supported");
  refused([](json& d) { fx_node(d, "repeat_interleave")["kwargs"].erase("dim"); }, graph_path(doc, "repeat_interleave"),
          "repeat_interleave without dim repeats the flattened input; not supported");
  refused([](json& d) { fx_node(d, "repeat_interleave")["kwargs"]["dim"] = 0; }, graph_path(doc, "repeat_interleave") + ".kwargs.dim",
          "repeat_interleave along a dim that depends on the batch");
  refused([](json& d) { fx_node(d, "repeat_interleave")["args"][1] = {{"node", "x"}}; }, graph_path(doc, "repeat_interleave") + ".args[1]",
          "repeats must be a Python int");
  refused([](json& d) { fx_node(d, "getitem")["args"][1] = json::parse(R"([{"repr": "Ellipsis"}, {"repr": "Ellipsis"}])"); },
          graph_path(doc, "getitem") + ".args[1]", "an index can have only one Ellipsis");
  refused([](json& d) { fx_node(d, "getitem")["args"][1] = json::parse(R"([0, 0, null, 0, 0, 0])"); }, graph_path(doc, "getitem") + ".args[1]",
          "5 indices for a tensor of rank 4");
}

// ------------------------------------------------------------------ interleaved rotary embeddings

TEST_CASE("pytorch shape: interleaved RoPE - x[..., ::2] and x[..., 1::2], torch.stack on a new dim, flatten(-2); stack's forms",
          "[pytorch]") {
  const Graph g = check_recorded("rope_interleaved");
  // x[..., ::2], x[..., 1::2]: one strided Slice of the last dim each.
  CHECK(node(g, "getitem").op == "Slice");
  CHECK(node(g, "getitem").attrs.ints("axes") == Ints{3});
  CHECK(node(g, "getitem").attrs.ints("starts") == Ints{0});
  CHECK(node(g, "getitem").attrs.ints("steps") == Ints{2});
  CHECK(node(g, "getitem_1").attrs.ints("starts") == Ints{1});
  CHECK(node(g, "getitem_1").attrs.ints("steps") == Ints{2});
  // torch.stack((a, b), dim=-1) on [N, 2, 3, 2]: each [N, 2, 3, 2, 1] (the batch kept open), joined along dim 4.
  CHECK(node(g, "stack").op == "Concat");
  CHECK(node(g, "stack").attrs.i("axis") == 4);
  CHECK(node(g, "stack").inputs == Names{"stack/0", "stack/1"});
  CHECK(node(g, "stack/0").op == "Reshape");
  CHECK(node(g, "stack/0").inputs == Names{"sub"});
  CHECK(node(g, "stack/0").attrs.ints("shape") == Ints{0, 2, 3, 2, 1});
  // .flatten(-2) and torch.flatten(t, -2): the last two dims merged.
  for (const char* f : {"flatten", "flatten_1"}) {
    CHECK(node(g, f).op == "Flatten");
    CHECK(node(g, f).attrs.i("start") == -2);
    CHECK(node(g, f).attrs.i("end") == -1);
  }
  // torch.stack((b, a), 1): a positional dim; torch.stack([x, -x, x * 2], dim=2): three tensors.
  CHECK(node(g, "stack_2").attrs.i("axis") == 1);
  CHECK(node(g, "stack_2/0").attrs.ints("shape") == Ints{0, 1, 2, 3, 2});
  CHECK(node(g, "stack_3").attrs.i("axis") == 2);
  CHECK(node(g, "stack_3").inputs == Names{"stack_3/0", "stack_3/1", "stack_3/2"});
  CHECK(node(g, "stack_3/2").attrs.ints("shape") == Ints{0, 2, 1, 3, 4});
}

TEST_CASE("pytorch shape: a torch.stack the IR cannot compute, and RoPE's complex form, are refused naming what", "[pytorch]") {
  const json doc = load_doc("rope_interleaved");
  auto refused = [&](const std::function<void(json&)>& edit, const std::string& path, const std::string& message) {
    json d = doc;
    edit(d);
    CHECK_THROWS_MATCHES(decode(d), pb::Error, ErrorAt(path, message));
  };
  refused([](json& d) { fx_node(d, "stack")["args"][0][1] = {{"node", "x"}}; }, graph_path(doc, "stack") + ".args[0]",
          "torch.stack needs tensors of one shape: element 1 is [2, 2, 3, 4], element 0 [2, 2, 3, 2]");
  refused([](json& d) { fx_node(d, "stack")["args"][0] = json::array(); }, graph_path(doc, "stack") + ".args[0]",
          "torch.stack needs at least one tensor");
  refused([](json& d) { fx_node(d, "stack")["args"][0] = {{"node", "x"}}; }, graph_path(doc, "stack") + ".args[0]",
          "expected a tuple (a tuple literal or a node returning one)");
  refused([](json& d) { fx_node(d, "stack")["kwargs"]["dim"] = 5; }, graph_path(doc, "stack"), "stack dim 5");
  refused([](json& d) { fx_node(d, "stack")["kwargs"]["out"] = {{"node", "x"}}; }, graph_path(doc, "stack") + ".kwargs.out",
          "attribute not understood for torch.stack (known: tensors, dim)");
  // Meta's LLaMA rotates pairs as complex numbers: torch.view_as_complex / torch.polar / view_as_real
  // are named, not translated (a complex buffer, freqs_cis, is refused by the capture already).
  refused(
      [](json& d) {
        fx_node(d, "stack")["target"] = "torch.view_as_complex";
        fx_node(d, "stack_1")["target"] = "torch.polar";
      },
      "model.graph", "2 nodes use what this planet cannot translate: function \"torch.polar\" (model.graph[16]), function \"torch.view_as_complex\" (model.graph[11])");
}
