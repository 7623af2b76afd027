// Keras's activation layers (Activation, ReLU, LeakyReLU, ELU, Softmax) and the layers that are
// identities at inference (dropouts, noise). Element-wise ones compute in whichever layout their
// input already has.
#include "../layer.h"

namespace pb::tensorflow {

namespace {

// ReLU(max_value, negative_slope, threshold): relu, relu6 or leaky_relu; nothing else has an IR function.
void translate_relu(const Layer& L) {
  const JsonRef c = L.config();
  const double slope = c.f64("negative_slope", 0.0), threshold = c.f64("threshold", 0.0);
  const auto max_value = c.find("max_value");
  if (threshold != 0.0) c["threshold"].fail("ReLU with a non-zero threshold has no IR function");
  if (!max_value && slope == 0.0) return emit_activation(L, {"relu", {}});
  if (!max_value) return emit_activation(L, {"leaky_relu", attrs_of({{"alpha", slope}})});
  if (slope == 0.0 && max_value->f64() == 6.0) return emit_activation(L, {"relu6", {}});
  max_value->fail("ReLU with max_value " + max_value->raw().dump() + " (and negative_slope " + std::to_string(slope) +
                  ") has no IR function; only max_value 6 is supported");
}

}  // namespace

KerasTranslator activation_layer() {
  return {{"activation"}, 1, [](const Layer& L) { emit_activation(L, keras_activation(L.model(), L.config()["activation"])); }};
}

KerasTranslator relu_layer() { return {{"max_value", "negative_slope", "threshold"}, 1, translate_relu}; }

// tfjs and Keras 2 call the slope "alpha" (default 0.3); Keras 3 "negative_slope".
KerasTranslator leaky_relu_layer() {
  return {{"alpha", "negative_slope"}, 1, [](const Layer& L) {
            const JsonRef c = L.config();
            const double alpha = c.has("negative_slope") ? c["negative_slope"].f64() : c.f64("alpha", 0.3);
            emit_activation(L, {"leaky_relu", attrs_of({{"alpha", alpha}})});
          }};
}

KerasTranslator elu_layer() {
  return {{"alpha"}, 1, [](const Layer& L) { emit_activation(L, {"elu", attrs_of({{"alpha", L.config().f64("alpha", 1.0)}})}); }};
}

// Every writer states the axis (tfjs's layer default is 1, Keras's -1): no default assumed.
KerasTranslator softmax_layer() {
  return {{"axis"}, 1, [](const Layer& L) {
            L.emit(Layout::ChannelsLast, "Softmax", {L.x(Layout::ChannelsLast)},
                   attrs_of({{"axis", L.config()["axis"].i64()}, {"log", int64_t(0)}}));
          }};
}

// PReLU(shared_axes): alpha has the input's shape without the batch, 1 on every shared axis.
// The IR's PReLU takes one slope per channel (dim 1) or one for all: alpha must vary along the
// channels (last) axis alone, or along none; a slope per position is refused at shared_axes.
// On a rank >= 3 input it computes channels-first, where the channels are dim 1.
KerasTranslator prelu_layer() {
  return {{"shared_axes", "alpha"}, 1, [](const Layer& L) {
            const JsonRef c = L.config();
            const Shape& in = L.shape();
            const size_t r = in.size();
            if (r < 2 || !is_float(L.type().dtype)) L.fail("PReLU \"" + L.name() + "\" needs a float input of rank >= 2, got " + shape_str(in));
            Shape want(in.begin() + 1, in.end());
            if (auto shared = c.find("shared_axes"))
              for (int64_t a : shared->is_array() ? shared->ints() : Ints{shared->i64()}) {
                if (a < 1 || a >= int64_t(r)) shared->fail("axis " + std::to_string(a) + " is not a feature axis of a rank-" + std::to_string(r) + " input");
                want[size_t(a) - 1] = 1;
              }
            bool per_position = false;
            for (size_t i = 0; i + 1 < want.size(); ++i) per_position |= want[i] != 1;
            if (per_position)
              c.find("shared_axes") ? c["shared_axes"].fail("a slope per position (shape " + shape_str(want) +
                                                            ") is not supported; share every axis but the channels (IR PReLU: one slope per channel)")
                                    : L.fail("PReLU \"" + L.name() + "\" without shared_axes has a slope per position (shape " + shape_str(want) +
                                             "); only one slope per channel is supported (shared_axes: every axis but the last)");
            const int64_t channels = want.back();
            const std::string slope = L.derived("alpha", want, "[input dims without the batch, 1 where shared]", "C",
                                                [channels](const Tensor& t) { return t.clone().reshaped({channels}); });
            const Layout layout = r >= 3 ? Layout::ChannelsFirst : Layout::ChannelsLast;
            L.emit(layout, "PReLU", {L.x(layout), slope});
          }};
}

// predict() never applies dropout or noise.
KerasTranslator inference_identity(std::vector<std::string> attributes) {
  return {std::move(attributes), 1, [](const Layer& L) {
            const Layout layout = L.common_layout();
            L.emit(layout, "Identity", {L.x(layout)});
          }};
}

}  // namespace pb::tensorflow
