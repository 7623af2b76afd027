// The tensorflow decoder (plugins/tensorflow/decoder.cpp), loaded as a plugin, on small streams in
// plugins/tensorflow/tests/streams/: Keras configs typed out as tfjs, Python Keras 2 and Keras 3 write
// them (make_streams.py there; no Python or Node needed here), and one stream recorded from real
// tfjs (record.js). Error cases mutate those documents.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>

#include "ladder.h"
#include "planetbridge/network.h"
#include "plugin_loader.h"
#include "test_util.h"

using nlohmann::json;
using pb::Tensor;
using pb::ir::Graph;
using pbtest::check_close;
using pbtest::max_diff;
using pbtest::decode;
using pbtest::ErrorAt;
using pbtest::load_doc;
using pbtest::node;
using pbtest::run;
using pbtest::to_stream;

namespace {

const pb::Dialect& tensorflow() { return pbtest::planet(); }

// x [rows, in] · K [in, out] + b: the Keras definition, by hand.
std::vector<float> keras_dense(const Tensor& x, const Tensor& k, const Tensor* b) {
  const int64_t rows = x.shape()[0], in = k.shape()[0], out = k.shape()[1];
  std::vector<float> y(rows * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b ? b->data<float>()[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) acc += double(x.data<float>()[r * in + i]) * k.data<float>()[i * out + o];
      y[r * out + o] = float(acc);
    }
  return y;
}

}  // namespace

// ------------------------------------------------------------------ translations

TEST_CASE("tensorflow decoder: square Dense kernels [in, out] are transposed exactly once", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("sequential_square"));
  const Graph g = tensorflow().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "dense_Dense1_input");  // Keras's name for a Sequential's implicit input
  CHECK(g.inputs[0].shape == pb::Shape{-1, 3});
  REQUIRE(g.nodes.size() == 2);
  const pb::ir::Node& d1 = node(g, "dense_Dense1");
  CHECK(d1.op == "Dense");
  // The kernel moved into the IR's layout is a derived weight: "<stream tensor>@T"; the bias is used as it is.
  CHECK(d1.inputs == std::vector<std::string>{"dense_Dense1_input", "dense_Dense1/kernel@T", "dense_Dense1/bias"});
  CHECK(d1.attrs.s("activation") == "relu");
  CHECK(d1.origin == "keras:dense_Dense1 (Dense)");
  CHECK(node(g, "dense_Dense2").inputs[0] == "dense_Dense1");
  CHECK(node(g, "dense_Dense2").attrs.s("activation") == "identity");
  CHECK(g.outputs == std::vector<std::string>{"dense_Dense2"});

  // The IR weight is [out, in]: element [o, i] is the stream kernel's [i, o].
  CHECK(g.weights.count("dense_Dense1/kernel") == 0);
  for (const char* name : {"dense_Dense1/kernel", "dense_Dense2/kernel"}) {
    INFO(name);
    const Tensor& k = s.tensors.at(name);
    const Tensor& w = g.weights.at(std::string(name) + "@T");
    REQUIRE(w.shape() == pb::Shape{3, 3});
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t o = 0; o < 3; ++o) CHECK(w.data<float>()[o * 3 + i] == k.data<float>()[i * 3 + o]);
  }

  // Against a reference computed here by hand from the Keras definition, and the recorded output.
  const Tensor& x = s.tensors.at("input.0");
  std::vector<float> h = keras_dense(x, s.tensors.at("dense_Dense1/kernel"), &s.tensors.at("dense_Dense1/bias"));
  for (float& v : h) v = std::max(v, 0.f);
  const std::vector<float> y = keras_dense(pbtest::f32({2, 3}, h), s.tensors.at("dense_Dense2/kernel"), &s.tensors.at("dense_Dense2/bias"));
  const std::vector<Tensor> got = run(s, g);
  check_close(got[0], pbtest::f32({2, 3}, y));
  check_close(got[0], s.tensors.at("output.0"));

  // A missed (or doubled) transpose would visibly fail: the kernels are not symmetric.
  Graph untransposed = g;
  for (const char* name : {"dense_Dense1/kernel", "dense_Dense2/kernel"})
    untransposed.weights[std::string(name) + "@T"] = s.tensors.at(name).clone();
  CHECK(max_diff(run(s, untransposed)[0], s.tensors.at("output.0")) > 0.1);
}

TEST_CASE("tensorflow decoder: functional Add and Concatenate over a shared input", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("functional_add"));
  const Graph g = tensorflow().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "input1");
  CHECK(node(g, "left").inputs[0] == "input1");
  CHECK(node(g, "right").inputs[0] == "input1");
  CHECK(node(g, "right").attrs.s("activation") == "tanh");
  CHECK(node(g, "sum").op == "Add");
  CHECK(node(g, "sum").inputs == std::vector<std::string>{"left", "right"});
  CHECK(node(g, "cat").op == "Concat");
  CHECK(node(g, "cat").inputs == std::vector<std::string>{"sum", "input1"});
  CHECK(node(g, "cat").attrs.i("axis") == -1);
  CHECK(g.outputs == std::vector<std::string>{"cat"});
  check_close(run(s, g)[0], s.tensors.at("output.0"));
}

TEST_CASE("tensorflow decoder: a Python Keras 2 functional config", "[tensorflow]") {
  json doc = load_doc("keras2_functional");
  const pb::Stream s = to_stream(doc);
  const Graph g = tensorflow().decode(s);
  CHECK(g.inputs[0].name == "input_1");
  CHECK(g.inputs[0].shape == pb::Shape{-1, 4});
  CHECK(node(g, "dense_1").inputs.size() == 2);  // use_bias false: no bias input
  CHECK(node(g, "subtract").op == "Sub");
  CHECK(node(g, "subtract").inputs == std::vector<std::string>{"dense", "dense_1"});
  const pb::ir::Node& hs = node(g, "activation");
  CHECK(hs.op == "Activation");
  CHECK(hs.attrs.s("function") == "hard_sigmoid");
  CHECK(hs.attrs.f("alpha") == 0.2);  // Keras 2's slope
  CHECK(hs.attrs.f("beta") == 0.5);
  CHECK(node(g, "dropout").op == "Identity");
  // Softmax cannot be a Dense post-op: a separate node, which carries the layer's name.
  CHECK(node(g, "dense_2/linear").op == "Dense");
  CHECK(node(g, "dense_2").op == "Softmax");
  CHECK(node(g, "dense_2").inputs == std::vector<std::string>{"dense_2/linear"});
  CHECK(node(g, "dense_2").attrs.i("axis") == -1);
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // The same config from Keras 3 would mean hard_sigmoid = clip(x/6 + 0.5): other numbers.
  doc["model"]["topology"]["keras_version"] = "3.0.0";
  const Graph k3 = decode(doc);
  CHECK(node(k3, "activation").attrs.f("alpha") == Approx(1.0 / 6.0));
  CHECK(max_diff(run(s, k3)[0], s.tensors.at("output.0")) > 1e-3);
}

