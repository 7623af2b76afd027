// The pytorch decoder's spatial, normalisation, embedding, arithmetic and layout translators
// (plugins/pytorch/decoder.cpp) on small streams recorded from real torch 1.13 with taps
// (plugins/pytorch/tests/streams/make_streams.py; no torch needed here). Each stream's expected outputs
// and taps are torch's own; the IR is checked attribute by attribute, run, and sent up the
// ladder. Error cases mutate copies of those documents.
#include <algorithm>
#include <cmath>
#include <iomanip>

#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "fx_doc.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_close;
using pbtest::max_diff;
using pbtest::check_outputs;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::node;
using pbtest::run;
using pbtest::to_stream;
using pytorch_test::fx_node;
using pytorch_test::graph_path;

namespace {

const pb::Dialect& pytorch() { return pbtest::planet(); }

using Ints = std::vector<int64_t>;
using Names = std::vector<std::string>;

const char* const kRecorded[] = {"conv2d_same_even", "conv_groups", "conv1d_pools", "conv3d_pools",   "pools2d", "pools_ceil_adaptive", "conv_bn_relu",
                                 "batchnorms",       "norms",       "embedding",    "shared_input_dag", "layout"};

}  // namespace

// ------------------------------------------------------------------ convolutions

TEST_CASE("pytorch spatial: Conv2d weight [O, I, kh, kw] as is; an even kernel under \"same\" pads total//2 first", "[pytorch]") {
  json doc = load_doc("conv2d_same_even");
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 2, 5, 6});

  const pb::ir::Node& a = node(g, "a");  // Conv2d(2, 3, (4, 2), padding="same")
  CHECK(a.op == "Conv");
  CHECK(a.origin == "fx:a (Conv2d)");
  CHECK(a.inputs == Names{"x", "a.weight", "a.bias"});
  // torch's weight layout is the IR's: no copy, no transpose (I != O and the kernel not square).
  CHECK(g.weights.at("a.weight").shape() == pb::Shape{3, 2, 4, 2});
  CHECK(g.weights.at("a.weight").bit_equal(s.tensors.at("a.weight")));
  CHECK(a.attrs.ints("strides") == Ints{1, 1});
  CHECK(a.attrs.ints("dilations") == Ints{1, 1});
  // Totals (4-1, 2-1) = (3, 1): torch puts 3//2 = 1 and 1//2 = 0 first, the rest at the end.
  CHECK(a.attrs.ints("pads_begin") == Ints{1, 0});
  CHECK(a.attrs.ints("pads_end") == Ints{2, 1});
  CHECK(a.attrs.i("groups") == 1);

  CHECK(node(g, "relu").op == "Activation");
  const pb::ir::Node& b = node(g, "b");  // Conv2d(3, 2, (2, 3), stride=(2, 1), padding=(1, 0))
  CHECK(b.inputs == Names{"relu", "b.weight", "b.bias"});
  CHECK(g.weights.at("b.weight").shape() == pb::Shape{2, 3, 2, 3});
  CHECK(b.attrs.ints("strides") == Ints{2, 1});
  CHECK(b.attrs.ints("pads_begin") == Ints{1, 0});
  CHECK(b.attrs.ints("pads_end") == Ints{1, 0});
  CHECK(g.outputs == Names{"b"});

  const Tensor got = run(s, g)[0];
  CHECK(got.shape() == pb::Shape{2, 2, 3, 4});
  check_close(got, s.tensors.at("output.0"));

  // The stream tells the splits apart: the extra pad first (TF-style mistakes the other way
  // round are easy) gives other numbers.
  Graph swapped = g;
  for (pb::ir::Node& n : swapped.nodes)
    if (n.name == "a") {
      n.attrs.set("pads_begin", Ints{2, 1});
      n.attrs.set("pads_end", Ints{1, 0});
    }
  CHECK(max_diff(run(s, swapped)[0], s.tensors.at("output.0")) > 0.05);
}

