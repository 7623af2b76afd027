// nn.Conv1d-3d and the pooling modules. PyTorch is channels-first like the IR: the input is
// read as is and Conv.weight [out_channels, in_channels / groups, kernel...] is the IR's.
#include <algorithm>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

struct Padding {
  Ints begin, end;
};

// Conv's padding: ints (both sides), "valid", or "same", whose total dilation·(kernel - 1)
// torch splits total // 2 before and the rest (the odd element) after.
Padding conv_padding(const JsonRef& pad, const Ints& kernel, const Ints& dilation) {
  const size_t rank = kernel.size();
  if (!pad.is_string()) {
    const Ints p = int_or_list(pad, rank);
    return {p, p};
  }
  const std::string mode = pad.str();
  if (mode != "same" && mode != "valid") pad.fail("expected \"same\", \"valid\" or integers, got \"" + mode + "\"");
  Padding p{Ints(rank, 0), Ints(rank, 0)};
  for (size_t i = 0; i < rank && mode == "same"; ++i) {
    const int64_t total = dilation[i] * (kernel[i] - 1);
    p.begin[i] = total / 2;
    p.end[i] = total - p.begin[i];
  }
  return p;
}

// A pool's geometry and options, from a module's attributes or a functional call's arguments.
struct PoolArgs {
  Ints kernel, stride, pad, dilation;
  bool ceil_mode = false;
  bool include_pad = true;                      // avg: count_include_pad
  std::optional<JsonRef> ceil_where, override;  // ceil_mode and divisor_override, where given
};

PoolArgs module_pool_args(const FxNode& n, size_t rank, bool max) {
  const JsonRef a = n.attrs();
  PoolArgs p;
  p.kernel = int_or_list(a["kernel_size"], rank);
  p.stride = a.has("stride") && !a["stride"].is_null() ? int_or_list(a["stride"], rank) : p.kernel;
  p.pad = int_or_list(a["padding"], rank);
  p.dilation = max ? int_or_list(a["dilation"], rank) : Ints(rank, 1);
  p.ceil_mode = a.boolean("ceil_mode", false);
  p.ceil_where = a.find("ceil_mode");
  p.include_pad = a.boolean("count_include_pad", true);
  if (a.has("divisor_override")) p.override = a["divisor_override"];
  return p;
}

// F.max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False)
// F.avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, divisor_override=None)
PoolArgs call_pool_args(const FxNode& n, size_t rank, bool max) {
  auto list = [&](size_t i, const std::string& kw, const Ints& fallback) {
    auto v = n.arg(i, kw);
    return v && !(v->is_array() && v->size() == 0) ? int_or_list(*v, rank) : fallback;  // stride=[] means the kernel
  };
  PoolArgs p;
  if (!n.arg(1, "kernel_size")) n.fail("pooling needs kernel_size");
  p.kernel = list(1, "kernel_size", {});
  p.stride = list(2, "stride", p.kernel);
  p.pad = list(3, "padding", Ints(rank, 0));
  p.dilation = max ? list(4, "dilation", Ints(rank, 1)) : Ints(rank, 1);
  p.ceil_where = n.arg(max ? 5 : 4, "ceil_mode");
  p.ceil_mode = p.ceil_where && p.ceil_where->boolean();
  if (!max) {
    if (auto c = n.arg(5, "count_include_pad")) p.include_pad = c->boolean();
    p.override = n.arg(6, "divisor_override");
  } else if (auto r = n.arg(6, "return_indices"); r && r->boolean()) {
    r->fail("return_indices is not supported");
  }
  return p;
}

// The IR Pool's window. ceil_mode adds the last, partial window where it starts inside the input
// or its left padding (torch's rule): as extra padding at the end, which max pooling ignores.
struct PoolWindow {
  ir::Attrs attrs;
  bool ceil_extended = false;  // ceil_mode added padding that torch's averages do not count
};