TEST_CASE("tensorflow decoder: a Keras 3 functional config", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("keras3_functional"));
  const Graph g = tensorflow().decode(s);
  CHECK(g.inputs[0].name == "input_layer");
  CHECK(node(g, "dense").attrs.s("activation") == "silu");
  CHECK(node(g, "dense_1").attrs.s("activation") == "hard_sigmoid");
  CHECK(node(g, "dense_1").attrs.f("alpha") == Approx(1.0 / 6.0));
  CHECK(node(g, "multiply").op == "Mul");
  CHECK(node(g, "multiply").inputs == std::vector<std::string>{"dense", "dense_1"});
  CHECK(g.outputs == std::vector<std::string>{"multiply"});
  check_close(run(s, g)[0], s.tensors.at("output.0"));
}

TEST_CASE("tensorflow decoder: a stream recorded from tfjs (every activation, a shared layer)", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_functional"));
  const Graph g = tensorflow().decode(s);
  CHECK(node(g, "d_gelu").attrs.s("activation") == "gelu_erf");  // tfjs 'gelu' is the erf form
  CHECK(node(g, "d_gelu_new").attrs.s("activation") == "gelu_tanh");
  CHECK(node(g, "d_swish").attrs.s("activation") == "silu");
  CHECK(node(g, "d_hardSigmoid").attrs.f("alpha") == 0.2);
  CHECK(node(g, "d_logSoftmax").op == "Softmax");
  CHECK(node(g, "d_logSoftmax").attrs.i("log") == 1);
  CHECK(node(g, "softmax_layer").attrs.i("axis") == 1);  // tfjs's Softmax layer default
  CHECK(node(g, "relu6_layer").attrs.s("function") == "relu6");
  CHECK(node(g, "sum/1").op == "Add");  // many inputs fold pairwise
  // The shared layer's second call: its own value, the same weights.
  CHECK(node(g, "shared@1").inputs == std::vector<std::string>{"pre", "shared/kernel@T", "shared/bias"});
  CHECK(node(g, "shared").inputs[0] == "x");
  // Taps are keyed by layer name and line up with IR values.
  CHECK(s.taps.size() > 20);
  for (const auto& [layer, tensor] : s.taps) {
    INFO(layer);
    CHECK(g.find_node(layer) != nullptr);
  }
  pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);
}

TEST_CASE("tensorflow decoder: every hand-written stream passes the ladder", "[tensorflow]") {
  for (const char* name : {"sequential_square", "functional_add", "keras2_functional", "keras3_functional"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);
  }
}

TEST_CASE("tensorflow decoder: source types and capture command", "[tensorflow]") {
  const std::vector<std::string> types = tensorflow().source_types();
  for (const char* t : {"Sequential", "Functional", "InputLayer", "Dense", "Add", "Concatenate", "activation:gelu", "Conv1D", "Conv2D", "Conv3D",
                        "DepthwiseConv2D", "MaxPooling3D", "GlobalAveragePooling2D", "BatchNormalization", "LayerNormalization", "RMSNorm",
                        "Embedding", "ZeroPadding2D"})
    CHECK(std::find(types.begin(), types.end(), t) != types.end());
  const pb::CaptureCommand cmd = tensorflow().capture();
  REQUIRE(cmd.argv.size() == 3);
  CHECK(cmd.argv[1].size() > 11);
  CHECK(cmd.argv[1].substr(cmd.argv[1].size() - 11) == "/capture.js");
  CHECK(cmd.argv[2] == "--serve");
}

// ------------------------------------------------------------------ spatial layers (recorded by record_spatial.js)

namespace {

// Keras Conv2D / DepthwiseConv2D by hand on channels-last tensors, from the Keras layouts:
// x [N, H, W, C], kernel [kh, kw, C, O] (conv) or [kh, kw, C, M] (depthwise, output c·M + m),
// explicit pads (before, after) per spatial dim. Returns [N, OH, OW, O].
Tensor keras_conv2d(const Tensor& x, const Tensor& k, const Tensor* b, int64_t stride, std::array<int64_t, 2> pb, std::array<int64_t, 2> pe,
                    bool depthwise = false) {
  const int64_t n = x.shape()[0], h = x.shape()[1], w = x.shape()[2], c = x.shape()[3];
  const int64_t kh = k.shape()[0], kw = k.shape()[1], m = k.shape()[3];
  const int64_t out_c = depthwise ? c * m : m;
  const int64_t oh = (h + pb[0] + pe[0] - kh) / stride + 1, ow = (w + pb[1] + pe[1] - kw) / stride + 1;
  Tensor y(pb::DType::f32, {n, oh, ow, out_c});
  const float* xs = x.data<float>();
  const float* ks = k.data<float>();
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t o = 0; o < out_c; ++o) {
          double acc = b ? b->data<float>()[o] : 0.0;
          for (int64_t di = 0; di < kh; ++di)
            for (int64_t dj = 0; dj < kw; ++dj) {
              const int64_t yi = i * stride + di - pb[0], xj = j * stride + dj - pb[1];
              if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue;  // zero padding
              const float* px = xs + ((b0 * h + yi) * w + xj) * c;
              if (depthwise) {
                acc += double(px[o / m]) * ks[((di * kw + dj) * c + o / m) * m + o % m];
              } else {
                for (int64_t ci = 0; ci < c; ++ci) acc += double(px[ci]) * ks[((di * kw + dj) * c + ci) * m + o];
              }
            }
          y.data<float>()[((b0 * oh + i) * ow + j) * out_c + o] = float(acc);
        }
  return y;
}

}  // namespace

TEST_CASE("tensorflow decoder: Conv2D's HWIO kernel becomes OIHW by an explicit copy", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_conv2d"));
  const Graph g = tensorflow().decode(s);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 5, 6, 2});  // Keras's channels-last input
  // Channels-last in, one explicit Transpose to channels-first, the Conv, one Transpose back.
  CHECK(node(g, "x@NCHW").op == "Transpose");
  CHECK(node(g, "x@NCHW").attrs.ints("perm") == std::vector<int64_t>{0, 3, 1, 2});
  const pb::ir::Node& conv = node(g, "conv@NCHW");
  CHECK(conv.op == "Conv");
  CHECK(conv.inputs == std::vector<std::string>{"x@NCHW", "conv/kernel@OIHW", "conv/bias"});
  CHECK(conv.attrs.i("groups") == 1);
  CHECK(conv.attrs.ints("pads_begin") == std::vector<int64_t>{0, 0});
  CHECK(conv.attrs.ints("pads_end") == std::vector<int64_t>{0, 0});
  CHECK(node(g, "conv").attrs.ints("perm") == std::vector<int64_t>{0, 2, 3, 1});
  CHECK(g.outputs == std::vector<std::string>{"conv"});

  // IR weight [O, I, kh, kw]: element [o, i, h, w] is the Keras kernel's [h, w, i, o].
  const Tensor& k = s.tensors.at("conv/kernel");
  const Tensor& w = g.weights.at("conv/kernel@OIHW");
  REQUIRE(k.shape() == pb::Shape{2, 3, 2, 3});
  REQUIRE(w.shape() == pb::Shape{3, 2, 2, 3});
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t x = 0; x < 3; ++x) CHECK(w.data<float>()[((o * 2 + i) * 2 + h) * 3 + x] == k.data<float>()[((h * 3 + x) * 2 + i) * 3 + o]);

  const Tensor got = run(s, g)[0];
  check_close(got, keras_conv2d(s.tensors.at("input.0"), k, &s.tensors.at("conv/bias"), 1, {0, 0}, {0, 0}));
  check_close(got, s.tensors.at("output.0"));

  // The Keras bytes taken as if already [O, I, kh, kw] (a layout inferred from the shape) fail.
  Graph wrong = g;
  wrong.weights["conv/kernel@OIHW"] = k.clone().reshaped({3, 2, 2, 3});
  CHECK(max_diff(run(s, wrong)[0], s.tensors.at("output.0")) > 0.1);
}