TEST_CASE("pytorch spatial: grouped (groups=2, stride 2) and depthwise (dilation 2, no bias) Conv2d", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("conv_groups"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& grouped = node(g, "grouped");  // Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
  CHECK(grouped.inputs == Names{"x", "grouped.weight", "grouped.bias"});
  CHECK(g.weights.at("grouped.weight").shape() == pb::Shape{6, 2, 3, 3});  // [O, I/groups, k, k]
  CHECK(grouped.attrs.i("groups") == 2);
  CHECK(grouped.attrs.ints("strides") == Ints{2, 2});
  CHECK(grouped.attrs.ints("pads_begin") == Ints{1, 1});
  CHECK(grouped.attrs.ints("pads_end") == Ints{1, 1});
  CHECK(grouped.attrs.ints("dilations") == Ints{1, 1});

  const pb::ir::Node& dw = node(g, "depthwise");  // Conv2d(6, 6, 3, padding=2, dilation=2, groups=6, bias=False)
  CHECK(dw.inputs == Names{"grouped", "depthwise.weight"});
  CHECK(g.weights.at("depthwise.weight").shape() == pb::Shape{6, 1, 3, 3});
  CHECK(dw.attrs.i("groups") == 6);
  CHECK(dw.attrs.ints("dilations") == Ints{2, 2});
  CHECK(dw.attrs.ints("pads_begin") == Ints{2, 2});
  CHECK(dw.attrs.ints("pads_end") == Ints{2, 2});
  CHECK(g.weights.count("depthwise.bias") == 0);

  const Tensor got = run(s, g)[0];
  CHECK(got.shape() == pb::Shape{1, 6, 4, 4});
  check_close(got, s.tensors.at("output.0"));
}

TEST_CASE("pytorch spatial: Conv1d \"same\" with an even kernel, MaxPool1d and AvgPool1d with padding", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("conv1d_pools"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& conv = node(g, "conv");  // Conv1d(3, 2, 4, padding="same")
  CHECK(conv.op == "Conv");
  CHECK(g.weights.at("conv.weight").shape() == pb::Shape{2, 3, 4});
  CHECK(conv.attrs.ints("pads_begin") == Ints{1});
  CHECK(conv.attrs.ints("pads_end") == Ints{2});
  CHECK(conv.attrs.ints("strides") == Ints{1});

  const pb::ir::Node& mp = node(g, "maxpool");  // MaxPool1d(3, stride=2, padding=1)
  CHECK(mp.op == "Pool");
  CHECK(mp.origin == "fx:maxpool (MaxPool1d)");
  CHECK(mp.attrs.s("mode") == "max");
  CHECK(mp.attrs.ints("kernel") == Ints{3});
  CHECK(mp.attrs.ints("strides") == Ints{2});
  CHECK(mp.attrs.ints("pads_begin") == Ints{1});
  CHECK(mp.attrs.ints("pads_end") == Ints{1});

  const pb::ir::Node& ap = node(g, "avgpool");  // AvgPool1d(2, padding=1, count_include_pad=False)
  CHECK(ap.attrs.s("mode") == "avg");
  CHECK(ap.attrs.ints("kernel") == Ints{2});
  CHECK(ap.attrs.ints("strides") == Ints{2});  // torch's default stride: the kernel
  CHECK(ap.attrs.ints("pads_begin") == Ints{1});
  CHECK(ap.attrs.ints("pads_end") == Ints{1});
  CHECK(ap.attrs.i("count_include_pad") == 0);

  const Tensor got = run(s, g)[0];
  CHECK(got.shape() == pb::Shape{2, 2, 3});
  check_close(got, s.tensors.at("output.0"));
}

TEST_CASE("pytorch spatial: Conv3d with per-dim stride and padding, 3-d pools and global pools", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("conv3d_pools"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& conv = node(g, "conv");  // Conv3d(2, 3, (2, 3, 2), stride=(1, 2, 1), padding=(1, 1, 0))
  CHECK(g.weights.at("conv.weight").shape() == pb::Shape{3, 2, 2, 3, 2});
  CHECK(conv.attrs.ints("strides") == Ints{1, 2, 1});
  CHECK(conv.attrs.ints("pads_begin") == Ints{1, 1, 0});
  CHECK(conv.attrs.ints("pads_end") == Ints{1, 1, 0});
  CHECK(conv.attrs.ints("dilations") == Ints{1, 1, 1});

  const pb::ir::Node& mp = node(g, "maxpool");  // MaxPool3d(2, stride=1)
  CHECK(mp.attrs.ints("kernel") == Ints{2, 2, 2});
  CHECK(mp.attrs.ints("strides") == Ints{1, 1, 1});
  CHECK(mp.attrs.ints("pads_begin") == Ints{0, 0, 0});
  const pb::ir::Node& ap = node(g, "avgpool");  // AvgPool3d((2, 1, 1), padding=(1, 0, 0))
  CHECK(ap.attrs.ints("kernel") == Ints{2, 1, 1});
  CHECK(ap.attrs.ints("strides") == Ints{2, 1, 1});
  CHECK(ap.attrs.ints("pads_begin") == Ints{1, 0, 0});
  CHECK(ap.attrs.i("count_include_pad") == 1);

  // AdaptiveMaxPool3d(1) and AdaptiveAvgPool3d((1, 1, 1)): global pools.
  CHECK(node(g, "gmax").attrs.s("mode") == "max");
  CHECK(node(g, "gmax").attrs.i("global") == 1);
  CHECK(node(g, "gavg").attrs.s("mode") == "avg");
  CHECK(node(g, "gavg").attrs.i("global") == 1);
  CHECK(g.outputs == Names{"gmax", "gavg"});
  check_outputs(s, g);
}

TEST_CASE("pytorch spatial: max/avg pools with padding, dilation and count_include_pad True and False", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("pools2d"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& max_pad = node(g, "max_pad");  // MaxPool2d(3, stride=2, padding=1)
  CHECK(max_pad.attrs.ints("kernel") == Ints{3, 3});
  CHECK(max_pad.attrs.ints("strides") == Ints{2, 2});
  CHECK(max_pad.attrs.ints("pads_begin") == Ints{1, 1});
  CHECK(max_pad.attrs.ints("pads_end") == Ints{1, 1});
  const pb::ir::Node& max_dil = node(g, "max_dil");  // MaxPool2d((2, 3), stride=(1, 2), dilation=(2, 1))
  CHECK(max_dil.attrs.ints("kernel") == Ints{2, 3});
  CHECK(max_dil.attrs.ints("strides") == Ints{1, 2});
  CHECK(max_dil.attrs.ints("dilations") == Ints{2, 1});
  const pb::ir::Node& avg_incl = node(g, "avg_incl");  // AvgPool2d(3, stride=2, padding=1)
  CHECK(avg_incl.attrs.i("count_include_pad") == 1);
  CHECK(avg_incl.attrs.ints("pads_begin") == Ints{1, 1});
  const pb::ir::Node& avg_excl = node(g, "avg_excl");  // AvgPool2d((2, 3), stride=1, padding=1, count_include_pad=False)
  CHECK(avg_excl.attrs.i("count_include_pad") == 0);
  CHECK(avg_excl.attrs.ints("kernel") == Ints{2, 3});
  CHECK(avg_excl.attrs.ints("strides") == Ints{1, 1});
  CHECK(avg_excl.attrs.ints("pads_end") == Ints{1, 1});
  CHECK(node(g, "gavg").attrs.i("global") == 1);  // AdaptiveAvgPool2d(1)
  CHECK(node(g, "gmax").attrs.i("global") == 1);  // AdaptiveMaxPool2d((1, 1))
  REQUIRE(g.outputs.size() == 6);

  const std::vector<Tensor> out = run(s, g);
  REQUIRE(out.size() == 6);
  for (size_t i = 0; i < out.size(); ++i) {
    INFO("output " << i << " (" << g.outputs[i] << ")");
    check_close(out[i], s.tensors.at(s.expected[i]));
  }
  // The input is all negative: a max pool padded with zeros would put 0 on the border.
  for (int64_t i = 0; i < out[0].numel(); ++i) CHECK(out[0].data<float>()[i] < 0.f);

  // count_include_pad is visible in the border windows, both ways.
  Graph flipped = g;
  for (pb::ir::Node& n : flipped.nodes) {
    if (n.name == "avg_incl") n.attrs.set("count_include_pad", int64_t(0));
    if (n.name == "avg_excl") n.attrs.set("count_include_pad", int64_t(1));
  }
  const std::vector<Tensor> wrong = run(s, flipped);
  CHECK(max_diff(wrong[2], s.tensors.at(s.expected[2])) > 0.05);
  CHECK(max_diff(wrong[3], s.tensors.at(s.expected[3])) > 0.05);
}

TEST_CASE("pytorch spatial: ceil_mode as extra end padding, adaptive pools to any size, reductions, functional pools", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("pools_ceil_adaptive"));
  const Graph g = pytorch().decode(s);
  // MaxPool2d(3, stride=2, ceil_mode=True) on 5 x 6: no window starts past row 2, a third one at column 4.
  CHECK(node(g, "max_ceil").attrs.ints("pads_end") == Ints{0, 1});
  // AvgPool2d(2, stride=2, ceil_mode=True): torch divides the partial window by what it sees.
  CHECK(node(g, "avg_ceil").attrs.ints("pads_end") == Ints{1, 0});
  CHECK(node(g, "avg_ceil").attrs.i("count_include_pad") == 0);
  // AdaptiveAvgPool2d((3, 4)) of 5 x 6: a constant [out, in] matrix per dim, the last dim first.
  CHECK(node(g, "adapt/pool1").op == "MatMul");
  CHECK(node(g, "adapt").op == "MatMul");
  // AdaptiveMaxPool2d((5, 3)) of 5 x 6: both divide, a plain pool.
  CHECK(node(g, "adapt_div").attrs.ints("kernel") == Ints{1, 2});
  CHECK(node(g, "mean").attrs.ints("axes") == Ints{2, 3});
  CHECK(node(g, "amax").attrs.i("keepdims") == 1);
  // F.max_pool2d(x, 2, ceil_mode=True) and F.avg_pool2d(x, 3, stride=1, padding=1) (torch._C._nn.avg_pool2d).
  CHECK(node(g, "max_pool2d").attrs.ints("pads_end") == Ints{1, 0});
  CHECK(node(g, "avg_pool2d").attrs.i("count_include_pad") == 1);
  check_outputs(s, g);
}

// ------------------------------------------------------------------ normalisation

TEST_CASE("pytorch spatial: Conv -> BatchNorm2d -> ReLU; BatchNorm affine=False gets scale 1, shift 0", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("conv_bn_relu"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& conv = node(g, "conv");
  CHECK(conv.inputs == Names{"x", "conv.weight"});  // bias=False
  const pb::ir::Node& bn = node(g, "bn");
  CHECK(bn.op == "BatchNorm");
  CHECK(bn.origin == "fx:bn (BatchNorm2d)");
  CHECK(bn.inputs == Names{"conv", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"});
  CHECK(bn.attrs.f("eps") == 1e-5);  // torch's default, from the module
  CHECK(g.weights.at("bn.running_var").bit_equal(s.tensors.at("bn.running_var")));
  CHECK(node(g, "relu").attrs.s("function") == "relu");

  const pb::ir::Node& plain = node(g, "bn_plain");  // BatchNorm2d(3, affine=False): no params
  CHECK(plain.inputs == Names{"relu", "bn_plain.scale", "bn_plain.shift", "bn_plain.running_mean", "bn_plain.running_var"});
  CHECK(plain.attrs.f("eps") == 1e-5);
  CHECK(pbtest::values(g.weights.at("bn_plain.scale")) == std::vector<float>{1.f, 1.f, 1.f});
  CHECK(pbtest::values(g.weights.at("bn_plain.shift")) == std::vector<float>{0.f, 0.f, 0.f});
  // num_batches_tracked is in the stream and deliberately not a weight (inference never reads it).
  REQUIRE(s.tensors.count("bn.num_batches_tracked") == 1);
  CHECK(g.weights.count("bn.num_batches_tracked") == 0);
  CHECK(g.weights.count("bn_plain.num_batches_tracked") == 0);
  check_outputs(s, g);
}

TEST_CASE("pytorch spatial: BatchNorm1d on [N, C] and [N, C, L] (one module called twice), BatchNorm3d", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("batchnorms"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.inputs.size() == 3);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 3});
  CHECK(g.inputs[1].shape == pb::Shape{-1, 3, 4});
  CHECK(g.inputs[2].shape == pb::Shape{-1, 2, 2, 2, 3});
  CHECK(node(g, "bn1").inputs == Names{"a", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"});
  // The second call of the same module shares its weights.
  CHECK(node(g, "bn1_1").inputs == Names{"b", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var"});
  CHECK(node(g, "bn3").origin == "fx:bn3 (BatchNorm3d)");
  CHECK(g.outputs == Names{"bn1", "bn1_1", "bn3"});
  check_outputs(s, g);
}

TEST_CASE("pytorch spatial: LayerNorm over the last two dims, the composed RMSNorm leaf, LayerNorm without affine", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("norms"));
  REQUIRE(s.composed.size() == 1);  // the stream says the RMSNorm is composed from torch ops
  CHECK(s.composed[0].rfind("RMSNorm", 0) == 0);
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& ln = node(g, "ln");  // LayerNorm((3, 4))
  CHECK(ln.op == "LayerNorm");
  CHECK(ln.inputs == Names{"x", "ln.weight", "ln.bias"});
  CHECK(g.weights.at("ln.weight").shape() == pb::Shape{3, 4});
  CHECK(ln.attrs.i("axis") == -2);  // -len(normalized_shape)
  CHECK(ln.attrs.f("eps") == 1e-5);

  const pb::ir::Node& rms = node(g, "rms");  // the capture's RMSNorm(4, eps=1e-5), kept a leaf
  CHECK(rms.op == "RMSNorm");
  CHECK(rms.origin == "fx:rms (RMSNorm)");
  CHECK(rms.inputs == Names{"ln", "rms.weight"});
  CHECK(rms.attrs.i("axis") == -1);
  CHECK(rms.attrs.f("eps") == 1e-5);

  const pb::ir::Node& plain = node(g, "ln_plain");  // LayerNorm(4, eps=1e-3, elementwise_affine=False)
  CHECK(plain.inputs == Names{"rms", "", ""});
  CHECK(plain.attrs.i("axis") == -1);
  CHECK(plain.attrs.f("eps") == 1e-3);
  check_outputs(s, g);

  // Normalising over the last dim only (axis -1) gives other numbers.
  Graph last_only = g;
  for (pb::ir::Node& n : last_only.nodes)
    if (n.name == "ln") n.attrs.set("axis", int64_t(-1));
  last_only.weights["ln.weight"] = pbtest::f32({4}, {1, 1, 1, 1});
  last_only.weights["ln.bias"] = pbtest::f32({4}, {0, 0, 0, 0});
  CHECK(max_diff(run(s, last_only)[0], s.tensors.at("output.0")) > 0.05);
}

TEST_CASE("pytorch spatial: LayerNorm without bias and RMSNorm without weight (torch >= 2.4 captures)", "[pytorch]") {
  // LayerNorm(bias=False) (torch >= 2.1) and nn.RMSNorm(elementwise_affine=False) send no such
  // parameter; the results are torch's recorded taps less the bias / over the weight.
  const pb::Stream full = to_stream(load_doc("norms"));
  json doc = load_doc("norms");
  doc["model"]["modules"]["ln"]["params"].erase("bias");
  doc["model"]["graph"].erase(doc["model"]["graph"].begin() + 2, doc["model"]["graph"].end() - 1);  // x, ln, output
  doc["model"]["graph"].back()["args"] = json::array({json{{"node", "ln"}}});
  // Every stream tensor must be used: the parameters of what was cut away go too.
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"ln.bias\"]", "not used by any part of the model"));
  doc["tensors"].erase("ln.bias");
  doc["tensors"].erase("rms.weight");
  pb::Stream s = to_stream(doc);
  Graph g = pytorch().decode(s);
  CHECK(node(g, "ln").inputs == Names{"x", "ln.weight", ""});
  Tensor want = s.tensors.at("tap.ln").clone();
  const Tensor& bias = full.tensors.at("ln.bias");
  for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] -= bias.data<float>()[i % bias.numel()];
  check_close(run(s, g)[0], want);

  doc = load_doc("norms");
  doc["model"]["modules"]["rms"]["params"] = json::object();
  doc["model"]["modules"]["rms"]["attrs"]["elementwise_affine"] = false;
  doc["model"]["graph"].erase(doc["model"]["graph"].begin() + 3);  // x, ln, rms, output
  doc["model"]["graph"].back()["args"] = json::array({json{{"node", "rms"}}});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"rms.weight\"]", "not used by any part of the model"));
  doc["tensors"].erase("rms.weight");
  s = to_stream(doc);
  g = pytorch().decode(s);
  CHECK(node(g, "rms").inputs == Names{"ln"});
  want = s.tensors.at("tap.rms").clone();
  const Tensor& weight = full.tensors.at("rms.weight");
  for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] /= weight.data<float>()[i % weight.numel()];
  check_close(run(s, g)[0], want, 1e-5, 1e-5);
}

// ------------------------------------------------------------------ embedding

TEST_CASE("pytorch spatial: Embedding takes i64 ids - an out-of-range id stops the run naming the node and the id", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("embedding"));
  const Graph g = pytorch().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].dtype == pb::DType::i64);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 5});
  const pb::ir::Node& emb = node(g, "emb");
  CHECK(emb.op == "Embedding");
  CHECK(emb.inputs == Names{"ids", "emb.weight"});
  CHECK(g.weights.at("emb.weight").shape() == pb::Shape{7, 3});
  CHECK(node(g, "transpose").attrs.ints("perm") == Ints{0, 2, 1});  // .transpose(1, 2)
  CHECK(node(g, "conv").attrs.ints("pads_begin") == Ints{0});      // kernel 2 "same": the pad after
  CHECK(node(g, "conv").attrs.ints("pads_end") == Ints{1});
  CHECK(node(g, "pool").attrs.i("global") == 1);
  CHECK(node(g, "flatten").attrs.i("start") == 1);

  // One compiled network: the recorded ids run, then an id past the table stops the run.
  pb::Network net(g, {{"ids", s.tensors.at("input.0").shape()}});
  net.run({&s.tensors.at("input.0")});
  check_close(net.output(0), s.tensors.at("output.0"));

  Tensor ids = s.tensors.at("input.0").clone();
  ids.data<int64_t>()[3] = 7;  // a 7-row table
  try {
    net.run({&ids});
    FAIL("an out-of-range id ran");
  } catch (const pb::Error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("node \"emb\"") != std::string::npos);
    CHECK(what.find("id 7 at flat position 3") != std::string::npos);
  }
  ids.data<int64_t>()[3] = -1;
  CHECK_THROWS_WITH(net.run({&ids}), Catch::Contains("node \"emb\"") && Catch::Contains("id -1 at flat position 3"));
  // The network still runs good ids afterwards.
  net.run({&s.tensors.at("input.0")});
  check_close(net.output(0), s.tensors.at("output.0"));
}

