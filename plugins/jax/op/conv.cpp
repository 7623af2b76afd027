// flax.linen.Conv, the pooling functions and global reductions (jnp.mean / jnp.max over the
// spatial axes). Flax is channels-last: each reads its input channels-first and computes there.
#include <algorithm>

#include "../module.h"

namespace pb::jax {

// Conv: x [N, spatial..., in], kernel [kernel_size..., in / groups, features].
void translate_conv(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  const int64_t features = positive(j["features"]);
  // Flax rejects an int kernel_size (its rank would be ambiguous): a list, one per spatial dim.
  const Ints kernel = window_shape(j["kernel_size"]);
  const size_t n = kernel.size();
  check_spatial_input(m, n, "Conv");
  const Ints strides = per_dim(j, "strides", n, 1), dilations = per_dim(j, "kernel_dilation", n, 1);
  if (per_dim(j, "input_dilation", n, 1) != Ints(n, 1))
    j["input_dilation"].fail("input_dilation (a fractionally strided conv) is not supported; only 1");
  const int64_t groups = j.find("feature_group_count") ? positive(j["feature_group_count"]) : 1;
  const int64_t in_c = m.shape().back();
  if (in_c % groups || features % groups)
    j["feature_group_count"].fail(std::to_string(groups) + " groups do not divide " + std::to_string(in_c) + " input features and " +
                                  std::to_string(features) + " features");
  const Shape in_spatial(m.shape().begin() + 1, m.shape().end() - 1);
  static const nlohmann::json same = "SAME";  // Flax Conv's default
  const Pads pads =
      flax_padding(j.find("padding") ? j["padding"] : JsonRef(same, j.path() + ".padding"), in_spatial, kernel, strides, dilations, true);

  // Flax's kernel [k..., I/g, O] -> the IR's [O, I/g, k...]: always a transposing copy (Flax's
  // layout, never read from the shape; a square kernel with I = O fits both).
  Shape want = kernel;
  want.push_back(in_c / groups);
  want.push_back(features);
  const Tensor& k = m.var("kernel");
  if (k.shape() != want)
    m.fail_var_shape("kernel", "[kernel_size..., in_features / feature_group_count, features] = " + shape_str(want) + " (Flax's layout)");
  const std::string oi = "OI" + std::string("DHW").substr(3 - n);
  std::vector<std::string> inputs = {m.first(), m.decoder().derived(m.var_name("kernel"), oi, permuted(k, kernel_oi_first_perm(k.shape().size())))};
  if (auto b = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {features}, "[features]")) inputs.push_back(*b);
  ir::Attrs a = window_attrs(strides, dilations, pads.begin, pads.end);
  a.set("groups", groups);
  m.emit(Layout::ChannelsFirst, "Conv", inputs, std::move(a));
}

// ConvTranspose: x [N, spatial..., in], kernel [kernel_size..., in, features] (transpose_kernel:
// [kernel_size..., features, in]). Flax calls lax.conv_transpose: a Conv with lhs_dilation =
// strides over x padded (lo, hi) per dim ("SAME" / "VALID": lax's _conv_transpose_padding over
// the dilated kernel size), the kernel used as a forward conv's HWIO, unflipped (transpose_kernel
// flips it and swaps I/O). The IR's ConvTranspose is the gradient form: its weight is that
// kernel flipped, pads_begin = (k - 1)·d - lo, pads_end = (k - 1)·d - hi, a negative end
// becoming output_padding.
void translate_conv_transpose(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  const int64_t features = positive(j["features"]);
  // Flax's ConvTranspose takes an int kernel_size as a 1-D kernel.
  const JsonRef ks = j["kernel_size"];
  const Ints kernel = ks.is_array() ? window_shape(ks) : Ints{positive(ks)};
  const size_t n = kernel.size();
  check_spatial_input(m, n, "ConvTranspose");
  const Ints strides = per_dim(j, "strides", n, 1), dilations = per_dim(j, "kernel_dilation", n, 1);
  const bool transpose_kernel = j.boolean("transpose_kernel", false);
  const int64_t in_c = m.shape().back();
  const Shape in_spatial(m.shape().begin() + 1, m.shape().end() - 1);

  static const nlohmann::json same = "SAME";  // Flax ConvTranspose's default
  const JsonRef pad = j.find("padding") ? j["padding"] : JsonRef(same, j.path() + ".padding");
  Ints lo(n), hi(n);
  if (pad.is_string()) {
    const std::string mode = pad.str();
    if (mode != "SAME" && mode != "VALID")
      pad.fail("expected \"SAME\", \"VALID\", an int or [low, high] pairs, got \"" + mode + "\"" +
               (mode == "CIRCULAR" ? " (not supported: Flax wraps the output periodically)" : ""));
    for (size_t i = 0; i < n; ++i) {
      const int64_t k = (kernel[i] - 1) * dilations[i] + 1, s = strides[i];  // lax: the dilated kernel size
      const int64_t len = mode == "SAME" ? k + s - 2 : k + s - 2 + std::max<int64_t>(k - s, 0);
      lo[i] = mode == "VALID" || s > k - 1 ? k - 1 : (len + 1) / 2;
      hi[i] = len - lo[i];
    }
  } else {
    const Pads p = flax_padding(pad, in_spatial, kernel, strides, dilations, true);
    lo = p.begin;
    hi = p.end;
  }
  Ints begin(n), end(n), extra(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int64_t e = (kernel[i] - 1) * dilations[i];
    begin[i] = e - lo[i];
    end[i] = e - hi[i];
    if (begin[i] < 0)
      pad.fail("a low padding of " + std::to_string(lo[i]) + " in spatial dim " + std::to_string(i) +
               " exceeds (kernel_size - 1) * kernel_dilation = " + std::to_string(e) + ": not supported (the IR's ConvTranspose cannot pad its output's start)");
    if (end[i] < 0) {
      extra[i] = -end[i];
      end[i] = 0;
      if (extra[i] >= std::max(strides[i], dilations[i]))
        pad.fail("a high padding of " + std::to_string(hi[i]) + " in spatial dim " + std::to_string(i) + " exceeds (kernel_size - 1) * kernel_dilation = " +
                 std::to_string(e) + " by the stride or more: not supported");
    }
  }

  Shape want = kernel;
  want.push_back(transpose_kernel ? features : in_c);
  want.push_back(transpose_kernel ? in_c : features);
  const Tensor& k = m.var("kernel");
  if (k.shape() != want)
    m.fail_var_shape("kernel", std::string(transpose_kernel ? "[kernel_size..., features, in_features]" : "[kernel_size..., in_features, features]") +
                                   " = " + shape_str(want) + " (Flax's layout" + (transpose_kernel ? ", transpose_kernel" : "") + ")");
  // -> [in, features, k...]; without transpose_kernel also flipped in every spatial dim (a
  // row-major block [k...] flipped in all its dims is the block reversed).
  Ints perm = {int64_t(n) + (transpose_kernel ? 1 : 0), int64_t(n) + (transpose_kernel ? 0 : 1)};
  for (size_t d = 0; d < n; ++d) perm.push_back(int64_t(d));
  Tensor w = permuted(k, perm);
  const std::string io = "IO" + std::string("DHW").substr(3 - n);
  if (!transpose_kernel) {
    int64_t block = 1;
    for (int64_t kd : kernel) block *= kd;
    float* data = w.data<float>();
    for (int64_t b = 0; b < w.numel(); b += block) std::reverse(data + b, data + b + block);
  }
  std::vector<std::string> inputs = {m.first(), m.decoder().derived(m.var_name("kernel"), transpose_kernel ? io : io + "_flipped", std::move(w))};
  if (auto b = m.optional_var(j.boolean("use_bias", true), "use_bias", "bias", {features}, "[features]")) inputs.push_back(*b);
  ir::Attrs a = window_attrs(strides, dilations, begin, end);
  a.set("output_padding", extra);
  m.emit(Layout::ChannelsFirst, "ConvTranspose", inputs, std::move(a));
}