TEST_CASE("tensorflow decoder: padding \"same\" puts the odd pad at the end (even kernels, strides)", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_same_even"));
  const Graph g = tensorflow().decode(s);
  // kernel 4 on 5: total 3 = 1 before + 2 after (TF's rule; tfjs follows it).
  CHECK(node(g, "conv_k4@NCHW").attrs.ints("pads_begin") == std::vector<int64_t>{1, 1});
  CHECK(node(g, "conv_k4@NCHW").attrs.ints("pads_end") == std::vector<int64_t>{2, 2});
  // kernel 3, stride 2 on 5: out ceil(5/2) = 3, total (3-1)·2 + 3 - 5 = 2.
  CHECK(node(g, "conv_s2@NCHW").attrs.ints("strides") == std::vector<int64_t>{2, 2});
  CHECK(node(g, "conv_s2@NCHW").attrs.ints("pads_begin") == std::vector<int64_t>{1, 1});
  CHECK(node(g, "conv_s2@NCHW").attrs.ints("pads_end") == std::vector<int64_t>{1, 1});
  // The layers between chain channels-first: no Transpose between them.
  CHECK(node(g, "conv_s2@NCHW").inputs[0] == "conv_k4@NCHW");
  // An even average pool on 3: the pad after, never counted in the average.
  const pb::ir::Node& avg = node(g, "avg_same@NCHW");
  CHECK(avg.op == "Pool");
  CHECK(avg.attrs.s("mode") == "avg");
  CHECK(avg.attrs.ints("pads_begin") == std::vector<int64_t>{0, 0});
  CHECK(avg.attrs.ints("pads_end") == std::vector<int64_t>{1, 1});
  CHECK(avg.attrs.i("count_include_pad") == 0);
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // The first conv by hand with pads (1, 2) is tfjs's tap; with (2, 1) it is not.
  const Tensor& x = s.tensors.at("input.0");
  const Tensor& k = s.tensors.at("conv_k4/kernel");
  const Tensor& b = s.tensors.at("conv_k4/bias");
  check_close(keras_conv2d(x, k, &b, 1, {1, 1}, {2, 2}), s.tensors.at(s.taps.at("conv_k4")));
  CHECK(max_diff(keras_conv2d(x, k, &b, 1, {2, 2}, {1, 1}), s.tensors.at(s.taps.at("conv_k4"))) > 0.1);
  // Counting the pad in the average visibly changes the output.
  Graph counted = g;
  for (pb::ir::Node& n : counted.nodes)
    if (n.name == "avg_same@NCHW") n.attrs.set("count_include_pad", int64_t(1));
  CHECK(max_diff(run(s, counted)[0], s.tensors.at("output.0")) > 0.05);
}

TEST_CASE("tensorflow decoder: DepthwiseConv2D output channel c·multiplier + m", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_depthwise"));
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& dw = node(g, "dw@NCHW");
  CHECK(dw.op == "Conv");
  CHECK(dw.attrs.i("groups") == 2);
  // [kh, kw, C, M] moved into the IR's grouped conv weight [C·M, 1, kh, kw]: "<tensor>@OIHW".
  CHECK(dw.inputs == std::vector<std::string>{"x@NCHW", "dw/depthwise_kernel@OIHW", "dw/bias"});
  // kernel 3x2 on 4x4, same: rows 1 + 1, columns 0 + 1.
  CHECK(dw.attrs.ints("pads_begin") == std::vector<int64_t>{1, 0});
  CHECK(dw.attrs.ints("pads_end") == std::vector<int64_t>{1, 1});
  const Tensor& k = s.tensors.at("dw/depthwise_kernel");
  const Tensor& w = g.weights.at("dw/depthwise_kernel@OIHW");
  REQUIRE(k.shape() == pb::Shape{3, 2, 2, 3});
  REQUIRE(w.shape() == pb::Shape{6, 1, 3, 2});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t m = 0; m < 3; ++m)
      for (int64_t t = 0; t < 6; ++t) CHECK(w.data<float>()[(c * 3 + m) * 6 + t] == k.data<float>()[(t * 2 + c) * 3 + m]);

  const Tensor got = run(s, g)[0];
  check_close(got, keras_conv2d(s.tensors.at("input.0"), k, &s.tensors.at("dw/bias"), 1, {1, 0}, {1, 1}, true));
  check_close(got, s.tensors.at("output.0"));

  // Output channels in the other order (m·C + c) visibly fail.
  Graph wrong = g;
  Tensor swapped = w.clone();
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t m = 0; m < 3; ++m)
      for (int64_t t = 0; t < 6; ++t) swapped.data<float>()[(m * 2 + c) * 6 + t] = w.data<float>()[(c * 3 + m) * 6 + t];
  wrong.weights["dw/depthwise_kernel@OIHW"] = swapped;
  CHECK(max_diff(run(s, wrong)[0], s.tensors.at("output.0")) > 0.1);
}

TEST_CASE("tensorflow decoder: Flatten after a conv flattens Keras's (H, W, C) order", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_flatten"));
  const Graph g = tensorflow().decode(s);
  CHECK(node(g, "conv@NCHW").attrs.s("activation") == "relu");  // Keras's conv activation, fused
  // The conv's channels-last form is made explicitly, and that is what Flatten reads.
  CHECK(node(g, "conv").op == "Transpose");
  CHECK(node(g, "conv").inputs == std::vector<std::string>{"conv@NCHW"});
  CHECK(node(g, "flat").inputs == std::vector<std::string>{"conv"});
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // Flattening the channels-first value instead (C, H, W) feeds the Dense other features.
  Graph wrong = g;
  for (pb::ir::Node& n : wrong.nodes)
    if (n.name == "flat") n.inputs = {"conv@NCHW"};
  CHECK(max_diff(run(s, wrong)[0], s.tensors.at("output.0")) > 0.1);
}

