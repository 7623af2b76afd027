// The pytorch decoder's ConvTranspose, resampling, group/instance norm, PReLU, Hardtanh,
// Softsign, Tanhshrink and pixel-shuffle translators on streams recorded from torch 1.13 with
// taps (plugins/pytorch/tests/streams/make_streams.py: conv_transposes, upsamples, group_norms,
// activations_shuffle). The IR is checked attribute by attribute, run against torch's outputs
// and sent up the ladder; error cases mutate copies of those documents.
#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "fx_doc.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_outputs;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::max_diff;
using pbtest::node;
using pbtest::run;
using pbtest::to_stream;
using pytorch_test::fx_node;
using pytorch_test::graph_path;

namespace {

const pb::Dialect& pytorch() { return pbtest::planet(); }

using Ints = std::vector<int64_t>;
using Names = std::vector<std::string>;

std::vector<double> scales(const pb::ir::Node& n) { return std::get<std::vector<double>>(n.attrs.all().at("scales")); }

}  // namespace

TEST_CASE("pytorch layers: ConvTranspose1d-3d and F.conv_transpose2d keep torch's weight [in, out/groups, k...] as is", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("conv_transposes"));
  const Graph g = pytorch().decode(s);
  const pb::ir::Node& t1 = node(g, "t1");  // ConvTranspose1d(2, 3, 3, stride=2, padding=1, output_padding=1, dilation=2)
  CHECK(t1.op == "ConvTranspose");
  CHECK(t1.origin == "fx:t1 (ConvTranspose1d)");
  CHECK(t1.inputs == Names{"x1", "t1.weight", "t1.bias"});
  CHECK(g.weights.at("t1.weight").bit_equal(s.tensors.at("t1.weight")));
  CHECK(t1.attrs.ints("strides") == Ints{2});
  CHECK(t1.attrs.ints("pads_begin") == Ints{1});
  CHECK(t1.attrs.ints("pads_end") == Ints{1});
  CHECK(t1.attrs.ints("dilations") == Ints{2});
  CHECK(t1.attrs.ints("output_padding") == Ints{1});
  CHECK(t1.attrs.i("groups") == 1);

  const pb::ir::Node& t2 = node(g, "t2");  // ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2)
  CHECK(g.weights.at("t2.weight").shape() == pb::Shape{4, 3, 3, 2});
  CHECK(t2.attrs.ints("strides") == Ints{2, 1});
  CHECK(t2.attrs.ints("pads_begin") == Ints{1, 0});
  CHECK(t2.attrs.ints("output_padding") == Ints{1, 0});
  CHECK(t2.attrs.i("groups") == 2);

  // F.conv_transpose2d(y, w, b, 2, 1, 1, 2): stride, padding, output_padding, then groups before dilation.
  const pb::ir::Node& f = node(g, "conv_transpose2d");
  CHECK(f.op == "ConvTranspose");
  CHECK(f.inputs == Names{"t2", "w", "bias"});
  CHECK(f.attrs.ints("strides") == Ints{2, 2});
  CHECK(f.attrs.ints("pads_begin") == Ints{1, 1});
  CHECK(f.attrs.ints("output_padding") == Ints{1, 1});
  CHECK(f.attrs.ints("dilations") == Ints{1, 1});
  CHECK(f.attrs.i("groups") == 2);

  CHECK(node(g, "t3").inputs == Names{"x3", "t3.weight"});  // no bias
  CHECK(g.outputs == Names{"t1", "t2", "conv_transpose2d", "t3"});
  check_outputs(s, g);

  // output_padding moves what the end of each dim holds: without it the shapes differ, and
  // read from the other end (as pads_begin) the numbers do.
  Graph early = g;
  for (pb::ir::Node& n : early.nodes)
    if (n.name == "t1") {
      n.attrs.set("pads_begin", Ints{0});
      n.attrs.set("pads_end", Ints{2});
    }
  CHECK(max_diff(run(s, early)[0], s.tensors.at("output.0")) > 0.05);
}