PoolWindow pool_window(const FxNode& n, size_t rank, const PoolArgs& p, const std::string& mode) {
  Ints pad_end = p.pad;
  bool extended = false;
  if (p.ceil_mode) {
    const Shape& xs = n.type(0).shape;
    if (xs.size() < rank) n.fail("a " + std::to_string(rank) + "-d pool needs " + std::to_string(rank) + " spatial dims, got " + shape_str(xs));
    for (size_t i = 0; i < rank; ++i) {
      const int64_t in = xs[xs.size() - rank + i], span = p.dilation[i] * (p.kernel[i] - 1) + 1, padded = in + 2 * p.pad[i];
      if (padded < span) continue;  // too small for any window: inference names it
      int64_t out = (padded - span + p.stride[i] - 1) / p.stride[i] + 1;
      if ((out - 1) * p.stride[i] >= in + p.pad[i]) --out;
      const int64_t extra = (out - 1) * p.stride[i] + span - padded;
      if (extra > 0) {
        pad_end[i] += extra;
        extended = true;
      }
    }
  }
  PoolWindow w{window_attrs(p.stride, p.dilation, p.pad, pad_end), extended};
  w.attrs.set("mode", mode);
  w.attrs.set("kernel", p.kernel);
  return w;
}

// MaxPool: padding is never a maximum (the IR's max pool ignores it, as torch's -inf does).
void emit_max_pool(const FxNode& n, size_t rank, const PoolArgs& p) { n.emit("Pool", {n.in(0)}, pool_window(n, rank, p, "max").attrs); }

void emit_avg_pool(const FxNode& n, size_t rank, const PoolArgs& p) {
  if (p.override && !p.override->is_null()) p.override->fail("divisor_override is not supported");
  PoolWindow w = pool_window(n, rank, p, "avg");
  // torch counts padding but not ceil_mode's extension; without padding both count the same.
  const bool padded = std::any_of(p.pad.begin(), p.pad.end(), [](int64_t v) { return v > 0; });
  if (w.ceil_extended && p.include_pad && padded)
    p.ceil_where->fail("ceil_mode with padding and count_include_pad=True is not supported (torch counts the padding but not the ceil window's overhang)");
  w.attrs.set("count_include_pad", int64_t(p.include_pad && padded));
  n.emit("Pool", {n.in(0)}, std::move(w.attrs));
}