TEST_CASE("tensorflow decoder: BatchNormalization uses the moving statistics and Keras's epsilon 1e-3", "[tensorflow]") {
  json doc = load_doc("tfjs_batchnorm");
  const pb::Stream s = to_stream(doc);
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& bn = node(g, "bn@NCHW");
  CHECK(bn.op == "BatchNorm");  // channels axis -1 in Keras, axis 1 channels-first
  CHECK(bn.inputs == std::vector<std::string>{"x@NCHW", "bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"});
  CHECK(bn.attrs.f("eps") == 0.001);

  // By hand: gamma·(x - mean)/sqrt(var + 1e-3) + beta over the last (channels) axis.
  const Tensor& x = s.tensors.at("input.0");
  const float* p[4];
  const char* names[] = {"bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance"};
  for (int i = 0; i < 4; ++i) p[i] = s.tensors.at(names[i]).data<float>();
  std::vector<float> y(size_t(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = i % 4;
    y[size_t(i)] = float(p[0][c] * (x.data<float>()[i] - p[2][c]) / std::sqrt(double(p[3][c]) + 1e-3) + p[1][c]);
  }
  const Tensor got = run(s, g)[0];
  check_close(got, pbtest::f32(x.shape(), y));
  check_close(got, s.tensors.at("output.0"));

  // torch's 1e-5 instead: the variances (5e-4 .. 4e-3) make that visible.
  Graph wrong = g;
  for (pb::ir::Node& n : wrong.nodes)
    if (n.name == "bn@NCHW") n.attrs.set("eps", 1e-5);
  CHECK(max_diff(run(s, wrong)[0], s.tensors.at("output.0")) > 0.1);

  // center/scale False: beta 0 and gamma 1 as constants "<layer>.<role>", and the table must not list them.
  doc["model"]["topology"]["config"]["layers"][1]["config"]["center"] = false;
  doc["model"]["topology"]["config"]["layers"][1]["config"]["scale"] = false;
  doc["model"]["weights"]["bn"].erase("gamma");
  doc["model"]["weights"]["bn"].erase("beta");
  // Their stream tensors, now read by no layer, are refused too: nothing is silently dropped.
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"bn/beta\"]", "not used by any part of the model"));
  doc["tensors"].erase("bn/gamma");
  doc["tensors"].erase("bn/beta");
  const Graph plain = decode(doc);
  CHECK(node(plain, "bn@NCHW").inputs == std::vector<std::string>{"x@NCHW", "bn.gamma", "bn.beta", "bn/moving_mean", "bn/moving_variance"});
  CHECK(plain.weights.at("bn.gamma").data<float>()[3] == 1.f);
  CHECK(plain.weights.at("bn.beta").data<float>()[3] == 0.f);
}

TEST_CASE("tensorflow decoder: Embedding takes int32 ids - an out-of-range id stops the run naming the node", "[tensorflow]") {
  json doc = load_doc("tfjs_embedding");
  const pb::Stream s = to_stream(doc);
  const Graph g = tensorflow().decode(s);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].dtype == pb::DType::i32);
  CHECK(g.inputs[0].shape == pb::Shape{-1, 5});
  CHECK(node(g, "embedding").op == "Embedding");
  CHECK(node(g, "embedding").inputs == std::vector<std::string>{"ids", "embedding/embeddings"});
  // [N, T, D] -> [N, D, T] for the Conv1D; an even kernel under "same": the pad after.
  CHECK(node(g, "embedding@NCW").attrs.ints("perm") == std::vector<int64_t>{0, 2, 1});
  CHECK(node(g, "conv@NCW").attrs.ints("pads_begin") == std::vector<int64_t>{0});
  CHECK(node(g, "conv@NCW").attrs.ints("pads_end") == std::vector<int64_t>{1});
  CHECK(node(g, "pool/pool").attrs.i("global") == 1);
  CHECK(node(g, "pool").op == "Flatten");
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // Id 7 of a 7-row table: a run-time error naming the node, the id and where it is.
  pb::Stream bad = to_stream(doc);
  Tensor ids = bad.tensors.at("input.0").clone();
  ids.data<int32_t>()[3] = 7;
  bad.tensors["input.0"] = ids;
  try {
    run(bad, g);
    FAIL("an out-of-range id ran");
  } catch (const pb::Error& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("node \"embedding\"") != std::string::npos);
    CHECK(what.find("id 7 at flat position 3") != std::string::npos);
  }

  // Float ids: refused when decoding (Keras would cast; the capture must send int32).
  doc["tensors"]["input.0"] = {{"dtype", "f32"}, {"shape", {1, 5}}, {"data", {0, 1, 2, 3, 4}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[1]", "Embedding \"embedding\" takes integer ids; its input is f32"));
}

TEST_CASE("tensorflow decoder: a DAG where one input feeds two conv branches that are added", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_shared_input"));
  const Graph g = tensorflow().decode(s);
  // One Transpose of the shared input serves both branches.
  size_t readers = 0;
  for (const pb::ir::Node& n : g.nodes) readers += size_t(std::count(n.inputs.begin(), n.inputs.end(), std::string("x")));
  CHECK(readers == 1);
  CHECK(node(g, "branch_a@NCHW").inputs[0] == "x@NCHW");
  CHECK(node(g, "branch_b@NCHW").inputs[0] == "x@NCHW");
  // Element-wise layers stay channels-first between spatial layers.
  CHECK(node(g, "sum@NCHW").op == "Add");
  CHECK(node(g, "sum@NCHW").inputs == std::vector<std::string>{"branch_a@NCHW", "branch_b@NCHW"});
  CHECK(node(g, "relu@NCHW").inputs == std::vector<std::string>{"sum@NCHW"});
  CHECK(node(g, "pool@NCHW").inputs == std::vector<std::string>{"relu@NCHW"});
  CHECK(node(g, "flat").inputs == std::vector<std::string>{"pool"});
  check_close(run(s, g)[0], s.tensors.at("output.0"));
}

TEST_CASE("tensorflow decoder: ZeroPadding2D pads zeros, even before a max pool", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_zero_padding"));
  const Graph g = tensorflow().decode(s);
  // A Pad in the layout its input is held in (the channels-last input: pads per dim of [N, H, W, C]),
  // no weights; the pool reads its channels-first form.
  const pb::ir::Node& pad = node(g, "pad");
  CHECK(pad.op == "Pad");
  CHECK(pad.inputs == std::vector<std::string>{"x"});
  CHECK(pad.attrs.ints("pads_begin") == std::vector<int64_t>{0, 1, 0, 0});
  CHECK(pad.attrs.ints("pads_end") == std::vector<int64_t>{0, 0, 2, 0});
  CHECK(g.weights.empty());
  CHECK(node(g, "pool@NCHW").inputs == std::vector<std::string>{"pad@NCHW"});
  CHECK(node(g, "pool@NCHW").attrs.ints("pads_end") == std::vector<int64_t>{0, 0});
  const Tensor got = run(s, g)[0];
  check_close(got, s.tensors.at("output.0"), 0.0);
  // The inputs are <= 0: the padded zeros win every window that touches them.
  CHECK(got.data<float>()[got.numel() - 1] == 0.f);
}

