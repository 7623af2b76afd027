// Keras's spatial layers: Conv1D/2D/3D, DepthwiseConv2D, the pools, the global pools and
// ZeroPadding. Channels-last in Keras, channels-first in the IR's Conv and Pool: those read their
// input channels-first and compute there (ZeroPadding's Pad works in either layout); Keras-layout
// values appear only where used (Flatten, Dense, outputs, taps). data_format "channels_first" is
// refused (tfjs's wasm backend has none).
#include <algorithm>

#include "../layer.h"

namespace pb::tensorflow {

namespace {

// "OIHW" for 2 spatial dims: the IR's conv weight layout, the suffix of the derived weight.
std::string oi_layout(size_t rank) { return "OI" + std::string("DHW").substr(3 - rank); }

// The conv's activation, fused into the Conv (a softmax is not element-wise: refused).
void fuse_activation(const Layer& L, ir::Attrs& a) {
  const auto activation = L.config().find("activation");
  if (!activation) return;
  const Act act = keras_activation(L.model(), *activation);
  if (act.softmax) activation->fail("a softmax activation inside a convolution is not supported; use a Softmax layer");
  for (const auto& [key, v] : act.params.all()) a.set(key, v);
  a.set("activation", act.function);
}

// Kernel, strides and dilations of a conv's config, and its Keras padding on the input.
struct ConvWindow {
  Ints kernel, strides, dilations;
  Pads pads;
};

ConvWindow conv_window(const Layer& L, size_t rank, bool causal_ok) {
  const JsonRef c = L.config();
  ConvWindow w{per_dim(c, "kernel_size", rank), per_dim(c, "strides", rank, 1), per_dim(c, "dilation_rate", rank, 1), {}};
  w.pads = keras_padding(c["padding"], L.shape(), w.kernel, w.strides, w.dilations, causal_ok);
  return w;
}

void emit_conv(const Layer& L, const ConvWindow& w, int64_t groups, std::vector<std::string> inputs) {
  ir::Attrs a = window_attrs(w.strides, w.dilations, w.pads.begin, w.pads.end);
  a.set("groups", groups);
  fuse_activation(L, a);
  L.emit(Layout::ChannelsFirst, "Conv", std::move(inputs), std::move(a));
}

// A depthwise kernel [k..., C, M] as the IR's grouped conv weight [C·M, 1, k...]: Keras's output
// channel c·M + m is input channel c times multiplier m, IR group c's output m.
Tensor depthwise_to_ir(const Tensor& k) {
  const Shape& ks = k.shape();
  const size_t r = ks.size();
  Ints perm = {int64_t(r) - 2, int64_t(r) - 1};  // [C, M, k...]
  for (size_t d = 0; d + 2 < r; ++d) perm.push_back(int64_t(d));
  Shape ws = {ks[r - 2] * ks[r - 1], 1};
  ws.insert(ws.end(), ks.begin(), ks.end() - 2);
  return permuted(k, perm).reshaped(ws);
}

}  // namespace

// Conv1D/2D/3D: kernel [k..., in/groups, filters] -> the IR's [filters, in/groups, k...] by an
// explicit copy; optional bias [filters]; the activation fused.
KerasTranslator conv(size_t rank) {
  return {{"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation", "use_bias", "lora_rank",
           "lora_alpha", "dora_rank", "dora_alpha"},
          1, [rank](const Layer& L) {
            check_spatial_input(L, rank);
            refuse_adapters(L);
            const JsonRef c = L.config();
            const int64_t cin = L.shape().back(), filters = c["filters"].i64();
            const int64_t groups = c.i64("groups", 1);  // Keras >= 2.3; tfjs has none
            if (groups < 1 || cin % groups || filters % groups)
              c["groups"].fail(std::to_string(groups) + " groups do not divide " + std::to_string(cin) + " input channels and " +
                               std::to_string(filters) + " filters");
            const ConvWindow w = conv_window(L, rank, rank == 1);
            Shape want(w.kernel.begin(), w.kernel.end());
            want.insert(want.end(), {cin / groups, filters});
            std::vector<std::string> inputs = {
                L.x(Layout::ChannelsFirst), L.derived("kernel", want, "[kernel..., in_channels/groups, filters]", oi_layout(rank),
                                     [](const Tensor& k) { return permuted(k, kernel_oi_first_perm(k.shape().size())); })};
            if (c.boolean("use_bias", true)) inputs.push_back(L.weight("bias", {filters}, "[out_channels]"));
            emit_conv(L, w, groups, std::move(inputs));
          }};
}

// DepthwiseConv2D: kernel [k..., C, M] -> the IR's grouped conv weight [C·M, 1, k...]. Keras's
// output channel c·M + m is input channel c times multiplier m: IR group c, its output m.
KerasTranslator depthwise_conv(size_t rank) {
  // groups: Keras 2 writes the base class's 1.
  return {{"kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier", "groups", "activation", "use_bias"},
          1, [rank](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef c = L.config();
            refuse_unless(c, "groups", c.i64("groups", 1) == 1, "a depthwise convolution has no groups setting (only 1)");
            const int64_t cin = L.shape().back(), mult = c.i64("depth_multiplier", 1);
            const ConvWindow w = conv_window(L, rank, false);
            Shape want(w.kernel.begin(), w.kernel.end());
            want.insert(want.end(), {cin, mult});
            // Keras 3 calls the weight "kernel": the weight table says which.
            const std::string kname = L.has_weight("kernel") && !L.has_weight("depthwise_kernel") ? "kernel" : "depthwise_kernel";
            std::vector<std::string> inputs = {
                L.x(Layout::ChannelsFirst), L.derived(kname, want, "[kernel..., channels, depth_multiplier]", oi_layout(rank), depthwise_to_ir)};
            if (c.boolean("use_bias", true)) inputs.push_back(L.weight("bias", {cin * mult}, "[out_channels]"));
            emit_conv(L, w, cin, std::move(inputs));
          }};
}

// SeparableConv1D/2D: the depthwise conv (groups C, weight [C·M, 1, k...], no bias, no
// activation; "<value>/depthwise") then the pointwise 1×1 conv ([k 1..., C·M, filters] ->
// [filters, C·M, 1...]) with the bias and the activation. tfjs writes no depth_multiplier: the
// depthwise kernel's last dim says it (and must equal the config's where one is written).
KerasTranslator separable_conv(size_t rank) {
  return {{"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier", "activation", "use_bias"},
          1, [rank](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef c = L.config();
            const int64_t cin = L.shape().back(), filters = c["filters"].i64();
            const ConvWindow w = conv_window(L, rank, false);
            Shape want(w.kernel.begin(), w.kernel.end());
            want.insert(want.end(), {cin, c.has("depth_multiplier") ? c["depth_multiplier"].i64() : -1});
            const int64_t mult = L.checked("depthwise_kernel", want, "[kernel..., channels, depth_multiplier]").shape().back();
            const std::string dw_weight =
                L.derived("depthwise_kernel", want, "[kernel..., channels, depth_multiplier]", oi_layout(rank), depthwise_to_ir);
            ir::Attrs da = window_attrs(w.strides, w.dilations, w.pads.begin, w.pads.end);
            da.set("groups", cin);
            const std::string dw = L.emit_step("depthwise", "Conv", {L.x(Layout::ChannelsFirst), dw_weight}, std::move(da));
            Shape pwant(rank, 1);
            pwant.insert(pwant.end(), {cin * mult, filters});
            std::vector<std::string> inputs = {dw, L.derived("pointwise_kernel", pwant, "[1..., channels·depth_multiplier, filters]", oi_layout(rank),
                                                             [](const Tensor& k) { return permuted(k, kernel_oi_first_perm(k.shape().size())); })};
            if (c.boolean("use_bias", true)) inputs.push_back(L.weight("bias", {filters}, "[filters]"));
            const Ints ones(rank, 1), zeros(rank, 0);
            emit_conv(L, ConvWindow{ones, ones, ones, Pads{zeros, zeros}}, 1, std::move(inputs));
          }};
}

// Conv2DTranspose / Conv3DTranspose: kernel [k..., filters, in] -> the IR's [in, filters, k...].
// tfjs computes TF's conv2dTranspose to the output size deconvLength gives ("valid":
// in·s + max(k − s, 0); "same": in·s), which is the forward conv of that size with Keras's
// padding: the full transposed length (in − 1)·s + k minus that size is cropped, half (rounded
// down) at the start and the rest at the end; a size beyond the full length (k < s) is
// output_padding at the end (only the bias reaches it). No dilation (tfjs writes none; Keras's
// dilation_rate and output_padding are understood and refused unless 1 / null).
KerasTranslator conv_transpose(size_t rank) {
  return {{"filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "output_padding", "activation", "use_bias", "groups"},
          1, [rank](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef c = L.config();
            if (auto d = c.find("dilation_rate"); d && !(int_or_list(*d, rank) == Ints(rank, 1)))
              d->fail("a dilated transposed convolution is not supported (tfjs has none)");
            if (auto op = c.find("output_padding"); op && !op->is_null()) op->fail("output_padding is not supported (tfjs has none)");
            refuse_unless(c, "groups", c.i64("groups", 1) == 1, "a grouped transposed convolution is not supported");
            const int64_t cin = L.shape().back(), filters = c["filters"].i64();
            const Ints kernel = per_dim(c, "kernel_size", rank), strides = per_dim(c, "strides", rank, 1);
            const JsonRef padding = c["padding"];
            const std::string mode = padding.str();
            if (mode != "valid" && mode != "same") padding.fail("expected \"valid\" or \"same\", got \"" + mode + "\"");
            Ints begin(rank, 0), end(rank, 0), extra(rank, 0);
            for (size_t i = 0; i < rank; ++i) {
              const int64_t in = L.shape()[i + 1], k = kernel[i], s = strides[i];
              const int64_t out = mode == "same" ? in * s : in * s + std::max<int64_t>(k - s, 0);
              const int64_t crop = (in - 1) * s + k - out;
              if (crop >= 0) {
                begin[i] = crop / 2;
                end[i] = crop - begin[i];
              } else {
                extra[i] = -crop;
              }
            }
            Shape want(kernel.begin(), kernel.end());
            want.insert(want.end(), {filters, cin});
            Ints perm = {int64_t(rank) + 1, int64_t(rank)};  // [in, filters, k...]
            for (size_t d = 0; d < rank; ++d) perm.push_back(int64_t(d));
            std::vector<std::string> inputs = {
                L.x(Layout::ChannelsFirst),
                L.derived("kernel", want, "[kernel..., filters, in_channels]", "IO" + std::string("DHW").substr(3 - rank),
                          [perm](const Tensor& k) { return permuted(k, perm); })};
            if (c.boolean("use_bias", true)) inputs.push_back(L.weight("bias", {filters}, "[filters]"));
            ir::Attrs a = window_attrs(strides, Ints(rank, 1), begin, end);
            a.set("output_padding", extra);
            // ConvTranspose fuses no activation: a separate Activation after it (a softmax refused).
            const auto activation = c.find("activation");
            const Act act = activation ? keras_activation(L.model(), *activation) : Act{"identity", {}};
            if (act.softmax) activation->fail("a softmax activation inside a convolution is not supported; use a Softmax layer");
            if (act.function == "identity") return L.emit(Layout::ChannelsFirst, "ConvTranspose", std::move(inputs), std::move(a));
            const std::string y = L.emit_step("linear", "ConvTranspose", std::move(inputs), std::move(a));
            ir::Attrs f = act.params;
            f.set("function", act.function);
            L.emit(Layout::ChannelsFirst, "Activation", {y}, std::move(f));
          }};
}

// UpSampling2D(size, interpolation): Resize to [H·sh, W·sw] with tfjs's resizeNearestNeighbor /
// resizeBilinear as the layer calls them (align_corners and half_pixel_centers false): source
// coordinate o · in / out, "asymmetric" (nearest: its floor). UpSampling1D (size an int; Keras
// 2/3, no data_format) and UpSampling3D (Keras 2/3; tfjs has neither) repeat each element
// `size` times along each spatial dim: nearest, the same Resize.
KerasTranslator upsampling(size_t rank) {
  std::vector<std::string> keys = {"size"};
  if (rank > 1) keys.push_back("data_format");
  if (rank == 2) keys.push_back("interpolation");
  return {keys, 1, [rank](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef c = L.config();
            const Ints size = per_dim(c, "size", rank, 2);
            const std::string interp = c.str("interpolation", "nearest");
            if (interp != "nearest" && interp != "bilinear")
              c["interpolation"].fail("expected \"nearest\" or \"bilinear\", got \"" + interp + "\"");
            Ints sizes;
            for (size_t i = 0; i < rank; ++i) sizes.push_back(L.shape()[i + 1] * size[i]);
            L.emit(Layout::ChannelsFirst, "Resize", {L.x(Layout::ChannelsFirst)},
                   attrs_of({{"mode", std::string(interp == "nearest" ? "nearest" : "linear")}, {"coordinates", std::string("asymmetric")}, {"sizes", sizes}}));
          }};
}

// MaxPooling / AveragePooling 1D-3D. Keras never counts padding in an average ("same" averages
// only the real elements: count_include_pad 0); max pooling ignores it.
KerasTranslator pool(size_t rank, const std::string& mode) {
  return {{"pool_size", "strides", "padding", "data_format"}, 1, [rank, mode](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef c = L.config();
            const Ints kernel = per_dim(c, "pool_size", rank);
            const Ints strides = c.has("strides") ? per_dim(c, "strides", rank) : kernel;  // null: the pool size
            const Ints ones(rank, 1);
            const Pads pads = keras_padding(c["padding"], L.shape(), kernel, strides, ones, false);
            ir::Attrs a = window_attrs(strides, ones, pads.begin, pads.end);
            a.set("mode", mode);
            a.set("kernel", kernel);
            a.set("count_include_pad", int64_t(0));
            L.emit(Layout::ChannelsFirst, "Pool", {L.x(Layout::ChannelsFirst)}, std::move(a));
          }};
}

// GlobalAverage/MaxPooling 1D-3D: a global Pool ([N, C, 1...]), then Flatten to Keras's [N, C].
KerasTranslator global_pool(size_t rank, const std::string& mode) {
  return {{"data_format", "keepdims"}, 1, [rank, mode](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef c = L.config();
            refuse_unless(c, "keepdims", !c.boolean("keepdims", false),
                          "keepdims true is not supported (the output would keep Keras's [N, 1..., C] layout)");
            const std::string pooled = L.emit_step("pool", "Pool", {L.x(Layout::ChannelsFirst)}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}));
            L.emit(Layout::ChannelsLast, "Flatten", {pooled}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}));
          }};
}

