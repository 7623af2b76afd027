// nn.Conv1d-3d and the pooling modules. PyTorch is channels-first like the IR: the input is
// read as is and Conv.weight [out_channels, in_channels / groups, kernel...] is the IR's.
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

// The window geometry torch's pools share: kernel_size, stride (default: the kernel) and
// padding (both sides); ceil_mode's extra output window is not in the IR.
ir::Attrs pool_window(const FxNode& n, size_t rank, const Ints& dilation, const std::string& mode) {
  n.refuse_if_true("ceil_mode", "ceil_mode is not supported yet; use ceil_mode=False");
  const JsonRef a = n.attrs();
  const Ints kernel = int_or_list(a["kernel_size"], rank);
  const Ints stride = a.has("stride") ? int_or_list(a["stride"], rank) : kernel;
  const Ints pad = int_or_list(a["padding"], rank);
  ir::Attrs at = window_attrs(stride, dilation, pad, pad);
  at.set("mode", mode);
  at.set("kernel", kernel);
  return at;
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

// MaxPool: padding is never a maximum (the IR's max pool ignores it, as torch's -inf does).
Translate max_pool(size_t rank) {
  return [rank](const FxNode& n) {
    n.refuse_if_true("return_indices", "return_indices is not supported");
    n.emit("Pool", {n.in(0)}, pool_window(n, rank, int_or_list(n.attr("dilation"), rank), "max"));
  };
}

Translate avg_pool(size_t rank) {
  return [rank](const FxNode& n) {
    if (n.attrs().has("divisor_override")) n.attr("divisor_override").fail("divisor_override is not supported");
    ir::Attrs at = pool_window(n, rank, Ints(rank, 1), "avg");
    at.set("count_include_pad", int64_t(n.attrs().boolean("count_include_pad", true)));
    n.emit("Pool", {n.in(0)}, std::move(at));
  };
}

// Adaptive pooling to size 1 is a global pool; other sizes would need per-window bounds.
Translate adaptive_pool(const std::string& mode) {
  return [mode](const FxNode& n) {
    n.refuse_if_true("return_indices", "return_indices is not supported");
    n.require_attr("output_size", 1, "only output_size 1 (global pooling) is supported", true);
    n.emit("Pool", {n.in(0)}, attrs_of({{"mode", mode}, {"global", int64_t(1)}}));
  };
}

}  // namespace pb::pytorch
