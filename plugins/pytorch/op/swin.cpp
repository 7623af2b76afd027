// torchvision.models.swin_transformer's fx-wrapped functions (torchvision 0.14): each arrives as
// one call_function node and is translated line by line into IR ops, so the rounding order is
// torch's. _get_relative_position_bias gathers a parameter by a constant buffer: a constant made
// while decoding. shifted_window_attention's window partition keeps the batch open (Reshape
// targets 0 or -1), and its shifted-window mask is a constant built as torchvision builds it.
#include <algorithm>
#include <cmath>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

// The stream tensor behind an argument that is a weight (a get_attr node): its data as f32.
Tensor weight_values(const FxNode& n, const JsonRef& a, const std::string& what) {
  const std::string name = n.node_ref(a);
  const std::string ir = n.decoder().planet_form(name);
  const auto& weights = n.decoder().graph().weights;
  auto it = weights.find(ir);
  if (it == weights.end()) a.fail(what + " must be a parameter or buffer read directly (get_attr), so it is known while decoding");
  return it->second.dtype() == DType::f32 ? it->second : it->second.cast(DType::f32);
}

// Python's slice bound resolution for a[start:stop] over `len` (step 1): [first, last).
std::pair<int64_t, int64_t> python_slice(std::optional<int64_t> start, std::optional<int64_t> stop, int64_t len) {
  auto resolve = [len](int64_t v) { return std::clamp(v < 0 ? v + len : v, int64_t(0), len); };
  const int64_t a = start ? resolve(*start) : 0, b = stop ? resolve(*stop) : len;
  return {a, std::max(a, b)};
}

// torch.roll(x, shift, dim) as two Slices and a Concat: out[i] = x[(i - shift) mod len].
std::string roll(const FxNode& n, const std::string& x, int64_t shift, int64_t dim, int64_t len, const std::string& tag) {
  const int64_t s = ((shift % len) + len) % len;
  if (s == 0) return x;
  const std::string tail = n.step(tag + "_tail", "Slice", {x}, attrs_of({{"starts", Ints{len - s}}, {"ends", Ints{len}}, {"axes", Ints{dim}}}));
  const std::string head = n.step(tag + "_head", "Slice", {x}, attrs_of({{"starts", Ints{0}}, {"ends", Ints{len - s}}, {"axes", Ints{dim}}}));
  return n.step(tag, "Concat", {tail, head}, attrs_of({{"axis", dim}}));
}

// A dim that must not depend on the batch.
int64_t fixed_dim(const FxNode& n, const std::string& x, size_t dim, const std::string& what) {
  const Shape& open = n.batch_shape(x);
  if (open[dim] < 0) n.fail(what + " (dim " + std::to_string(dim) + ") depends on the batch, which the graph leaves open");
  return open[dim];
}

}  // namespace

// _get_relative_position_bias(table [(2·Wh-1)(2·Ww-1), heads], index [N·N], window_size):
// table[index].view(N, N, -1).permute(2, 0, 1).unsqueeze(0) = [1, heads, N, N], a constant.
void translate_relative_position_bias(const FxNode& n) {
  auto ta = n.arg(0, "relative_position_bias_table"), ia = n.arg(1, "relative_position_index");
  if (!ta || !ia) n.fail("_get_relative_position_bias needs relative_position_bias_table and relative_position_index");
  const Ints ws = n.ints_from(2, "window_size", "_get_relative_position_bias");
  if (ws.size() != 2) n.fail("window_size must hold 2 ints");
  const Tensor table = weight_values(n, *ta, "relative_position_bias_table");
  const Tensor index = weight_values(n, *ia, "relative_position_index");
  const int64_t nn_ = ws[0] * ws[1];
  if (table.shape().size() != 2) ta->fail("relative_position_bias_table must be 2-d, got " + shape_str(table.shape()));
  const int64_t rows = table.shape()[0], heads = table.shape()[1];
  if (index.numel() != nn_ * nn_) ia->fail("relative_position_index has " + std::to_string(index.numel()) + " elements, window " +
                                           std::to_string(ws[0]) + "x" + std::to_string(ws[1]) + " needs " + std::to_string(nn_ * nn_));
  Tensor out(DType::f32, {1, heads, nn_, nn_});
  const float* t = table.data<float>();
  const float* idx = index.data<float>();
  float* o = out.data<float>();
  for (int64_t p = 0; p < nn_ * nn_; ++p) {
    const int64_t r = static_cast<int64_t>(idx[p]);
    if (r < 0 || r >= rows) ia->fail("relative_position_index holds " + std::to_string(r) + ", outside the table's " + std::to_string(rows) + " rows");
    for (int64_t h = 0; h < heads; ++h) o[h * nn_ * nn_ + p] = t[r * heads + h];
  }
  n.decoder().bind(n.name(), n.constant("bias", std::move(out)), Layout::ChannelsFirst);
}