// ------------------------------------------------------------------ DAGs, arithmetic, layout

TEST_CASE("pytorch spatial: a DAG - one input feeds two conv branches that are added, torch.cat, number operands", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("shared_input_dag"));
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "conv_a").inputs[0] == "x");
  CHECK(node(g, "conv_b").inputs[0] == "x");
  const pb::ir::Node& add = node(g, "add");  // conv_a(x) + conv_b(x)
  CHECK(add.op == "Add");
  CHECK(add.origin == "fx:add (_operator.add)");
  CHECK(add.inputs == Names{"conv_a", "conv_b"});

  // x * 0.5: the number becomes a scalar constant on its own side.
  CHECK(node(g, "mul").op == "Mul");
  CHECK(node(g, "mul").inputs == Names{"x", "mul.rhs"});
  CHECK(g.weights.at("mul.rhs").shape() == pb::Shape{});
  CHECK(g.weights.at("mul.rhs").data<float>()[0] == 0.5f);
  CHECK(node(g, "sub").op == "Sub");  // torch.sub(_, 1.0)
  CHECK(node(g, "sub").inputs == Names{"mul", "sub.rhs"});
  const pb::ir::Node& cat = node(g, "cat");  // torch.cat([relu(s), scaled], dim=1)
  CHECK(cat.op == "Concat");
  CHECK(cat.inputs == Names{"relu", "sub"});
  CHECK(cat.attrs.i("axis") == 1);
  CHECK(node(g, "mul_1").inputs == Names{"mul_1.lhs", "cat"});  // 2.0 * cat
  CHECK(g.weights.at("mul_1.lhs").data<float>()[0] == 2.f);
  CHECK(node(g, "mul_2").inputs == Names{"cat", "cat"});  // torch.mul(cat, cat)
  CHECK(node(g, "truediv").op == "Div");
  CHECK(node(g, "truediv").inputs == Names{"mul_2", "truediv.rhs"});
  CHECK(node(g, "add_1").op == "Add");  // torch.add(u, 1.5)
  CHECK(node(g, "sub_2").origin == "fx:sub_2 (sub)");  // Tensor.sub
  CHECK(node(g, "div").op == "Div");  // Tensor.div
  CHECK(node(g, "sub_3").inputs == Names{"sub_3.lhs", "div"});  // 1.0 - v
  CHECK(g.weights.at("sub_3.lhs").data<float>()[0] == 1.f);
  CHECK(node(g, "add_2").inputs == Names{"mul_3", "x"});  // Tensor.add of two tensors
  CHECK(node(g, "cat_1").inputs == Names{"add_2", "sub"});
  CHECK(node(g, "cat_1").attrs.i("axis") == -1);
  CHECK(g.outputs == Names{"sub_3", "cat_1"});
  check_outputs(s, g);
}