TEST_CASE("pytorch layers: nn.Upsample, UpsamplingNearest2d / Bilinear2d and F.interpolate become Resize with torch's sizes and scales", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("upsamples"));
  const Graph g = pytorch().decode(s);
  struct Want {
    std::string node, mode, coords;
    Ints sizes;
    std::vector<double> scales;  // empty: none (the coordinates divide by in / out)
  };
  const std::vector<Want> wants = {
      {"near2", "nearest", "asymmetric", {6, 8}, {2, 2}},
      {"interpolate", "nearest", "asymmetric", {9, 12}, {3, 3}},
      {"near_size", "nearest", "asymmetric", {5, 7}, {}},
      {"interpolate_1", "nearest", "asymmetric", {4, 6}, {1.5, 1.5}},  // ⌊3·1.5⌋ = 4
      {"interpolate_2", "nearest", "half_pixel", {4, 6}, {1.5, 1.5}},  // nearest-exact
      {"bilinear_size", "linear", "half_pixel", {4, 9}, {}},
      {"interpolate_3", "linear", "half_pixel", {4, 8}, {1.5, 2}},
      {"corners", "linear", "align_corners", {6, 8}, {}},  // UpsamplingBilinear2d: align_corners=True ignores the factor
      {"interpolate_4", "linear", "align_corners", {8}, {}},
      {"interpolate_5", "linear", "half_pixel", {8}, {1.7}},  // ⌊5·1.7⌋ = 8, coordinates / 1.7
      {"interpolate_6", "linear", "half_pixel", {3, 6, 4}, {}},  // recompute_scale_factor: in / out
  };
  for (const Want& w : wants) {
    INFO(w.node);
    const pb::ir::Node& n = node(g, w.node);
    CHECK(n.op == "Resize");
    CHECK(n.attrs.s("mode") == w.mode);
    CHECK(n.attrs.s("coordinates") == w.coords);
    CHECK(n.attrs.ints("sizes") == w.sizes);
    CHECK(n.attrs.has("scales") == !w.scales.empty());
    if (!w.scales.empty()) CHECK(scales(n) == w.scales);
  }
  check_outputs(s, g);

  // torch maps coordinates by the factor itself, not by in / out: 1 / 1.7 is not 5 / 8.
  Graph by_size = g;
  for (pb::ir::Node& n : by_size.nodes)
    if (n.name == "interpolate_5") n.attrs.all().erase("scales");
  CHECK(max_diff(run(s, by_size)[9], s.tensors.at("output.9")) > 0.05);
}

TEST_CASE("pytorch layers: GroupNorm, InstanceNorm and their functions decompose into Reshape, LayerNorm, Reshape, BatchNorm", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("group_norms"));
  const Graph g = pytorch().decode(s);
  // GroupNorm(2, 4): [N, 2, -1] normalised over the last axis, back to [N, 4, 3, 3] (0 keeps the batch).
  CHECK(node(g, "gn/groups").op == "Reshape");
  CHECK(node(g, "gn/groups").attrs.ints("shape") == Ints{0, 2, -1});
  const pb::ir::Node& norm = node(g, "gn/norm");
  CHECK(norm.op == "LayerNorm");
  CHECK(norm.inputs == Names{"gn/groups"});
  CHECK(norm.attrs.i("axis") == -1);
  CHECK(norm.attrs.f("eps") == 1e-5);
  CHECK(node(g, "gn/shape").attrs.ints("shape") == Ints{0, 4, 3, 3});
  // The affine part: a BatchNorm with mean 0, variance 1 and eps 0 is x · weight + bias.
  const pb::ir::Node& gn = node(g, "gn");
  CHECK(gn.op == "BatchNorm");
  CHECK(gn.inputs == Names{"gn/shape", "gn.weight", "gn.bias", "gn.mean", "gn.variance"});
  CHECK(gn.attrs.f("eps") == 0.0);
  CHECK(pbtest::values(g.weights.at("gn.mean")) == std::vector<float>{0, 0, 0, 0});
  CHECK(pbtest::values(g.weights.at("gn.variance")) == std::vector<float>{1, 1, 1, 1});

  // Without affine the last Reshape is the value; a group per channel is InstanceNorm's.
  CHECK(node(g, "gn_plain").op == "Reshape");
  CHECK(node(g, "gn_plain/groups").attrs.ints("shape") == Ints{0, 4, -1});
  CHECK(node(g, "gn_plain/norm").attrs.f("eps") == 1e-3);
  CHECK(node(g, "inorm").inputs == Names{"inorm/shape", "inorm.weight", "inorm.bias", "inorm.mean", "inorm.variance"});
  CHECK(node(g, "inorm/groups").attrs.ints("shape") == Ints{0, 4, -1});
  CHECK(node(g, "inorm1").attrs.ints("shape") == Ints{0, 3, 5});
  // InstanceNorm with running statistics in eval is BatchNorm on them.
  const pb::ir::Node& tracked = node(g, "tracked");
  CHECK(tracked.op == "BatchNorm");
  CHECK(tracked.inputs == Names{"x", "tracked.scale", "tracked.shift", "tracked.running_mean", "tracked.running_var"});
  // F.group_norm(x, 2, w, eps=1e-4): no bias, shift 0.
  CHECK(node(g, "group_norm").inputs == Names{"group_norm/shape", "w", "group_norm.shift", "group_norm.mean", "group_norm.variance"});
  CHECK(node(g, "group_norm/norm").attrs.f("eps") == 1e-4);
  CHECK(node(g, "instance_norm").op == "Reshape");
  check_outputs(s, g);
}