// _patch_merging_pad(x [..., H, W, C]): F.pad to even H and W, then
// cat([x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :], x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]], -1).
void translate_patch_merging_pad(const FxNode& n) {
  std::string x = n.in(0, "x");
  const size_t rank = n.decoder().ir_type(x).shape.size();
  if (rank < 3) n.fail("_patch_merging_pad needs an input [..., H, W, C]");
  const int64_t hd = int64_t(rank) - 3, wd = int64_t(rank) - 2;
  const int64_t h = fixed_dim(n, x, size_t(hd), "H"), w = fixed_dim(n, x, size_t(wd), "W");
  if (h % 2 || w % 2) {
    Ints begin(rank, 0), end(rank, 0);
    end[size_t(hd)] = h % 2;
    end[size_t(wd)] = w % 2;
    x = n.step("pad", "Pad", {x}, attrs_of({{"pads_begin", begin}, {"pads_end", end}}));
  }
  const int64_t ph = h + h % 2, pw = w + w % 2;
  std::vector<std::string> parts;
  const int64_t offsets[4][2] = {{0, 0}, {1, 0}, {0, 1}, {1, 1}};
  for (int k = 0; k < 4; ++k)
    parts.push_back(n.step("x" + std::to_string(k), "Slice", {x},
                           attrs_of({{"starts", Ints{offsets[k][0], offsets[k][1]}}, {"ends", Ints{ph, pw}}, {"axes", Ints{hd, wd}}, {"steps", Ints{2, 2}}})));
  n.emit("Concat", parts, attrs_of({{"axis", int64_t(-1)}}));
}