TEST_CASE("pytorch spatial: transpose(1, 2), permute (method and function), view, reshape", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("layout"));
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "transpose").op == "Transpose");
  CHECK(node(g, "transpose").attrs.ints("perm") == Ints{0, 2, 1});  // x.transpose(1, 2)
  CHECK(node(g, "fc").inputs == Names{"transpose", "fc.weight", "fc.bias"});
  CHECK(node(g, "permute").attrs.ints("perm") == Ints{0, 2, 1});  // h.permute(0, 2, 1)
  CHECK(node(g, "permute_1").attrs.ints("perm") == Ints{1, 0, 2});  // torch.permute(p, (1, 0, 2))
  CHECK(node(g, "view").op == "Reshape");
  CHECK(node(g, "view").attrs.ints("shape") == Ints{5, 8});  // q.view(5, 8)
  CHECK(node(g, "reshape").attrs.ints("shape") == Ints{-1, 4, 2});  // torch.reshape(v, (-1, 4, 2))
  CHECK(node(g, "transpose_1").attrs.ints("perm") == Ints{2, 1, 0});  // torch.transpose(r, 0, 2)
  CHECK(node(g, "reshape_1").attrs.ints("shape") == Ints{2, 20});  // .reshape(2, 20)
  CHECK(g.outputs == Names{"reshape_1", "permute"});
  check_outputs(s, g);
}