TEST_CASE("pytorch layers: PReLU, Hardtanh, Softsign, Tanhshrink and pixel (un)shuffle", "[pytorch]") {
  const pb::Stream s = to_stream(load_doc("activations_shuffle"));
  const Graph g = pytorch().decode(s);
  CHECK(node(g, "prelu").inputs == Names{"x", "prelu.weight"});
  CHECK(g.weights.at("prelu.weight").shape() == pb::Shape{1});
  CHECK(node(g, "prelu_c").op == "PReLU");
  CHECK(g.weights.at("prelu_c.weight").shape() == pb::Shape{8});
  CHECK(node(g, "prelu_1").inputs == Names{"x", "slope"});  // F.prelu with a parameter
  const pb::ir::Node& ht = node(g, "hardtanh");
  CHECK(ht.op == "Activation");
  CHECK(ht.attrs.s("function") == "clip");
  CHECK(ht.attrs.f("alpha") == -0.5);
  CHECK(ht.attrs.f("beta") == 0.75);
  CHECK(node(g, "hardtanh_1").attrs.f("alpha") == -0.25);
  CHECK(node(g, "hardtanh_1").attrs.f("beta") == 0.5);
  CHECK(node(g, "softsign").op == "Div");
  CHECK(node(g, "softsign").inputs == Names{"mul", "softsign/denominator"});
  CHECK(node(g, "tanhshrink").op == "Sub");
  CHECK(node(g, "tanhshrink").inputs == Names{"softsign", "tanhshrink/tanh"});
  // PixelShuffle(2) on [N, 8, 2, 3]: [N, 2, 2, 2, 2, 3] -> [N, 2, 2, 2, 3, 2] -> [N, 2, 4, 6].
  CHECK(node(g, "shuffle/split").attrs.ints("shape") == Ints{0, 2, 2, 2, 2, 3});
  CHECK(node(g, "shuffle/moved").attrs.ints("perm") == Ints{0, 1, 4, 2, 5, 3});
  CHECK(node(g, "shuffle").attrs.ints("shape") == Ints{0, 2, 4, 6});
  CHECK(node(g, "unshuffle/split").attrs.ints("shape") == Ints{0, 2, 2, 2, 3, 2});
  CHECK(node(g, "unshuffle/moved").attrs.ints("perm") == Ints{0, 1, 3, 5, 2, 4});
  CHECK(node(g, "unshuffle").attrs.ints("shape") == Ints{0, 8, 2, 3});
  CHECK(node(g, "pixel_shuffle").op == "Reshape");
  check_outputs(s, g);
}