TEST_CASE("tensorflow decoder: LayerNormalization and the capture's composed RMSNorm", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_norms"));
  const Graph g = tensorflow().decode(s);
  CHECK(s.composed.size() == 1);
  const pb::ir::Node& ln = node(g, "ln");
  CHECK(ln.op == "LayerNorm");
  CHECK(ln.inputs == std::vector<std::string>{"dense", "ln/gamma", "ln/beta"});
  CHECK(ln.attrs.i("axis") == -1);
  CHECK(ln.attrs.f("eps") == 0.001);  // tfjs's default
  const pb::ir::Node& rms = node(g, "rms");
  CHECK(rms.op == "RMSNorm");
  CHECK(rms.inputs == std::vector<std::string>{"ln", "rms/scale"});
  CHECK(rms.attrs.f("eps") == 1e-6);
  check_close(run(s, g)[0], s.tensors.at("output.0"));
}

TEST_CASE("tensorflow decoder: the first diverging node of a spatial model is the layer that diverges", "[tensorflow]") {
  // A wrong bias in the middle conv: its tap (channels-last, made right after it) diverges first.
  json doc = load_doc("tfjs_same_even");
  pb::Stream s = to_stream(doc);
  Tensor bias = s.tensors.at("conv_s2/bias").clone();
  bias.data<float>()[1] += 1.f;
  s.tensors["conv_s2/bias"] = bias;
  const pb::host::CaseResult r = pbtest::ladder(s, tensorflow());
  CHECK(r.verdict == pb::host::Verdict::FAIL);
  INFO(r.first_divergence);
  CHECK(r.first_divergence.rfind("node \"conv_s2\" (keras:conv_s2 (Conv2D)", 0) == 0);
}

TEST_CASE("tensorflow decoder: every recorded spatial stream passes the ladder - every tap lines up", "[tensorflow]") {
  for (const char* name : {"tfjs_conv2d", "tfjs_same_even", "tfjs_depthwise", "tfjs_flatten", "tfjs_batchnorm", "tfjs_embedding", "tfjs_shared_input",
                           "tfjs_zero_padding", "tfjs_norms"}) {
    INFO(name);
    const pb::Stream s = to_stream(load_doc(name));
    // Each tap (a channels-last Keras value) meets an IR value of the same layout, within tolerance.
    pbtest::check_passes(pbtest::ladder(s, tensorflow()), s);
  }
}

// ------------------------------------------------------------------ errors

TEST_CASE("tensorflow decoder: an unknown layer class names its path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["topology"]["config"]["layers"][1]["class_name"] = "ConvLSTM2D";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers", "1 node uses what this planet cannot translate: layer class \"ConvLSTM2D\" "
                                                               "(model.topology.config.layers[1].class_name); known layer classes: "));

  doc = load_doc("sequential_square");
  doc["model"]["topology"]["class_name"] = "Graph";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.class_name", "unsupported model class \"Graph\""));

  doc = load_doc("sequential_square");
  doc["model"]["format"] = "torch.fx";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.format", "expected \"keras\""));
}

TEST_CASE("tensorflow decoder: an unknown activation names its path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["activation"] = "foo";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.activation", "unknown activation \"foo\""));

  // Keras has softsign; the IR has no function for it yet: refused, never approximated.
  doc["model"]["topology"]["config"]["layers"][0]["config"]["activation"] = "softsign";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.activation", "\"softsign\" has no IR function yet"));

  // hard_sigmoid's slope depends on the Keras version: without one it is refused.
  doc = load_doc("keras2_functional");
  doc["model"]["topology"].erase("keras_version");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[4].config.activation", "needs \"keras_version\""));
}

TEST_CASE("tensorflow decoder: missing weights name their path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["weights"]["dense_Dense1"].erase("bias");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense1", "layer \"dense_Dense1\" (Dense) has no \"bias\" weight"));

  doc = load_doc("sequential_square");
  doc["model"]["weights"].erase("dense_Dense2");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights", "no entry for layer \"dense_Dense2\" (Dense needs \"kernel\")"));

  doc = load_doc("sequential_square");
  doc["tensors"].erase("dense_Dense2/kernel");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense2.kernel", "names tensor \"dense_Dense2/kernel\""));

  doc = load_doc("sequential_square");
  doc["model"].erase("weights");
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[0]", "no \"weights\" table"));
}