TEST_CASE("pytorch spatial: transpose with negative dims (x.transpose(-1, -2)) runs as the positive dims", "[pytorch]") {
  // The rank is known when decoding, so a negative dim counts from the end as in torch.
  for (const json& dims : {json::array({1, -1}), json::array({-2, 2}), json::array({-1, -2})}) {
    INFO(dims.dump());
    json doc = load_doc("layout");
    json args = json::array({json{{"node", "x"}}});
    for (const json& d : dims) args.push_back(d);
    fx_node(doc, "transpose")["args"] = args;
    const pb::Stream s = to_stream(doc);
    const Graph g = pytorch().decode(s);
    CHECK(node(g, "transpose").attrs.ints("perm") == Ints{0, 2, 1});
    check_outputs(s, g);
  }
}

TEST_CASE("pytorch spatial: permute with negative dims (torch allows them) runs as the positive perm", "[pytorch]") {
  // h.permute(0, -1, 1) is h.permute(0, 2, 1) in torch; permute names every dim, so the
  // decoder knows the rank and resolves it.
  json doc = load_doc("layout");
  fx_node(doc, "permute")["args"] = json::array({json{{"node", "fc"}}, 0, -1, 1});
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "permute").attrs.ints("perm") == Ints{0, 2, 1});
  CHECK_NOTHROW(check_outputs(s, g));
  fx_node(doc, "permute")["args"] = json::array({json{{"node", "fc"}}, 0, -4, 1});
  CHECK_THROWS_WITH(decode(doc), Catch::Contains(graph_path(doc, "permute")) && Catch::Contains("permute dim -4 is out of range for rank 3"));
}