TEST_CASE("pytorch layers: every recorded stream passes the ladder - every tap lines up", "[pytorch]") {
  for (const char* name : {"conv_transposes", "upsamples", "group_norms", "activations_shuffle"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    pbtest::check_passes(pbtest::ladder(s, pytorch()), s);
  }
}

// ------------------------------------------------------------------ errors

TEST_CASE("pytorch layers: ConvTranspose weights and attributes it cannot compute name their JSON path", "[pytorch]") {
  json doc = load_doc("conv_transposes");
  // A weight stored [out, in, k] (a Conv's) is refused, never transposed.
  doc["tensors"]["t1.weight"]["shape"] = json::array({3, 2, 3});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.modules.t1.params.weight", "expected [in_channels, out_channels/groups, kernel...] = [2, 3, 3], got [3, 2, 3]"));
  doc = load_doc("conv_transposes");
  doc["model"]["modules"]["t2"]["attrs"]["padding_mode"] = "reflect";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.t2.attrs.padding_mode", "only padding_mode \"zeros\" is supported"));
  // output_size picks output_padding at run time: an extra argument.
  doc = load_doc("conv_transposes");
  fx_node(doc, "t1")["args"].push_back(json::array({10}));
  CHECK_THROWS_WITH(decode(doc), Catch::Contains(graph_path(doc, "t1") + ".args") && Catch::Contains("takes 1 input"));
  // output_padding must stay below the stride or the dilation (torch's rule).
  doc = load_doc("conv_transposes");
  fx_node(doc, "conv_transpose2d")["args"][5] = 2;
  CHECK_THROWS_WITH(decode(doc), Catch::Contains(graph_path(doc, "conv_transpose2d")) && Catch::Contains("smaller than the stride or the dilation"));
}

TEST_CASE("pytorch layers: interpolation modes and arguments it cannot compute name their JSON path", "[pytorch]") {
  json doc = load_doc("upsamples");
  for (const char* mode : {"bicubic", "area"}) {
    fx_node(doc, "interpolate_3")["kwargs"]["mode"] = mode;
    CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                         ErrorAt(graph_path(doc, "interpolate_3") + ".kwargs.mode", "interpolation mode \"" + std::string(mode) + "\" is not supported"));
  }
  doc = load_doc("upsamples");
  doc["model"]["modules"]["near2"]["attrs"]["mode"] = "bicubic";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.near2.attrs.mode", "interpolation mode \"bicubic\" is not supported"));
  doc = load_doc("upsamples");
  doc["model"]["modules"]["near2"]["attrs"]["align_corners"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.near2.attrs.align_corners", "only for the linear modes"));
  doc = load_doc("upsamples");
  fx_node(doc, "interpolate_4")["kwargs"]["mode"] = "bilinear";  // on a 1-D input
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "interpolate_4") + ".kwargs.mode", "needs 2 spatial dims"));
  doc = load_doc("upsamples");
  fx_node(doc, "interpolate_3")["kwargs"]["antialias"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "interpolate_3") + ".kwargs.antialias", "antialias is not supported"));
  doc = load_doc("upsamples");
  fx_node(doc, "interpolate_3")["kwargs"]["size"] = json::array({4, 8});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "interpolate_3"), "exactly one of size and scale_factor"));
  doc = load_doc("upsamples");
  fx_node(doc, "interpolate_4")["kwargs"]["recompute_scale_factor"] = true;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt(graph_path(doc, "interpolate_4") + ".kwargs.recompute_scale_factor", "with an explicit size"));
}

TEST_CASE("pytorch layers: group norms and PReLU or pixel shuffles that do not fit name their node or JSON path", "[pytorch]") {
  json doc = load_doc("group_norms");
  doc["model"]["modules"]["gn"]["attrs"]["num_groups"] = 3;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "gn"), "4 channels do not split into 3 groups"));
  doc = load_doc("group_norms");
  doc["model"]["modules"]["inorm"]["type"] = "InstanceNorm1d";  // on a 4-D input
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "inorm"), "InstanceNorm1d needs a batched input"));
  doc = load_doc("group_norms");
  doc["tensors"]["gn.weight"]["shape"] = json::array({2, 2});
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.gn.params.weight", "expected [num_channels] = [4], got [2, 2]"));

  doc = load_doc("activations_shuffle");
  doc["model"]["modules"]["prelu_c"]["attrs"]["num_parameters"] = 4;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.modules.prelu_c.params.weight", "expected [num_parameters] = [4], got [8]"));
  doc = load_doc("activations_shuffle");
  doc["model"]["modules"]["shuffle"]["attrs"]["upscale_factor"] = 3;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(graph_path(doc, "shuffle"), "8 channels are not divisible by the factor squared 9"));
}