TEST_CASE("tensorflow decoder: wrong weight shapes name their path", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["tensors"]["dense_Dense2/kernel"] = {{"dtype", "f32"}, {"shape", {3, 2}}, {"data", {1, 2, 3, 4, 5, 6}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.weights.dense_Dense2.kernel", "expected a float kernel of shape [in, units] = [*, 3] for Dense \"dense_Dense2\", got f32 [3, 2]"));

  doc = load_doc("sequential_square");
  doc["tensors"]["dense_Dense1/bias"] = {{"dtype", "f32"}, {"shape", {2}}, {"data", {1, 2}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense1.bias", "expected a float bias of shape [3]"));

  // A kernel in torch's [out, in] layout is caught whenever in != out.
  doc = load_doc("keras2_functional");
  doc["tensors"]["dense_2/kernel"] = {{"dtype", "f32"}, {"shape", {2, 3}}, {"data", {1, 2, 3, 4, 5, 6}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_2.kernel", "[in, units] = [*, 2]"));
}

TEST_CASE("tensorflow decoder: weights nobody uses are errors, not dropped", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["use_bias"] = false;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.dense_Dense1.bias", "weight \"bias\" is not used by Dense"));

  doc = load_doc("sequential_square");
  doc["model"]["weights"]["ghost"] = {{"kernel", "dense_Dense1/kernel"}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.ghost", "no layer \"ghost\" in the model"));
}

TEST_CASE("tensorflow decoder: a stream tensor no layer uses is an error naming it", "[tensorflow]") {
  json doc = load_doc("sequential_square");
  doc["tensors"]["ghost/kernel"] = {{"dtype", "f32"}, {"shape", {1}}, {"data", {0}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("tensors[\"ghost/kernel\"]", "not used by any part of the model"));

  // f64 weights compute in f32: a weight used as it is rounds once into "<tensor>@f32".
  doc = load_doc("sequential_square");
  doc["tensors"]["dense_Dense1/bias"]["dtype"] = "f64";
  const Graph g = decode(doc);
  CHECK(node(g, "dense_Dense1").inputs[2] == "dense_Dense1/bias@f32");
  CHECK(g.weights.at("dense_Dense1/bias@f32").dtype() == pb::DType::f32);
}

TEST_CASE("tensorflow decoder: config keys a layer does not understand are refused, never ignored", "[tensorflow]") {
  const std::string dense = "model.topology.config.layers[0].config";
  auto with = [](const char* stream, size_t layer, const std::string& key, const json& value) {
    json doc = load_doc(stream);
    doc["model"]["topology"]["config"]["layers"][layer]["config"][key] = value;
    return doc;
  };
  // An unknown key: refused at its path, naming what the layer understands.
  CHECK_THROWS_MATCHES(decode(with("sequential_square", 0, "kernel_quantizer", "int8")), pb::Error,
                       ErrorAt(dense + ".kernel_quantizer", "attribute not understood for Dense (known: units, activation, use_bias"));
  // A key another layer understands is unknown here.
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", 1, "depth_multiplier", 2)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.depth_multiplier", "attribute not understood for Conv2D"));
  CHECK_THROWS_MATCHES(decode(with("keras2_functional", 5, "rate2", 0.5)), pb::Error,
                       ErrorAt("model.topology.config.layers[5].config.rate2", "attribute not understood for Dropout"));
  // Informational keys (initializers, regularizers, constraints, trainable) are accepted anywhere.
  CHECK_NOTHROW(decode(with("sequential_square", 0, "kernel_regularizer", {{"class_name", "L2"}, {"config", {{"l2", 0.01}}}})));
  CHECK_NOTHROW(decode(with("tfjs_batchnorm", 1, "trainable", false)));
  CHECK_NOTHROW(decode(with("tfjs_batchnorm", 1, "synchronized", false)));  // Keras 3; training only

  // Keys that change what is computed, understood and refused by name when set.
  CHECK_THROWS_MATCHES(decode(with("sequential_square", 0, "lora_rank", 4)), pb::Error,
                       ErrorAt(dense + ".lora_rank", "LoRA-adapted Dense is not supported"));
  CHECK_NOTHROW(decode(with("sequential_square", 0, "lora_rank", nullptr)));
  CHECK_THROWS_MATCHES(decode(with("sequential_square", 0, "quantization_config", {{"class_name", "Int8QuantizationConfig"}})),
                       pb::Error, ErrorAt(dense + ".quantization_config", "a quantized Dense is not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", 1, "dora_rank", 2)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.dora_rank", "DoRA-adapted Conv2D is not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_depthwise", 1, "groups", 2)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.groups", "only 1"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_batchnorm", 1, "renorm", true)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.renorm", "renorm true is not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_embedding", 1, "sparse", true)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.sparse", "not supported"));

  // The InputLayer's config too.
  CHECK_THROWS_MATCHES(decode(with("functional_add", 0, "sparse", true)), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.sparse", "sparse inputs are not supported"));
  CHECK_THROWS_MATCHES(decode(with("functional_add", 0, "input_tensor", "t")), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.input_tensor", "attribute not understood for InputLayer"));
}

TEST_CASE("tensorflow decoder: a dtype other than float32 is refused, as a name or a dtype policy", "[tensorflow]") {
  const std::string layer = "model.topology.config.layers[1].config";
  json doc = load_doc("keras3_functional");  // Keras 3: {"class_name": "DTypePolicy", "config": {"name": "float32"}}
  doc["model"]["topology"]["config"]["layers"][1]["config"]["dtype"]["config"]["name"] = "mixed_float16";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(layer + ".dtype.config.name", "only float32 is supported (the IR computes in f32), got dtype policy \"mixed_float16\""));
  doc["model"]["topology"]["config"]["layers"][1]["config"]["dtype"] = "float64";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(layer + ".dtype", "only float32 is supported (the IR computes in f32), got \"float64\""));
  // Keras 2's mixed-precision policy object.
  doc = load_doc("keras2_functional");
  doc["model"]["topology"]["config"]["layers"][1]["config"]["dtype"] = {{"class_name", "Policy"}, {"config", {{"name", "mixed_bfloat16"}}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt(layer + ".dtype.config.name", "got dtype policy \"mixed_bfloat16\""));
  doc["model"]["topology"]["config"]["layers"][1]["config"]["dtype"] = {{"class_name", "Policy"}, {"config", {{"name", "float32"}}}};
  CHECK_NOTHROW(decode(doc));
  doc = load_doc("sequential_square");  // tfjs writes the name
  doc["model"]["topology"]["config"]["layers"][0]["config"]["dtype"] = "int32";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[0].config.dtype", "got \"int32\""));
}

TEST_CASE("tensorflow decoder: malformed functional graphs name their path", "[tensorflow]") {
  json doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["layers"][3]["inbound_nodes"][0][1][0] = "nowhere";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[3].inbound_nodes[0][1]", "layer \"nowhere\", which no layer produces"));

  doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["output_layers"][0][0] = "nowhere";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.output_layers[0]", "which no layer produces"));

  doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["layers"][1]["inbound_nodes"][0][0][3] = {{"training", true}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1].inbound_nodes[0][0][3].training", "call keyword argument \"training\" is not supported"));

  doc = load_doc("functional_add");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["batch_input_shape"] = {nullptr, 5};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[0].config.batch_input_shape", "the model expects [null,5]"));

  // A layer called with a number of inputs its class does not take.
  doc = load_doc("keras2_functional");
  doc["model"]["topology"]["config"]["layers"][3]["inbound_nodes"][0].push_back(json::array({"input_1", 0, 0, json::object()}));
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[3]", "Subtract takes exactly two inputs, got 3"));
  doc = load_doc("keras2_functional");
  doc["model"]["topology"]["config"]["layers"][1]["inbound_nodes"][0].push_back(json::array({"input_1", 0, 0, json::object()}));
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[1]", "Dense takes one input, got 2"));

  doc = load_doc("keras3_functional");
  doc["model"]["topology"]["config"]["layers"][3]["inbound_nodes"][0]["args"][0][1] = 3;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[3].inbound_nodes[0].args[0][1]", "expected a keras tensor"));
}