// Adaptive pooling: torch's bin i of a dim of size `in` pooled to `out` covers
// [floor(i·in/out), ceil((i + 1)·in/out)). Output 1 is a global pool and a size dividing the
// input a plain pool (kernel = stride = in/out). Any other average is linear in each dim: a
// MatMul with a constant [out, in] matrix of 1/bin-size weights, over the last dim and then the
// one before it.
void emit_adaptive_pool(const FxNode& n, const std::string& mode, size_t rank, const JsonRef& size) {
  const Shape& xs = n.type(0).shape;
  if (xs.size() != rank + 2) n.fail("adaptive pooling over " + std::to_string(rank) + " dims needs an input [N, C, spatial...], got " + shape_str(xs));
  const Shape in(xs.end() - rank, xs.end());
  Ints out(rank);
  const std::vector<JsonRef> items = size.is_array() ? size.items() : std::vector<JsonRef>(rank, size);
  if (items.size() != rank) size.fail("expected " + std::to_string(rank) + " output sizes");
  for (size_t i = 0; i < rank; ++i) {
    out[i] = items[i].is_null() ? in[i] : items[i].i64();  // None keeps the input's size
    if (out[i] < 1) items[i].fail("an output size must be >= 1");
  }
  if (std::all_of(out.begin(), out.end(), [](int64_t o) { return o == 1; }))
    return n.emit("Pool", {n.in(0)}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}));
  bool divides = true;
  for (size_t i = 0; i < rank; ++i) divides = divides && in[i] % out[i] == 0;
  if (divides) {
    Ints kernel(rank);
    for (size_t i = 0; i < rank; ++i) kernel[i] = in[i] / out[i];
    ir::Attrs at = window_attrs(kernel, Ints(rank, 1), Ints(rank, 0), Ints(rank, 0));
    at.set("mode", mode);
    at.set("kernel", kernel);
    return n.emit("Pool", {n.in(0)}, std::move(at));
  }
  if (mode != "avg" || rank > 2)
    size.fail("adaptive " + mode + " pooling of " + shape_str(in) + " to " + shape_str(out) +
              " is supported only where each output size divides the input's (or for averages over 1 or 2 dims)");
  std::string x = n.in(0);
  std::vector<size_t> dims;  // the spatial dims that change, last first
  for (size_t i = rank; i-- > 0;)
    if (in[i] != out[i]) dims.push_back(i);
  for (size_t k = 0; k < dims.size(); ++k) {
    const size_t i = dims[k];
    Tensor m(DType::f32, {out[i], in[i]});
    float* w = m.data<float>();
    std::fill(w, w + out[i] * in[i], 0.f);
    for (int64_t o = 0; o < out[i]; ++o) {
      const int64_t begin = o * in[i] / out[i], end = ((o + 1) * in[i] + out[i] - 1) / out[i];
      for (int64_t j = begin; j < end; ++j) w[o * in[i] + j] = 1.f / float(end - begin);
    }
    const bool last_dim = i == rank - 1;
    const std::string pool = n.constant("pool" + std::to_string(i), std::move(m));
    // The last spatial dim: x · mᵀ; the one before it: m · x (m broadcast over N and C).
    const std::vector<std::string> ins = last_dim ? std::vector<std::string>{x, pool} : std::vector<std::string>{pool, x};
    const ir::Attrs at = attrs_of({{"transpose_b", int64_t(last_dim)}});
    if (k + 1 == dims.size()) return n.emit("MatMul", ins, at);
    x = n.step("pool" + std::to_string(i), "MatMul", ins, at);
  }
}

}  // namespace

Translate conv(size_t rank) {
  return [rank](const FxNode& n) {
    const JsonRef a = n.attrs();
    n.refuse_if_true("transposed", "a transposed convolution (ConvTranspose) is not supported");
    n.require_attr("output_padding", 0, "output_padding (a transposed convolution's) is not supported; only 0");
    if (a.str("padding_mode", "zeros") != "zeros") a["padding_mode"].fail("only padding_mode \"zeros\" is supported");
    const Ints kernel = int_or_list(a["kernel_size"], rank), stride = int_or_list(a["stride"], rank),
               dilation = int_or_list(a["dilation"], rank);
    const Padding pad = conv_padding(a["padding"], kernel, dilation);
    const int64_t out_c = a["out_channels"].i64(), groups = a.i64("groups", 1);
    if (groups < 1) a["groups"].fail("must be >= 1, got " + std::to_string(groups));  // before it divides
    Shape want = {out_c, a["in_channels"].i64() / groups};
    want.insert(want.end(), kernel.begin(), kernel.end());
    const std::string w = n.required_param("weight");
    n.check_param_shape("weight", w, want, "[out_channels, in_channels/groups, kernel...] = ");
    std::vector<std::string> inputs = {n.in(0), w};
    if (auto b = n.param("bias")) {
      n.check_param_shape("bias", *b, {out_c}, "shape ");
      inputs.push_back(*b);
    }
    ir::Attrs at = window_attrs(stride, dilation, pad.begin, pad.end);
    at.set("groups", groups);
    n.emit("Conv", inputs, std::move(at));
  };
}

// ConvTranspose from torch's arguments (one value per spatial dim): padding trims both ends of
// each dim, output_padding extends its end. The weight [in, out / groups, kernel...] is the IR's.
void emit_conv_transpose(const FxNode& n, std::vector<std::string> inputs, const Ints& stride, const Ints& padding,
                         const Ints& output_padding, const Ints& dilation, int64_t groups) {
  ir::Attrs at = window_attrs(stride, dilation, padding, padding);
  at.set("output_padding", output_padding);
  at.set("groups", groups);
  n.emit("ConvTranspose", std::move(inputs), std::move(at));
}