TEST_CASE("pytorch spatial: a number divided by a tensor is refused when decoded, naming the graph node", "[pytorch]") {
  // 2.0 / v would be Div(constant, v); the IR's Div cannot broadcast its dividend (docs/ir.md),
  // so the decoder refuses it at the graph path rather than letting compilation fail later.
  json doc = load_doc("shared_input_dag");
  json& div = fx_node(doc, "div");
  div["op"] = "call_function";
  div["target"] = "_operator.truediv";
  div["args"] = json::array({2.0, json{{"node", "sub_2"}}});
  CHECK_THROWS_WITH(decode(doc), Catch::Contains(graph_path(doc, "div")) && Catch::Contains("a number divided by a tensor"));
}

TEST_CASE("pytorch spatial: torch.div with rounding_mode is refused, not run as a true division", "[pytorch]") {
  // torch.div(a, b, rounding_mode="floor" | "trunc") rounds the quotient: a plain Div would
  // silently differ from torch (1 - floor(v / 2) vs 1 - v / 2 here).
  json doc = load_doc("shared_input_dag");
  fx_node(doc, "div")["kwargs"] = {{"rounding_mode", "floor"}};
  CHECK_THROWS_WITH(decode(doc), Catch::Contains(graph_path(doc, "div")) && Catch::Contains("rounding_mode"));
  fx_node(doc, "div")["kwargs"] = {{"rounding_mode", "trunc"}};
  CHECK_THROWS_WITH(decode(doc), Catch::Contains(graph_path(doc, "div")) && Catch::Contains("rounding_mode"));
}

TEST_CASE("pytorch spatial: torch.div with rounding_mode=None is the true division", "[pytorch]") {
  json doc = load_doc("shared_input_dag");
  fx_node(doc, "div")["kwargs"] = {{"rounding_mode", nullptr}};
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "div").op == "Div");
  check_outputs(s, g);
}

// ------------------------------------------------------------------ the ladder

TEST_CASE("pytorch spatial: every recorded stream passes the ladder - every tap lines up", "[pytorch]") {
  for (const char* name : kRecorded) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    pbtest::check_passes(pbtest::ladder(s, pytorch()), s);
  }
}

// ------------------------------------------------------------------ errors