// shifted_window_attention(input [B, H, W, C], qkv_weight, proj_weight, relative_position_bias,
// window_size, num_heads, shift_size, attention_dropout=0, dropout=0, qkv_bias=None,
// proj_bias=None, logit_scale=None), torchvision 0.14 line by line.
void translate_shifted_window_attention(const FxNode& n) {
  const std::string input = n.in(0, "input");
  const Shape& shape = n.decoder().ir_type(input).shape;
  if (shape.size() != 4) n.fail("shifted_window_attention needs an input [B, H, W, C], got " + shape_str(shape));
  const int64_t H = fixed_dim(n, input, 1, "H"), W = fixed_dim(n, input, 2, "W"), C = fixed_dim(n, input, 3, "C");
  const std::string qkv_w = n.in(1, "qkv_weight"), proj_w = n.in(2, "proj_weight");
  const std::string bias = n.in(3, "relative_position_bias");
  const Ints ws = n.ints_from(4, "window_size", "shifted_window_attention");
  const int64_t heads = n.int_arg(5, "num_heads", 0);
  Ints shift = n.ints_from(6, "shift_size", "shifted_window_attention");
  if (ws.size() != 2 || shift.size() != 2) n.fail("window_size and shift_size must hold 2 ints");
  if (heads < 1 || C % heads) n.fail(std::to_string(C) + " channels do not split into " + std::to_string(heads) + " heads");
  // F.dropout(p=...) is called without training=False: any p > 0 drops at random even in eval().
  for (auto [i, kw] : {std::pair<size_t, const char*>{7, "attention_dropout"}, {8, "dropout"}})
    if (auto p = n.arg(i, kw); p && p->f64() != 0.0) p->fail(std::string(kw) + " > 0 drops at random even in eval() (F.dropout's training defaults to True)");
  if (auto ls = n.arg(11, "logit_scale")) ls->fail("logit_scale (Swin V2's cosine attention) is not supported");
  const std::string qkv_b = n.arg(9, "qkv_bias") ? n.in(9, "qkv_bias") : "", proj_b = n.arg(10, "proj_bias") ? n.in(10, "proj_bias") : "";

  // pad feature maps to multiples of window size
  const int64_t pad_r = (ws[1] - W % ws[1]) % ws[1], pad_b = (ws[0] - H % ws[0]) % ws[0];
  std::string x = input;
  if (pad_r || pad_b) x = n.step("pad", "Pad", {x}, attrs_of({{"pads_begin", Ints{0, 0, 0, 0}}, {"pads_end", Ints{0, pad_b, pad_r, 0}}}));
  const int64_t pH = H + pad_b, pW = W + pad_r;
  // If window size is larger than feature size, there is no need to shift window
  if (ws[0] >= pH) shift[0] = 0;
  if (ws[1] >= pW) shift[1] = 0;
  const bool shifted = shift[0] + shift[1] > 0;
  // cyclic shift
  if (shifted) {
    x = roll(n, x, -shift[0], 1, pH, "roll_h");
    x = roll(n, x, -shift[1], 2, pW, "roll_w");
  }
  // partition windows
  const int64_t nh = pH / ws[0], nw = pW / ws[1], windows = nh * nw, N = ws[0] * ws[1], hd = C / heads;
  x = n.step("windows", "Reshape", {x}, attrs_of({{"shape", Ints{0, nh, ws[0], nw, ws[1], C}}}));
  x = n.step("windows_t", "Transpose", {x}, attrs_of({{"perm", Ints{0, 1, 3, 2, 4, 5}}}));
  x = n.step("tokens", "Reshape", {x}, attrs_of({{"shape", Ints{-1, N, C}}}));
  // multi-head attention
  std::vector<std::string> dense_in = {x, qkv_w};
  if (!qkv_b.empty()) dense_in.push_back(qkv_b);
  const std::string qkv = n.step("qkv", "Dense", dense_in);
  const std::string split = n.step("qkv_heads", "Reshape", {qkv}, attrs_of({{"shape", Ints{0, N, 3, heads, hd}}}));
  auto part = [&](int64_t k, const std::string& name) {
    const std::string s = n.step(name + "_slice", "Slice", {split}, attrs_of({{"starts", Ints{k}}, {"ends", Ints{k + 1}}, {"axes", Ints{2}}}));
    const std::string r = n.step(name + "_shape", "Reshape", {s}, attrs_of({{"shape", Ints{0, N, heads, hd}}}));
    return n.step(name, "Transpose", {r}, attrs_of({{"perm", Ints{0, 2, 1, 3}}}));  // [B·nW, heads, N, hd]
  };
  std::string q = part(0, "q");
  const std::string k = part(1, "k"), v = part(2, "v");
  Tensor scale(DType::f32, {});
  scale.data<float>()[0] = static_cast<float>(std::pow(double(hd), -0.5));
  q = n.step("q_scaled", "Mul", {q, n.constant("scale", std::move(scale))});
  std::string attn = n.step("scores", "MatMul", {q, k}, attrs_of({{"transpose_b", int64_t(1)}}));
  // add relative position bias
  attn = n.step("biased", "Add", {attn, bias});
  if (shifted) {
    // generate attention mask, as torchvision does
    std::vector<float> img(size_t(pH * pW), 0.f);
    using Bound = std::optional<int64_t>;
    const std::pair<Bound, Bound> hs[3] = {{0, -ws[0]}, {-ws[0], -shift[0]}, {-shift[0], std::nullopt}};
    const std::pair<Bound, Bound> wsl[3] = {{0, -ws[1]}, {-ws[1], -shift[1]}, {-shift[1], std::nullopt}};
    float count = 0;
    for (const auto& h : hs)
      for (const auto& w : wsl) {
        const auto [h0, h1] = python_slice(h.first, h.second, pH);
        const auto [w0, w1] = python_slice(w.first, w.second, pW);
        for (int64_t i = h0; i < h1; ++i)
          for (int64_t j = w0; j < w1; ++j) img[size_t(i * pW + j)] = count;
        count += 1;
      }
    // view(nh, ws0, nw, ws1).permute(0, 2, 1, 3).reshape(nW, N)
    std::vector<float> win(size_t(windows * N));
    for (int64_t a = 0; a < nh; ++a)
      for (int64_t b = 0; b < nw; ++b)
        for (int64_t i = 0; i < ws[0]; ++i)
          for (int64_t j = 0; j < ws[1]; ++j) win[size_t((a * nw + b) * N + i * ws[1] + j)] = img[size_t((a * ws[0] + i) * pW + b * ws[1] + j)];
    // mask[w, i, j] = win[w, j] - win[w, i], then != 0 -> -100, == 0 -> 0; as [1, nW, 1, N, N]
    Tensor mask(DType::f32, {1, windows, 1, N, N});
    float* m = mask.data<float>();
    for (int64_t w = 0; w < windows; ++w)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < N; ++j) m[(w * N + i) * N + j] = (win[size_t(w * N + j)] - win[size_t(w * N + i)]) != 0.f ? -100.f : 0.f;
    attn = n.step("scores_windows", "Reshape", {attn}, attrs_of({{"shape", Ints{-1, windows, heads, N, N}}}));
    attn = n.step("masked", "Add", {attn, n.constant("mask", std::move(mask))});
    attn = n.step("masked_flat", "Reshape", {attn}, attrs_of({{"shape", Ints{-1, heads, N, N}}}));
  }
  attn = n.step("softmax", "Softmax", {attn}, attrs_of({{"axis", int64_t(-1)}}));
  x = n.step("context", "MatMul", {attn, v});
  x = n.step("context_t", "Transpose", {x}, attrs_of({{"perm", Ints{0, 2, 1, 3}}}));
  x = n.step("merged", "Reshape", {x}, attrs_of({{"shape", Ints{0, N, C}}}));
  std::vector<std::string> proj_in = {x, proj_w};
  if (!proj_b.empty()) proj_in.push_back(proj_b);
  x = n.step("proj", "Dense", proj_in);
  // reverse windows
  x = n.step("unwindows", "Reshape", {x}, attrs_of({{"shape", Ints{-1, nh, nw, ws[0], ws[1], C}}}));
  x = n.step("unwindows_t", "Transpose", {x}, attrs_of({{"perm", Ints{0, 1, 3, 2, 4, 5}}}));
  x = n.step("image", "Reshape", {x}, attrs_of({{"shape", Ints{0, pH, pW, C}}}));
  // reverse cyclic shift
  if (shifted) {
    x = roll(n, x, shift[0], 1, pH, "unroll_h");
    x = roll(n, x, shift[1], 2, pW, "unroll_w");
  }
  // unpad features
  if (pad_r || pad_b) return n.emit("Slice", {x}, attrs_of({{"starts", Ints{0, 0}}, {"ends", Ints{H, W}}, {"axes", Ints{1, 2}}}));
  n.emit("Identity", {x});
}

}  // namespace pb::pytorch