// flax.linen.max_pool / avg_pool(inputs, window_shape, strides=None (ones), padding="VALID",
// count_include_pad=True): max pads with -inf (the IR's max pool ignores the padding), avg
// divides by the whole window when count_include_pad.
JaxTranslator pool(const std::string& mode) {
  std::vector<std::string> attributes = {"window_shape", "strides", "padding"};
  if (mode == "avg") attributes.push_back("count_include_pad");
  return {attributes, 1, [mode](const Module& m) {
            const JsonRef& j = m.json();
            const Ints window = window_shape(j["window_shape"]);
            const size_t n = window.size();
            check_spatial_input(m, n, j["fn"].str());
            const Ints strides = per_dim(j, "strides", n, 1), ones(n, 1);
            const Shape in_spatial(m.shape().begin() + 1, m.shape().end() - 1);
            static const nlohmann::json valid = "VALID";  // the pooling functions' default
            const Pads pads =
                flax_padding(j.find("padding") ? j["padding"] : JsonRef(valid, j.path() + ".padding"), in_spatial, window, strides, ones, false);
            ir::Attrs a = window_attrs(strides, ones, pads.begin, pads.end);
            a.set("mode", mode);
            a.set("kernel", window);
            if (mode == "avg") a.set("count_include_pad", int64_t(j.boolean("count_include_pad", true)));
            m.emit(Layout::ChannelsFirst, "Pool", {m.first()}, std::move(a));
          }};
}

// jnp.mean / jnp.max over every spatial axis (1 .. rank-2) of [N, spatial..., C]: a global pool.
JaxTranslator global_reduce(const std::string& mode) {
  return {{"axis", "keepdims"}, 1, [mode](const Module& m) {
            const JsonRef& j = m.json();
            const Shape& s = m.shape();
            const int64_t r = int64_t(s.size());
            JsonRef aj = j["axis"];
            Ints axes = aj.is_array() ? aj.ints() : Ints{aj.i64()};
            for (int64_t& a : axes)
              if (a < 0) a += r;
            std::sort(axes.begin(), axes.end());
            Ints spatial_axes;
            for (int64_t d = 1; d + 1 < r; ++d) spatial_axes.push_back(d);
            if (r < 3 || axes != spatial_axes)
              aj.fail("only a reduction over every spatial axis (1 .. rank-2 of [batch, spatial..., features]), a global "
                      "pool, is supported; the input is " + shape_str(s));
            if (j.boolean("keepdims", false)) j["keepdims"].fail("keepdims = true is not supported");
            // Pool gives [N, C, 1...]; flattening the ones gives Flax's [N, C].
            const std::string pooled = m.emit_step("pool", "Pool", {m.first()}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}));
            m.emit(Layout::ChannelsLast, "Flatten", {pooled}, attrs_of({{"start", int64_t(1)}, {"end", int64_t(-1)}}));
          }};
}

}  // namespace pb::jax