TEST_CASE("pytorch spatial: Conv configs and weights name their JSON path", "[pytorch]") {
  json doc = load_doc("conv2d_same_even");
  doc["model"]["modules"]["a"]["attrs"]["padding_mode"] = "reflect";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.a.attrs.padding_mode", "only padding_mode \"zeros\" is supported"));

  doc = load_doc("conv2d_same_even");
  doc["model"]["modules"]["a"]["attrs"]["padding"] = "full";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.a.attrs.padding", "expected \"same\", \"valid\" or integers, got \"full\""));

  // A weight stored [I, O, kh, kw] (as ConvTranspose keeps it) is refused, never transposed.
  doc = load_doc("conv2d_same_even");
  doc["tensors"]["a.weight"]["shape"] = json::array({2, 3, 4, 2});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.a.params.weight", "expected [out_channels, in_channels/groups, kernel...] = [3, 2, 4, 2], got [2, 3, 4, 2]"));
  // Spatial dims swapped.
  doc["tensors"]["a.weight"]["shape"] = json::array({3, 2, 2, 4});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.a.params.weight", "= [3, 2, 4, 2], got [3, 2, 2, 4]"));

  // groups changes the weight the module must have: [6, 4/1, 3, 3] is not what groups=2 stored.
  doc = load_doc("conv_groups");
  doc["model"]["modules"]["grouped"]["attrs"]["groups"] = 1;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.grouped.params.weight", "= [6, 4, 3, 3], got [6, 2, 3, 3]"));

  doc = load_doc("conv_groups");
  doc["model"]["modules"]["grouped"]["params"].erase("weight");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.grouped.params", "Conv2d has no \"weight\""));

  doc = load_doc("conv_groups");
  doc["model"]["modules"]["grouped"]["attrs"]["kernel_size"] = json::array({3, 3, 3});
  CHECK_THROWS_WITH(decode(doc), Catch::Contains("model.modules.grouped.attrs.kernel_size"));

  // A transposed convolution computes something else with the same attributes: refused by name.
  doc = load_doc("conv2d_same_even");
  doc["model"]["modules"]["a"]["attrs"]["transposed"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.a.attrs.transposed", "a transposed convolution (ConvTranspose) is not supported"));
  doc = load_doc("conv2d_same_even");
  doc["model"]["modules"]["a"]["attrs"]["output_padding"] = json::array({1, 0});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.a.attrs.output_padding", "only 0"));
  // An attribute no Conv has (a subclass's own) is refused, listing those understood.
  doc = load_doc("conv2d_same_even");
  doc["model"]["modules"]["a"]["attrs"]["weight_standardization"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.a.attrs.weight_standardization", "attribute not understood for Conv2d (known: in_channels, "));

  // A bias that does not match out_channels.
  doc = load_doc("conv2d_same_even");
  doc["tensors"]["a.bias"]["shape"] = json::array({1, 3});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.a.params.bias", "expected shape [3], got [1, 3]"));
}

TEST_CASE("pytorch spatial: a bare parameter (fx get_attr) is a constant; .contiguous() is an identity", "[pytorch]") {
  const json doc = load_doc("bare_parameter");
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "contiguous").op == "Identity");
  REQUIRE(g.weights.count("scale") == 1);
  CHECK(g.weights.at("scale").bit_equal(s.tensors.at("scale")));
  CHECK(node(g, "mul").inputs == Names{"fc", "scale"});
  check_outputs(s, g);
}

TEST_CASE("pytorch spatial: pooling configs torch has and the IR lacks name their JSON path", "[pytorch]") {
  json doc = load_doc("pools2d");
  doc["model"]["modules"]["max_pad"]["attrs"]["return_indices"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.max_pad.attrs.return_indices", "return_indices is not supported"));

  doc = load_doc("pools2d");
  doc["model"]["modules"]["avg_incl"]["attrs"]["divisor_override"] = 2;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.avg_incl.attrs.divisor_override", "divisor_override is not supported"));

  doc = load_doc("pools2d");
  // AvgPool2d(3, stride=2, padding=1) on 5 x 6 with ceil_mode: torch counts the padding but not
  // the overhang of the partial window, which no single IR pool does.
  doc["model"]["modules"]["avg_incl"]["attrs"]["ceil_mode"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.avg_incl.attrs.ceil_mode", "ceil_mode with padding and count_include_pad=True is not supported"));

  doc = load_doc("pools2d");
  doc["model"]["modules"]["gmax"]["attrs"]["output_size"] = json::array({2, 4});  // AdaptiveMaxPool2d((2, 4)) of 5 x 6
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.gmax.attrs.output_size", "adaptive max pooling of [5, 6] to [2, 4] is supported only where"));

  // The functional forms: the same refusals, at the call's argument.
  doc = load_doc("pools_ceil_adaptive");
  fx_node(doc, "avg_pool2d")["kwargs"]["divisor_override"] = 2;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt(graph_path(doc, "avg_pool2d") + ".kwargs.divisor_override", "divisor_override is not supported"));
  doc = load_doc("pools_ceil_adaptive");
  fx_node(doc, "max_pool2d")["kwargs"]["return_indices"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt(graph_path(doc, "max_pool2d") + ".kwargs.return_indices", "return_indices is not supported"));

  doc = load_doc("pools2d");
  doc["model"]["modules"]["gmax"]["attrs"]["return_indices"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.gmax.attrs.return_indices", "return_indices is not supported"));

  doc = load_doc("pools2d");
  doc["model"]["modules"]["gmax"]["attrs"].erase("output_size");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.gmax.attrs.output_size", "missing required field"));

  doc = load_doc("pools2d");
  doc["model"]["modules"]["gmax"]["attrs"]["output_size"] = json::array({1, 2, 3});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.gmax.attrs.output_size", "expected 2 output sizes"));
}

// torchvision's stochastic depth is the identity in eval and random in training; a node of the
// recorded stream is turned into one.
TEST_CASE("pytorch spatial: stochastic_depth in training is refused, in eval it is the identity", "[pytorch]") {
  json doc = load_doc("pools_ceil_adaptive");
  json& n = fx_node(doc, "max_pool2d");
  n["target"] = "torchvision.ops.stochastic_depth.stochastic_depth";
  n["args"] = json::array({n["args"][0], 0.2, "row", true});
  n["kwargs"] = json::object();
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "max_pool2d"), "stochastic_depth with training=True is random"));
  n["args"][3] = false;
  CHECK(node(decode(doc), "max_pool2d").op == "Identity");
}