// ZeroPadding1D/2D/3D: a Pad with zeros, in whichever layout the input is held (pads per IR dim).
// padding: n, [a, b] (one pair in 1D; one int per dim in 2D/3D) or [[before, after] per dim].
KerasTranslator zero_padding(size_t rank) {
  return {{"padding", "data_format"}, 1, [rank](const Layer& L) {
            check_spatial_input(L, rank);
            const JsonRef p = L.config()["padding"];
            Pads pads;
            auto bad = [&]() {
              p.fail("expected an integer, " + std::string(rank == 1 ? "[before, after]" : "one integer per dim") +
                     " or [[before, after] per dim], got " + p.raw().dump());
            };
            auto add = [&](const JsonRef& before, const JsonRef& after) {
              if (!before.is_number() || !after.is_number() || before.i64() < 0 || after.i64() < 0) bad();
              pads.begin.push_back(before.i64());
              pads.end.push_back(after.i64());
            };
            if (p.is_number()) {
              for (size_t i = 0; i < rank; ++i) add(p, p);
            } else if (rank == 1 && p.is_array() && p.size() == 2 && p[0].is_number()) {
              add(p[0], p[1]);
            } else if (p.is_array() && p.size() == rank) {
              for (const JsonRef& e : p.items()) {
                if (e.is_number()) add(e, e);
                else if (e.is_array() && e.size() == 2) add(e[0], e[1]);
                else bad();
              }
            } else {
              bad();
            }
            // Keras's pads are per spatial dim of [N, spatial..., C]; none on the batch or channels.
            const Layout layout = L.common_layout();
            const size_t at = layout == Layout::ChannelsLast ? 1 : 2;
            Ints begin(rank + 2, 0), end(rank + 2, 0);
            std::copy(pads.begin.begin(), pads.begin.end(), begin.begin() + at);
            std::copy(pads.end.begin(), pads.end.end(), end.begin() + at);
            L.emit(layout, "Pad", {L.x(layout)}, attrs_of({{"pads_begin", begin}, {"pads_end", end}}));
          }};
}

}  // namespace pb::tensorflow