TEST_CASE("tensorflow decoder: spatial layer configs name their path", "[tensorflow]") {
  const std::string conv = "model.topology.config.layers[1].config";
  auto with = [](const char* stream, const std::string& key, const json& value, size_t layer = 1) {
    json doc = load_doc(stream);
    doc["model"]["topology"]["config"]["layers"][layer]["config"][key] = value;
    return doc;
  };
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "data_format", "channels_first")), pb::Error,
                       ErrorAt(conv + ".data_format", "data_format \"channels_first\" is not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "padding", "full")), pb::Error, ErrorAt(conv + ".padding", "expected \"valid\" or \"same\", got \"full\""));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "kernel_size", {2, 3, 1})), pb::Error, ErrorAt(conv + ".kernel_size", "expected 2 values, got 3"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "strides", {1})), pb::Error, ErrorAt(conv + ".strides", "expected 2 values, got 1"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "groups", 3)), pb::Error, ErrorAt(conv + ".groups", "3 groups do not divide 2 input channels"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "activation", "softmax")), pb::Error, ErrorAt(conv + ".activation", "use a Softmax layer"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "activation", "foo")), pb::Error, ErrorAt(conv + ".activation", "unknown activation \"foo\""));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "filters", 4)), pb::Error,
                       ErrorAt("model.weights.conv.kernel", "expected a float kernel of shape [kernel..., in_channels/groups, filters] = [2, 3, 2, 4]"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "use_bias", false)), pb::Error, ErrorAt("model.weights.conv.bias", "weight \"bias\" is not used by Conv2D"));
  // A (dilated) window larger than the input: (2 - 1)·5 + 1 = 6 rows over 5 (the Conv schema says so).
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "dilation_rate", {5, 1})), pb::Error,
                       ErrorAt("model.topology.config.layers[1]", "spatial size 5 (padded 5) is smaller than the window 6"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "strides", {1, 0})), pb::Error, ErrorAt(conv + ".strides", "expected positive sizes"));
  // A Conv2D fed a rank-3 input.
  json doc = load_doc("tfjs_conv2d");
  doc["model"]["topology"]["config"]["layers"][0]["config"]["batch_input_shape"] = {nullptr, 5, 12};
  doc["tensors"]["input.0"] = {{"dtype", "f32"}, {"shape", {1, 5, 12}}, {"data", std::vector<float>(60, 0.f)}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1]", "needs a float input [batch, 2 spatial dims, channels], got f32 [1, 5, 12]"));

  CHECK_THROWS_MATCHES(decode(with("tfjs_depthwise", "depth_multiplier", 2)), pb::Error,
                       ErrorAt("model.weights.dw.depthwise_kernel", "[kernel..., channels, depth_multiplier] = [3, 2, 2, 2]"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_same_even", "pool_size", {2, 2, 2}, 3)), pb::Error,
                       ErrorAt("model.topology.config.layers[3].config.pool_size", "expected 2 values"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_embedding", "keepdims", true, 3)), pb::Error,
                       ErrorAt("model.topology.config.layers[3].config.keepdims", "keepdims true is not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_zero_padding", "padding", {{1, 0}})), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.padding", "[[before, after] per dim]"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_zero_padding", "padding", {{1, -1}, {0, 0}})), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.padding", "expected an integer"));

  // Conv1D "causal" (Keras 2/3; tfjs 4.22 accepts it but cannot run it): (k - 1)·d before, none after.
  const Graph causal = decode(with("tfjs_embedding", "padding", "causal", 2));
  CHECK(node(causal, "conv@NCW").attrs.ints("pads_begin") == std::vector<int64_t>{1});
  CHECK(node(causal, "conv@NCW").attrs.ints("pads_end") == std::vector<int64_t>{0});
  CHECK_THROWS_MATCHES(decode(with("tfjs_conv2d", "padding", "causal")), pb::Error, ErrorAt(conv + ".padding", "expected \"valid\" or \"same\""));
}

TEST_CASE("tensorflow decoder: normalisation and embedding configs name their path", "[tensorflow]") {
  auto with = [](const char* stream, size_t layer, const std::string& key, const json& value) {
    json doc = load_doc(stream);
    doc["model"]["topology"]["config"]["layers"][layer]["config"][key] = value;
    return doc;
  };
  CHECK_THROWS_MATCHES(decode(with("tfjs_batchnorm", 1, "axis", 1)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.axis", "only the channels axis (-1) is supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_batchnorm", 1, "axis", 4)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.axis", "axis 4 is not a feature axis of a rank-4 input"));
  json doc = load_doc("tfjs_batchnorm");
  doc["model"]["topology"]["config"]["layers"][1]["config"].erase("epsilon");  // never guessed
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[1].config.epsilon", "missing required field"));
  doc = load_doc("tfjs_batchnorm");
  doc["tensors"]["bn/moving_variance"] = {{"dtype", "f32"}, {"shape", {3}}, {"data", {1, 1, 1}}};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.bn.moving_variance", "expected a float moving_variance of shape [channels] = [4]"));

  CHECK_THROWS_MATCHES(decode(with("tfjs_norms", 2, "rms_scaling", true)), pb::Error,
                       ErrorAt("model.topology.config.layers[2].config.rms_scaling", "not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_norms", 2, "axis", {0})), pb::Error,
                       ErrorAt("model.topology.config.layers[2].config.axis", "not a feature axis"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_norms", 3, "axis", 0)), pb::Error, ErrorAt("model.topology.config.layers[3].config.axis", "not a feature axis"));
  doc = load_doc("tfjs_norms");
  doc["model"]["weights"]["rms"]["gamma"] = doc["model"]["weights"]["rms"]["scale"];
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.rms.gamma", "weight \"gamma\" is not used by RMSNorm"));

  CHECK_THROWS_MATCHES(decode(with("tfjs_embedding", 1, "mask_zero", true)), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.mask_zero", "mask_zero true is not supported"));
  CHECK_THROWS_MATCHES(decode(with("tfjs_embedding", 1, "input_dim", 8)), pb::Error,
                       ErrorAt("model.weights.embedding.embeddings", "expected a float embeddings of shape [input_dim, output_dim] = [8, 3]"));
}

TEST_CASE("tensorflow decoder: shapes are tracked through every layer - impossible ones name their path", "[tensorflow]") {
  json doc = load_doc("tfjs_functional");
  json& layers = doc["model"]["topology"]["config"]["layers"];
  for (json& l : layers) {
    if (l["class_name"] == "Reshape") l["config"]["target_shape"] = {3, 4};  // 8 features in
    if (l["class_name"] == "Concatenate") l["config"]["axis"] = 0;
  }
  size_t reshape = 0, cat = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (layers[i]["class_name"] == "Reshape") reshape = i;
    if (layers[i]["class_name"] == "Concatenate") cat = i;
  }
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(cat) + "].config.axis", "axis 0 is not a feature axis"));
  layers[cat]["config"]["axis"] = -1;
  // Whether the elements fit is the Reshape schema's to say (naming the layer); the batch is the captured one.
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(reshape) + "]", "cannot reshape [6, 8] (48 elements) to [0, 3, 4] = [6, 3, 4]"));
  // What Keras allows in target_shape is said at its path (0 would mean "copy" to the IR).
  layers[reshape]["config"]["target_shape"] = {0, 8};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[" + std::to_string(reshape) + "].config.target_shape", "expected positive sizes and at most one -1"));
  layers[reshape]["config"]["target_shape"] = {-1, 4};  // -1 is inferred: 2
  const Graph g = decode(doc);
  CHECK(node(g, "reshape").attrs.ints("shape") == std::vector<int64_t>{0, -1, 4});

  // Keras 3 names the depthwise kernel "kernel": the weight table says which.
  doc = load_doc("tfjs_depthwise");
  doc["model"]["weights"]["dw"]["kernel"] = doc["model"]["weights"]["dw"]["depthwise_kernel"];
  doc["model"]["weights"]["dw"].erase("depthwise_kernel");
  CHECK(node(decode(doc), "dw@NCHW").inputs[1] == "dw/depthwise_kernel@OIHW");  // the stream tensor's name
}

// ------------------------------------------------------------------ issue-10 layer families (record_families.js)