TEST_CASE("pytorch spatial: BatchNorm in training mode or without running statistics names its path", "[pytorch]") {
  json doc = load_doc("conv_bn_relu");
  doc["model"]["modules"]["bn"]["training"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.bn.training", "BatchNorm in training mode uses batch statistics; capture in eval()"));

  // BatchNorm2d(3, track_running_stats=False): the capture sends no running buffers.
  doc = load_doc("conv_bn_relu");
  json& bn = doc["model"]["modules"]["bn"];
  bn["attrs"]["track_running_stats"] = false;
  bn["buffers"] = json::object();
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.bn.buffers", "track_running_stats=False"));

  // momentum (None: a cumulative average) and track_running_stats only steer training.
  doc = load_doc("conv_bn_relu");
  doc["model"]["modules"]["bn"]["attrs"]["momentum"] = nullptr;
  CHECK(node(decode(doc), "bn").op == "BatchNorm");
  doc["model"]["modules"]["bn"]["attrs"]["virtual_batch"] = 4;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.bn.attrs.virtual_batch", "attribute not understood for BatchNorm2d"));

  doc = load_doc("conv_bn_relu");
  doc["model"]["modules"]["bn_plain"]["buffers"].erase("running_var");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.bn_plain.buffers", "without running statistics"));
}

TEST_CASE("pytorch spatial: Embedding and RMSNorm configs name their path", "[pytorch]") {
  json doc = load_doc("embedding");
  doc["model"]["modules"]["emb"]["attrs"]["max_norm"] = 1.0;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.emb.attrs.max_norm", "max_norm renormalises rows during forward; not supported"));

  doc = load_doc("embedding");
  doc["model"]["modules"]["emb"]["attrs"]["num_embeddings"] = 8;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.emb.params.weight", "expected [num_embeddings, embedding_dim] = [8, 3], got [7, 3]"));

  // torch >= 2.4's nn.RMSNorm defaults eps to None (dtype-dependent): absent and null are refused.
  doc = load_doc("norms");
  doc["model"]["modules"]["rms"]["attrs"].erase("eps");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.rms.attrs", "RMSNorm needs an explicit eps"));
  doc["model"]["modules"]["rms"]["attrs"]["eps"] = nullptr;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.rms.attrs", "RMSNorm needs an explicit eps"));

  doc = load_doc("norms");
  doc["model"]["modules"]["rms"]["attrs"]["normalized_shape"] = json::array({3, 4});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.rms.attrs.normalized_shape", "RMSNorm over more than the last dim is not supported"));
}

TEST_CASE("pytorch spatial: implicit softmax dim, torch.add alpha and out-of-range transpose dims name the graph node", "[pytorch]") {
  // F.softmax(x) as fx records it: dim=None among the kwargs.
  json doc = load_doc("layout");
  json& t = fx_node(doc, "transpose");
  t["op"] = "call_function";
  t["target"] = "torch.nn.functional.softmax";
  t["args"] = json::array({json{{"node", "x"}}});
  t["kwargs"] = {{"dim", nullptr}, {"_stacklevel", 3}, {"dtype", nullptr}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "transpose"), "deprecated implicit-dim rule; pass dim"));

  // nn.Softmax() (dim=None) as a module.
  doc = load_doc("conv_bn_relu");
  doc["model"]["modules"]["relu"] = {{"type", "Softmax"}, {"training", false}, {"attrs", {{"dim", nullptr}}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "relu"), "implicit-dim"));

  doc = load_doc("shared_input_dag");
  fx_node(doc, "add_1")["kwargs"] = {{"alpha", 2}};  // torch.add(u, 1.5, alpha=2)
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt(graph_path(doc, "add_1") + ".kwargs.alpha", "torch.add/sub with alpha != 1 is not supported"));
  fx_node(doc, "add_1")["kwargs"] = {{"alpha", 1}};  // alpha 1 is the plain sum
  CHECK(node(decode(doc), "add_1").op == "Add");

  // The decoder knows every value's rank: a dim past it is refused at the node.
  doc = load_doc("layout");
  fx_node(doc, "transpose")["args"] = json::array({json{{"node", "x"}}, 1, 3});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "transpose"), "transpose dim 3 is out of range for rank 3"));
  fx_node(doc, "transpose")["args"] = json::array({json{{"node", "x"}}, -4, 2});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "transpose"), "transpose dim -4 is out of range for rank 3"));
  fx_node(doc, "transpose")["args"] = json::array({json{{"node", "x"}}, 1});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "transpose"), "transpose needs dim0 and dim1"));
  // permute names every dim of its input, no fewer.
  doc = load_doc("layout");
  fx_node(doc, "permute")["args"] = json::array({json{{"node", "fc"}}, 1, 0});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "permute"), "permute names 2 dims of an input of rank 3"));

  doc = load_doc("shared_input_dag");
  fx_node(doc, "cat")["args"] = json::array({json{{"node", "relu"}}});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "cat"), "torch.cat needs a list of tensors"));

  // torch.cat(..., axis=1) is torch's alias of dim; a keyword torch.cat lacks is refused, never ignored.
  doc = load_doc("shared_input_dag");
  fx_node(doc, "cat")["kwargs"] = {{"axis", 1}};
  const pb::Stream s = to_stream(doc);
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "cat").attrs.i("axis") == 1);
  check_outputs(s, g);
  fx_node(doc, "cat")["kwargs"] = {{"dim", 1}, {"out", {{"node", "x"}}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt(graph_path(doc, "cat") + ".kwargs.out", "attribute not understood for torch.cat (known: tensors, dim, axis)"));
}
