// Keras BatchNormalization, LayerNormalization and the capture's composed RMSNorm.
#include <algorithm>

#include "../layer.h"

namespace pb::tensorflow {

namespace {

// BatchNormalization at inference (the moving statistics) over the channels axis; the IR
// normalises axis 1, so inputs of rank >= 3 are read channels-first. center / scale false:
// constants beta 0 / gamma 1 ("<layer>.beta", "<layer>.gamma"), and the table must not list them.
void translate_batchnorm(const Layer& L) {
  const Shape& xs = L.shape();
  const JsonRef c = L.config();
  if (xs.size() < 2 || !is_float(L.type().dtype)) L.fail("BatchNormalization needs a float input of rank >= 2, got " + shape_str(xs));
  if (keras_axes(c["axis"], xs.size()) != Ints{int64_t(xs.size()) - 1})
    c["axis"].fail("only the channels axis (-1) is supported, got " + c["axis"].raw().dump());
  refuse_unless(c, "renorm", !c.boolean("renorm", false), "renorm true is not supported");
  const int64_t ch = xs.back();
  auto param = [&](const std::string& short_name, bool present, float fallback) {
    return present ? L.weight(short_name, {ch}, "[channels]") : L.constant(short_name, filled({ch}, fallback));
  };
  const std::string gamma = param("gamma", c.boolean("scale", true), 1.f), beta = param("beta", c.boolean("center", true), 0.f);
  const std::string mean = param("moving_mean", true, 0.f), var = param("moving_variance", true, 1.f);
  const Layout layout = xs.size() >= 3 ? Layout::ChannelsFirst : Layout::ChannelsLast;
  // epsilon is required: Keras's default is 1e-3, torch's 1e-5; never guessed.
  L.emit(layout, "BatchNorm", {L.x(layout), gamma, beta, mean, var}, attrs_of({{"eps", c["epsilon"].f64()}}));
}

// LayerNormalization over trailing axes (Keras's gamma / beta have those axes' shape).
void translate_layernorm(const Layer& L) {
  const Shape& xs = L.shape();
  const JsonRef c = L.config();
  refuse_unless(c, "rms_scaling", !c.boolean("rms_scaling", false), "rms_scaling (Keras 3) is not supported");
  const Ints axes = keras_axes(c["axis"], xs.size());
  for (size_t i = 0; i < axes.size(); ++i)
    if (axes[i] != int64_t(xs.size() - axes.size() + i))
      c["axis"].fail("only trailing axes are supported (the IR normalises from an axis to the end), got " + c["axis"].raw().dump());
  Shape want;
  for (int64_t a : axes) want.push_back(xs[a]);
  std::vector<std::string> inputs = {L.x(Layout::ChannelsLast), "", ""};
  if (c.boolean("scale", true)) inputs[1] = L.weight("gamma", want, "[normalised dims]");
  if (c.boolean("center", true)) inputs[2] = L.weight("beta", want, "[normalised dims]");
  L.emit(Layout::ChannelsLast, "LayerNorm", inputs, attrs_of({{"axis", -int64_t(axes.size())}, {"eps", c["epsilon"].f64()}}));
}

// The capture's composed RMSNorm (tfjs has none): x · rsqrt(mean(x², -1) + epsilon) · scale.
void translate_rmsnorm(const Layer& L) {
  const JsonRef c = L.config();
  if (keras_axes(c["axis"], L.shape().size()) != Ints{int64_t(L.shape().size()) - 1})
    c["axis"].fail("only the last axis (-1) is supported, got " + c["axis"].raw().dump());
  L.emit(Layout::ChannelsLast, "RMSNorm", {L.x(Layout::ChannelsLast), L.weight("scale", {L.shape().back()}, "[features]")},
         attrs_of({{"axis", int64_t(-1)}, {"eps", c["epsilon"].f64()}}));
}

}  // namespace

// momentum, synchronized and the renorm settings only shape training: inference reads the moving
// statistics (renorm = true is refused all the same: its extra weights are not read).
KerasTranslator batch_normalization() {
  return {{"axis", "momentum", "epsilon", "center", "scale", "synchronized", "renorm", "renorm_clipping", "renorm_momentum"}, 1,
          translate_batchnorm};
}

// rms_scaling (Keras 3) is refused when true.
KerasTranslator layer_normalization() { return {{"axis", "epsilon", "center", "scale", "rms_scaling"}, 1, translate_layernorm}; }

KerasTranslator rms_norm() { return {{"axis", "epsilon"}, 1, translate_rmsnorm}; }

}  // namespace pb::tensorflow