TEST_CASE("tensorflow decoder: Conv2DTranspose [kh, kw, out, in] becomes ConvTranspose [in, out, kh, kw]", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_conv_transpose"));
  const Graph g = tensorflow().decode(s);
  // kernel 2x3, stride 2, same on 3x4: out 6x8, full (in-1)·2 + k = 6x9: crop 0 + 0 rows, 0 + 1 columns.
  const pb::ir::Node& ct = node(g, "ct_same/linear");
  CHECK(ct.op == "ConvTranspose");
  CHECK(ct.inputs == std::vector<std::string>{"x@NCHW", "ct_same/kernel@IOHW", "ct_same/bias"});
  CHECK(ct.attrs.ints("pads_begin") == std::vector<int64_t>{0, 0});
  CHECK(ct.attrs.ints("pads_end") == std::vector<int64_t>{0, 1});
  CHECK(node(g, "ct_same@NCHW").op == "Activation");
  // kernel 1 below strides [2, 3]: the output is in·s, the missing end is output_padding [1, 2].
  CHECK(node(g, "ct_k1@NCHW").attrs.ints("output_padding") == std::vector<int64_t>{1, 2});
  const Tensor& k = s.tensors.at("ct_same/kernel");
  const Tensor& w = g.weights.at("ct_same/kernel@IOHW");
  REQUIRE(k.shape() == pb::Shape{2, 3, 3, 2});
  REQUIRE(w.shape() == pb::Shape{2, 3, 2, 3});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t o = 0; o < 3; ++o)
      for (int64_t t = 0; t < 6; ++t) CHECK(w.data<float>()[(i * 3 + o) * 6 + t] == k.data<float>()[(t * 3 + o) * 2 + i]);
  check_close(run(s, g)[0], s.tensors.at("output.0"));
  // The crop at the start instead of the end visibly fails.
  Graph wrong = g;
  for (pb::ir::Node& n : wrong.nodes)
    if (n.name == "ct_same/linear") n.attrs.set("pads_begin", std::vector<int64_t>{0, 1}), n.attrs.set("pads_end", std::vector<int64_t>{0, 0});
  CHECK(max_diff(run(s, wrong)[0], s.tensors.at("output.0")) > 0.05);

  json doc = load_doc("tfjs_conv_transpose");
  doc["model"]["topology"]["config"]["layers"][1]["config"]["dilation_rate"] = {2, 2};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.dilation_rate", "a dilated transposed convolution is not supported"));
  doc = load_doc("tfjs_conv_transpose");
  doc["model"]["topology"]["config"]["layers"][1]["config"]["padding"] = "causal";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.topology.config.layers[1].config.padding", "expected \"valid\" or \"same\""));
}

TEST_CASE("tensorflow decoder: UpSampling2D is Resize with tfjs's asymmetric coordinates", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_upsample"));
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& near = node(g, "up_nearest@NCHW");
  CHECK(near.op == "Resize");
  CHECK(near.attrs.s("mode") == "nearest");
  CHECK(near.attrs.s("coordinates") == "asymmetric");
  CHECK(near.attrs.ints("sizes") == std::vector<int64_t>{6, 12});
  CHECK(node(g, "up_bilinear@NCHW").attrs.s("mode") == "linear");
  const auto got = run(s, g);
  check_close(got[0], s.tensors.at("output.0"));
  check_close(got[1], s.tensors.at("output.1"));
  // Half-pixel centres (PyTorch's and the IR's default) are not what the layer computes.
  Graph wrong = g;
  for (pb::ir::Node& n : wrong.nodes)
    if (n.name == "up_bilinear@NCHW") n.attrs.set("coordinates", std::string("half_pixel"));
  CHECK(max_diff(run(s, wrong)[1], s.tensors.at("output.1")) > 0.05);

  json doc = load_doc("tfjs_upsample");
  doc["model"]["topology"]["config"]["layers"][2]["config"]["interpolation"] = "bicubic";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[2].config.interpolation", "expected \"nearest\" or \"bilinear\", got \"bicubic\""));
}

TEST_CASE("tensorflow decoder: SeparableConv2D is a depthwise Conv then a pointwise Conv", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_separable"));
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& dw = node(g, "sep/depthwise");
  CHECK(dw.op == "Conv");
  CHECK(dw.attrs.i("groups") == 2);
  CHECK(dw.inputs == std::vector<std::string>{"x@NCHW", "sep/depthwise_kernel@OIHW"});
  const pb::ir::Node& pw = node(g, "sep@NCHW");
  CHECK(pw.inputs == std::vector<std::string>{"sep/depthwise", "sep/pointwise_kernel@OIHW", "sep/bias"});
  CHECK(pw.attrs.s("activation") == "tanh");
  CHECK(g.weights.at("sep/pointwise_kernel@OIHW").shape() == pb::Shape{3, 4, 1, 1});
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // tfjs writes no depth_multiplier; a config that states another one than the kernel's is refused at the weight.
  json doc = load_doc("tfjs_separable");
  doc["model"]["topology"]["config"]["layers"][1]["config"]["depth_multiplier"] = 3;
  CHECK_THROWS_MATCHES(decode(doc), pb::Error, ErrorAt("model.weights.sep.depthwise_kernel", "expected a float depthwise_kernel of shape"));
}

TEST_CASE("tensorflow decoder: PReLU with one alpha per channel", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_prelu"));
  const Graph g = tensorflow().decode(s);
  const pb::ir::Node& p = node(g, "prelu@NCHW");
  CHECK(p.op == "PReLU");
  CHECK(p.inputs == std::vector<std::string>{"conv@NCHW", "prelu/alpha@C"});
  CHECK(g.weights.at("prelu/alpha@C").shape() == pb::Shape{3});
  CHECK(node(g, "prelu_flat").op == "PReLU");  // [N, F]: the features are dim 1 as they are
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  // A slope per position (no shared axes on a spatial input) is refused naming shared_axes.
  json doc = load_doc("tfjs_prelu");
  doc["model"]["topology"]["config"]["layers"][2]["config"]["shared_axes"] = {1};
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[2].config.shared_axes", "a slope per position (shape [1, 2, 3]) is not supported"));
}

TEST_CASE("tensorflow decoder: TimeDistributed applies its layer to batch x time and keeps the batch dynamic", "[tensorflow]") {
  const pb::Stream s = to_stream(load_doc("tfjs_time_distributed"));
  const Graph g = tensorflow().decode(s);
  CHECK(node(g, "td/merged").attrs.ints("shape") == std::vector<int64_t>{-1, 4, 4, 2});
  CHECK(node(g, "td/inner@NCHW").op == "Conv");
  CHECK(node(g, "td/inner@NCHW").inputs[1] == "td/kernel@OIHW");  // the wrapper's weights
  CHECK(node(g, "td").attrs.ints("shape") == std::vector<int64_t>{-1, 3, 2, 2, 3});
  check_close(run(s, g)[0], s.tensors.at("output.0"));

  json doc = load_doc("tfjs_time_distributed");
  doc["model"]["topology"]["config"]["layers"][1]["config"]["layer"]["config"]["kernel_quantizer"] = "int8";
  CHECK_THROWS_MATCHES(decode(doc), pb::Error,
                       ErrorAt("model.topology.config.layers[1].config.layer.config.kernel_quantizer", "attribute not understood for Conv2D"));
}