// nn.ConvTranspose1d-3d (torch accepts integer padding and padding_mode "zeros" only). Called
// with output_size (which picks output_padding at run time) it is refused as an extra argument.
Translate conv_transpose(size_t rank) {
  return [rank](const FxNode& n) {
    const JsonRef a = n.attrs();
    if (a.str("padding_mode", "zeros") != "zeros") a["padding_mode"].fail("only padding_mode \"zeros\" is supported");
    const Ints kernel = int_or_list(a["kernel_size"], rank);
    const int64_t out_c = a["out_channels"].i64(), groups = a.i64("groups", 1);
    if (groups < 1) a["groups"].fail("must be >= 1, got " + std::to_string(groups));  // before it divides
    Shape want = {a["in_channels"].i64(), out_c / groups};
    want.insert(want.end(), kernel.begin(), kernel.end());
    const std::string w = n.required_param("weight");
    n.check_param_shape("weight", w, want, "[in_channels, out_channels/groups, kernel...] = ");
    std::vector<std::string> inputs = {n.in(0), w};
    if (auto b = n.param("bias")) {
      n.check_param_shape("bias", *b, {out_c}, "shape ");
      inputs.push_back(*b);
    }
    emit_conv_transpose(n, std::move(inputs), int_or_list(a["stride"], rank), int_or_list(a["padding"], rank),
                        int_or_list(a["output_padding"], rank), int_or_list(a["dilation"], rank), groups);
  };
}

// torch.conv_transpose1d-3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
// groups=1, dilation=1), as F.conv_transpose2d is named: weight and bias are parameters
// (get_attr values).
Translate conv_transpose_call(size_t rank) {
  return [rank](const FxNode& n) {
    auto ints = [&](size_t i, const std::string& kw, int64_t fallback) {
      auto v = n.arg(i, kw);
      return v ? int_or_list(*v, rank) : Ints(rank, fallback);
    };
    std::vector<std::string> inputs = {n.in(0), n.in(1, "weight")};
    if (n.arg(2, "bias")) inputs.push_back(n.in(2, "bias"));
    emit_conv_transpose(n, std::move(inputs), ints(3, "stride", 1), ints(4, "padding", 0), ints(5, "output_padding", 0),
                        ints(7, "dilation", 1), n.int_arg(6, "groups", 1));
  };
}

Translate max_pool(size_t rank) {
  return [rank](const FxNode& n) {
    n.refuse_if_true("return_indices", "return_indices is not supported");
    emit_max_pool(n, rank, module_pool_args(n, rank, true));
  };
}

Translate avg_pool(size_t rank) {
  return [rank](const FxNode& n) { emit_avg_pool(n, rank, module_pool_args(n, rank, false)); };
}

// F.max_pool1d-3d and F.avg_pool1d-3d.
Translate max_pool_call(size_t rank) {
  return [rank](const FxNode& n) { emit_max_pool(n, rank, call_pool_args(n, rank, true)); };
}

Translate avg_pool_call(size_t rank) {
  return [rank](const FxNode& n) { emit_avg_pool(n, rank, call_pool_args(n, rank, false)); };
}

Translate adaptive_pool(const std::string& mode, size_t rank) {
  return [mode, rank](const FxNode& n) {
    n.refuse_if_true("return_indices", "return_indices is not supported");
    emit_adaptive_pool(n, mode, rank, n.attr("output_size"));
  };
}

// F.adaptive_avg_pool2d(input, output_size) and the other functional forms.
Translate adaptive_pool_call(const std::string& mode, size_t rank) {
  return [mode, rank](const FxNode& n) {
    auto size = n.arg(1, "output_size");
    if (!size) n.fail("adaptive pooling needs output_size");
    if (auto r = n.kwarg("return_indices"); r && r->boolean()) r->fail("return_indices is not supported");
    emit_adaptive_pool(n, mode, rank, *size);
  };
}

}  // namespace pb::pytorch
