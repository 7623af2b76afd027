// Resampling layers: nn.Upsample, nn.UpsamplingNearest2d / UpsamplingBilinear2d, F.interpolate
// (a Resize node), and nn.PixelShuffle / PixelUnshuffle (Reshape, Transpose, Reshape).
#include <cmath>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

// F.interpolate's arguments, as the module holds them too: JSON values, absent where null.
struct Interpolation {
  std::optional<JsonRef> size, scale_factor, align_corners, recompute_scale_factor;
  std::string mode;
  JsonRef mode_at;
};

// torch 1.13's F.interpolate: exactly one of size and scale_factor (an int or float for every
// spatial dim, or one per dim). With scale_factor the output is ⌊in·factor⌋ and the coordinates
// divide by the factor itself, unless recompute_scale_factor (then by in / out, as with size).
void emit_interpolation(const FxNode& n, const Interpolation& a) {
  const Shape& xs = n.type(0).shape;
  if (xs.size() < 3 || xs.size() > 5) n.fail("interpolation needs an input [N, C, spatial...] with 1-3 spatial dims, got " + shape_str(xs));
  const size_t rank = xs.size() - 2;
  static const std::map<std::string, std::pair<std::string, size_t>> modes = {
      {"nearest", {"nearest", 0}}, {"nearest-exact", {"nearest", 0}}, {"linear", {"linear", 1}}, {"bilinear", {"linear", 2}}, {"trilinear", {"linear", 3}}};
  auto m = modes.find(a.mode);
  if (m == modes.end())
    a.mode_at.fail("interpolation mode \"" + a.mode + "\" is not supported (nearest, nearest-exact, linear, bilinear, trilinear)");
  if (m->second.second && m->second.second != rank)
    a.mode_at.fail("mode \"" + a.mode + "\" needs " + std::to_string(m->second.second) + " spatial dims, the input " + shape_str(xs) + " has " +
                   std::to_string(rank));
  const bool linear = m->second.first == "linear";
  const bool corners = a.align_corners && a.align_corners->boolean();
  if (a.align_corners && !linear) a.align_corners->fail("align_corners is only for the linear modes (torch refuses it with \"" + a.mode + "\")");
  if (a.size.has_value() == a.scale_factor.has_value()) n.fail("interpolation needs exactly one of size and scale_factor");
  const bool recompute = a.recompute_scale_factor && a.recompute_scale_factor->boolean();
  Ints sizes;
  std::vector<double> factors;
  if (a.size) {
    sizes = int_or_list(*a.size, rank);
    if (recompute) a.recompute_scale_factor->fail("recompute_scale_factor with an explicit size (torch refuses it)");
  } else {
    const JsonRef& f = *a.scale_factor;
    if (f.is_array() && f.size() != rank) f.fail("expected " + std::to_string(rank) + " scale factors");
    for (size_t i = 0; i < rank; ++i) {
      const double v = (f.is_array() ? f[i] : f).f64();
      if (!(v > 0)) f.fail("a scale factor must be > 0");
      const int64_t in = xs[2 + i], out = static_cast<int64_t>(recompute ? std::floor(double(in) * v) : double(in) * v);  // torch: Python floor, or C++'s truncation
      sizes.push_back(out);
      // torch copies where out = in whatever the factor, and nearest halves at out = 2·in: the
      // factors that map those coordinates so.
      factors.push_back(out == in || (a.mode == "nearest" && out == 2 * in) ? double(out) / double(in) : v);
    }
  }
  ir::Attrs at = attrs_of({{"mode", m->second.first}, {"sizes", sizes},
                           {"coordinates", std::string(corners ? "align_corners" : linear || a.mode == "nearest-exact" ? "half_pixel" : "asymmetric")}});
  if (!factors.empty() && !recompute && !corners) at.set("scales", factors);
  n.emit("Resize", {n.in(0)}, std::move(at));
}

// PixelShuffle [N, C·r², H, W] -> [N, C, H·r, W·r] and back, through [N, C, r, r, H, W] and
// [N, C, H, r, W, r]: 0 keeps the batch open.
void emit_pixel_shuffle(const FxNode& n, int64_t r, bool shuffle) {
  const std::string x = n.in(0);
  const Shape& s = n.batch_shape(x);
  if (s.size() != 4 || s[1] < 0 || s[2] < 0 || s[3] < 0)
    n.fail("pixel (un)shuffle needs an input [N, C, H, W] whose dims other than the batch are fixed, got " + shape_str(s));
  if (r < 1) n.fail("the factor must be >= 1, got " + std::to_string(r));
  const int64_t c = s[1], h = s[2], w = s[3];
  if (shuffle && c % (r * r)) n.fail(std::to_string(c) + " channels are not divisible by the factor squared " + std::to_string(r * r));
  if (!shuffle && (h % r || w % r)) n.fail("height " + std::to_string(h) + " and width " + std::to_string(w) + " must be divisible by " + std::to_string(r));
  const Ints split = shuffle ? Ints{0, c / (r * r), r, r, h, w} : Ints{0, c, h / r, r, w / r, r};
  const Ints perm = shuffle ? Ints{0, 1, 4, 2, 5, 3} : Ints{0, 1, 3, 5, 2, 4};
  const Ints merged = shuffle ? Ints{0, c / (r * r), h * r, w * r} : Ints{0, c * r * r, h / r, w / r};
  const std::string a = n.step("split", "Reshape", {x}, attrs_of({{"shape", split}}));
  const std::string b = n.step("moved", "Transpose", {a}, attrs_of({{"perm", perm}}));
  n.emit("Reshape", {b}, attrs_of({{"shape", merged}}));
}

}  // namespace

// nn.Upsample, nn.UpsamplingNearest2d and nn.UpsamplingBilinear2d (align_corners=True) hold
// F.interpolate's arguments as attributes.
void translate_upsample_module(const FxNode& n) {
  const JsonRef a = n.attrs();
  Interpolation in{a.find("size"), a.find("scale_factor"), a.find("align_corners"), a.find("recompute_scale_factor"), a.str("mode", "nearest"),
                   a.has("mode") ? a["mode"] : a};
  emit_interpolation(n, in);
}

// F.interpolate(input, size=None, scale_factor=None, mode='nearest', align_corners=None,
// recompute_scale_factor=None, antialias=False); F.upsample* call it.
void translate_interpolate(const FxNode& n) {
  if (auto aa = n.arg(6, "antialias"); aa && aa->boolean()) aa->fail("antialias is not supported");
  auto mode = n.arg(3, "mode");
  Interpolation in{n.arg(1, "size"), n.arg(2, "scale_factor"), n.arg(4, "align_corners"), n.arg(5, "recompute_scale_factor"),
                   mode ? mode->str() : "nearest", mode ? *mode : n.json()};
  emit_interpolation(n, in);
}

void translate_pixel_shuffle_module(const FxNode& n) { emit_pixel_shuffle(n, n.attr("upscale_factor").i64(), true); }
void translate_pixel_unshuffle_module(const FxNode& n) { emit_pixel_shuffle(n, n.attr("downscale_factor").i64(), false); }
// torch.pixel_shuffle(input, upscale_factor), torch.pixel_unshuffle(input, downscale_factor).
void translate_pixel_shuffle_call(const FxNode& n) { emit_pixel_shuffle(n, n.int_arg(1, "upscale_factor", 0), true); }
void translate_pixel_unshuffle_call(const FxNode& n) { emit_pixel_shuffle(n, n.int_arg(1, "downscale_factor", 0), false); }

}  // namespace pb::pytorch
