// nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder,
// nn.TransformerDecoderLayer, nn.TransformerDecoder and nn.Transformer, each translated whole
// into IR ops (fx keeps them as one call_module node; their submodules travel as the module's
// "children"). PyTorch 1.13's facts (docs/planets/pytorch.md "Attention modules"), each
// converted here explicitly:
// - in_proj_weight [3E, E] stacks the q, k and v projections' rows in that order, in_proj_bias
//   [3E] their biases; with kdim or vdim ≠ embed_dim the projections are q_proj_weight [E, E],
//   k_proj_weight [E, kdim], v_proj_weight [E, vdim] (the bias stays packed); out_proj is a
//   Linear(E, E); bias=False has neither bias;
// - head h is features h·head_dim .. (h+1)·head_dim of a projection; scores = q·kᵀ/√head_dim +
//   masks, softmax over the keys, · v, the heads concatenated again, then out_proj;
// - masks: attn_mask [L, S] or [N·num_heads, L, S] (row n·num_heads + h), key_padding_mask
//   [N, S]; a bool mask is -inf where True (the stream carries bools as i32 0/1), a float mask
//   is added; both given, both apply;
// - need_weights (default True) returns (out, weights): the softmax averaged over the heads
//   [N, L, S] (average_attn_weights), or per head [N, num_heads, L, S]; else (out, None);
// - batch_first False: inputs and output are [L, N, E] (the weights stay [N, ...]);
// - an encoder layer: post-norm x = norm1(x + sa(x)), x = norm2(x + ff(x)), or with norm_first
//   x = x + sa(norm1(x)), x = x + ff(norm2(x)); ff = linear2(act(linear1(x))); dropouts act in
//   training only;
// - a decoder layer: post-norm x = norm1(x + sa(x)), x = norm2(x + mha(x, memory)),
//   x = norm3(x + ff(x)), or with norm_first each sub-layer on norm_k(x) added to x; its
//   attentions run unfused (need_weights=False), and no fused kernel replaces its activation;
//   nn.Transformer is its encoder stack (memory), then its decoder stack;
// - torch's fast paths compute the same function, with two visible differences reproduced
//   here: the encoder layer's fused kernel uses the exact gelu for any GELU module (also
//   approximate="tanh"), and the encoder stack with a key padding mask runs on a nested tensor
//   whose padded positions come back as zeros (before the final norm).
#include <algorithm>
#include <cmath>
#include <limits>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

const float kMasked = -std::numeric_limits<float>::infinity();

// ------------------------------------------------------------------ submodules

// Child `name` of module `m`, of one of `types`; its attributes checked against the module
// table's list for its type (out_proj is torch's NonDynamicallyQuantizableLinear, a Linear).
FxNode submodule(const FxNode& m, const std::string& name, const std::vector<std::string>& types) {
  FxNode c = m.child(name);
  const JsonRef type = c.module()["type"];
  if (std::find(types.begin(), types.end(), type.str()) == types.end())
    type.fail(m.module()["type"].str() + "." + name + " is a " + type.str() + " (expected " + joined(types) + ")");
  const std::string as = type.str() == "NonDynamicallyQuantizableLinear" ? "Linear" : type.str();
  check_attributes(c.module()["attrs"], as == "ModuleList" ? std::vector<std::string>{} : module_table().at(as).attributes, type.str());
  return c;
}

// The module has exactly these children, and no parameters or buffers of its own beyond
// `own`: a subclass adding one could change what it computes.
void check_contents(const FxNode& m, const std::vector<std::string>& children, const std::vector<std::string>& own = {}) {
  const JsonRef& mod = m.module();
  const std::string type = mod["type"].str();
  std::vector<std::string> have;
  if (auto c = mod.find("children")) have = c->keys();
  for (const std::string& k : have)
    if (std::find(children.begin(), children.end(), k) == children.end())
      mod["children"][k].fail(type + " has an unexpected submodule \"" + k + "\" (expected " + joined(children) + ")");
  for (const std::string& k : children)
    if (std::find(have.begin(), have.end(), k) == have.end()) mod.fail(type + " has no submodule \"" + k + "\"");
  for (const char* table : {"params", "buffers"})
    if (auto t = mod.find(table))
      for (const std::string& k : t->keys())
        if (std::find(own.begin(), own.end(), k) == own.end())
          (*t)[k].fail(type + " has an unexpected " + (std::string(table) == "params" ? "parameter" : "buffer") + " \"" + k + "\"");
}

// A module in training mode drops out at random where its dropout p is > 0.
void check_eval(const FxNode& m, double p) {
  if (m.module().boolean("training", false) && p > 0)
    m.module()["training"].fail(m.module()["type"].str() + " in training mode drops out at random (p " + std::to_string(p) +
                                "); capture the model in eval()");
}

// The stream tensor of parameter `key` as f32 (an f64 rounds once), its shape checked.
Tensor param_f32(const FxNode& m, const std::string& key, const Shape& want) {
  const JsonRef p = m.module()["params"][key];
  const Tensor& t = m.decoder().tensor(p.str(), p.path());
  if (!is_float(t.dtype())) p.fail(std::string("expected a float tensor, got ") + dtype_name(t.dtype()));
  if (t.shape() != want) p.fail("expected shape " + shape_str(want) + ", got " + shape_str(t.shape()));
  return t.dtype() == DType::f32 ? t : t.cast(DType::f32);
}

// Rows [begin, begin + count) of an f32 tensor (one of in_proj's q, k, v blocks).
Tensor rows(const Tensor& t, int64_t begin, int64_t count) {
  Shape s = t.shape();
  const int64_t row = t.numel() / s[0];
  s[0] = count;
  Tensor out(DType::f32, s);
  std::copy(t.data<float>() + begin * row, t.data<float>() + (begin + count) * row, out.data<float>());
  return out;
}

// A Linear submodule: Dense(x, weight, bias?) with the fused `activation`, named step `name`.
std::string linear(const FxNode& n, const FxNode& lin, const std::string& name, const std::string& x, int64_t in, int64_t out,
                   ir::Attrs a = {}) {
  if (lin.attr("in_features").i64() != in || lin.attr("out_features").i64() != out)
    lin.attrs().fail("expected a Linear(" + std::to_string(in) + ", " + std::to_string(out) + "), got Linear(" +
                     std::to_string(lin.attr("in_features").i64()) + ", " + std::to_string(lin.attr("out_features").i64()) + ")");
  const std::string w = lin.required_param("weight");
  lin.check_param_shape("weight", w, {out, in}, "shape [out_features, in_features] = ");
  std::vector<std::string> inputs = {x, w};
  if (auto b = lin.param("bias")) {
    lin.check_param_shape("bias", *b, {out}, "shape ");
    inputs.push_back(*b);
  }
  return n.step(name, "Dense", inputs, std::move(a));
}

// One IR node to emit: as a step, or as the fx node's own value (put).
struct Op {
  std::string op;
  std::vector<std::string> inputs;
  ir::Attrs attrs;
};

// Emits `o` as step `step` of node n, or as n's own value when `step` is empty; returns its name.
std::string put(const FxNode& n, const std::string& step, Op o) {
  if (!step.empty()) return n.step(step, o.op, std::move(o.inputs), std::move(o.attrs));
  n.emit(o.op, std::move(o.inputs), std::move(o.attrs));
  return n.decoder().planet_form(n.name());
}

// A LayerNorm submodule over the last dim (E features), its parameters checked.
Op layer_norm(const FxNode& ln, const std::string& x, int64_t e) {
  const JsonRef shape = ln.attr("normalized_shape");
  if (shape.ints() != Ints{e}) shape.fail("expected a LayerNorm over the last " + std::to_string(e) + " features, got " + shape_str(shape.ints()));
  std::vector<std::string> inputs = {x, ln.param("weight").value_or(""), ln.param("bias").value_or("")};
  for (size_t i = 1; i < 3; ++i)
    if (!inputs[i].empty()) ln.check_param_shape(i == 1 ? "weight" : "bias", inputs[i], {e}, "shape ");
  return {"LayerNorm", inputs, attrs_of({{"axis", int64_t(-1)}, {"eps", ln.attr("eps").f64()}})};
}

void check_dropout(const FxNode& m, const std::string& name) {
  const FxNode dropout = submodule(m, name, {"Dropout"});
  check_eval(dropout, dropout.attr("p").f64());
}

// ------------------------------------------------------------------ masks

// The fx graph node named `name`.
JsonRef fx_node(const FxNode& n, const std::string& name) {
  for (const JsonRef& node : n.decoder().model()["graph"].items())
    if (node["name"].str() == name) return node;
  n.fail("internal: no fx node \"" + name + "\"");
}

// Whether fx value `name` is an integer (bool) buffer read by get_attr, reached only through
// indexing and views: get_attr computes such a buffer as f32 0/1, which as a mask would be added
// where torch masks.
bool bool_buffer_behind(const FxNode& n, const std::string& name) {
  const JsonRef node = fx_node(n, name);
  const std::string op = node["op"].str(), target = node["target"].str();
  if (op == "get_attr") return !is_float(n.decoder().tensor(target, node["target"].path()).dtype());
  static const std::vector<std::string> views = {"_operator.getitem", "view", "reshape", "transpose", "permute", "contiguous", "flatten"};
  if ((op == "call_function" || op == "call_method") && std::find(views.begin(), views.end(), target) != views.end()) {
    auto args = node.find("args");
    if (args && args->size() > 0 && (*args)[0].is_object() && (*args)[0].has("node")) return bool_buffer_behind(n, (*args)[0]["node"].str());
  }
  return false;
}

const char* const kIndexedBoolBuffer =
    "a bool buffer indexed or viewed in the graph, which the IR computes as f32 0/1 (get_attr's promotion), is not supported as a "
    "mask: pass the buffer itself (the shape the module needs), an input, or a float mask";

// A bool mask as additive f32: -inf where set.
Tensor additive(const Tensor& mask) {
  const Tensor m = mask.cast(DType::i64);
  Tensor out(DType::f32, mask.shape());
  for (int64_t i = 0; i < out.numel(); ++i) out.data<float>()[i] = m.data<int64_t>()[i] != 0 ? kMasked : 0.f;
  return out;
}

// Mask argument `a` as an additive f32 IR value or weight of `shape` (torch's own layout of that
// mask), then reshaped to `to`, which broadcasts against the scores [N, heads, L, S]. `role`
// names it ("attn_mask", "key_padding_mask"); `owner` the IR name constants and steps start with.
std::string additive_mask(const FxNode& n, const JsonRef& a, const std::string& role, const std::string& owner, const std::vector<Shape>& shapes,
                          const std::vector<Ints>& to) {
  Decoder& d = n.decoder();
  const std::string v = n.node_ref(a);
  const JsonRef producer = fx_node(n, v);
  const Shape shape = d.type(v).shape;
  size_t which = shapes.size();
  for (size_t i = 0; i < shapes.size(); ++i) {
    bool fits = shapes[i].size() == shape.size();
    for (size_t k = 0; fits && k < shape.size(); ++k) fits = shapes[i][k] == shape[k] || (shapes[i][k] == -1 && k == 0);
    if (fits) which = i;
  }
  if (which == shapes.size()) {
    std::string want;
    for (const Shape& s : shapes) want += (want.empty() ? "" : " or ") + shape_str(s);
    a.fail(role + " " + shape_str(shape) + " does not fit: expected " + want);
  }
  const std::string ir_name = owner + "." + role;  // a constant, or the step converting a runtime bool mask
  // A buffer read directly: a float one is the weight get_attr made of it (reshaped, sharing its
  // bytes: "<buffer>@<role>"), a bool one is made additive here, once.
  if (producer["op"].str() == "get_attr") {
    const std::string target = producer["target"].str();
    const Tensor& t = d.tensor(target, producer["target"].path());
    Shape s = to[which];
    int64_t known = 1;
    for (int64_t dim : s) known *= dim == -1 ? 1 : dim;
    for (int64_t& dim : s) dim = dim == -1 ? t.numel() / known : dim;  // the batch, from the buffer itself
    if (!is_float(t.dtype())) return d.constant(owner, role, additive(t).reshaped(s));
    const std::string w = d.planet_form(v);
    return s == shape ? w : d.derived(target, role, (t.dtype() == DType::f32 ? t : t.cast(DType::f32)).reshaped(s));
  }
  std::string x = d.planet_form(v);
  if (!is_float(d.type(v).dtype)) {
    // A runtime bool mask: each id (0 or 1) picks its additive value from a two-row table.
    Tensor table(DType::f32, {2, 1});
    table.data<float>()[1] = kMasked;
    d.step(ir_name, "Embedding", {x, d.constant(owner, role + "_table", table)});
    x = ir_name;
  } else if (bool_buffer_behind(n, v)) {
    a.fail(role + ": " + kIndexedBoolBuffer);
  }
  if (to[which] == shape) return x;
  d.step(ir_name + "/shaped", "Reshape", {x}, attrs_of({{"shape", to[which]}}));
  return ir_name + "/shaped";
}

// The additive masks of one attention call, in the order torch applies them.
struct Masks {
  std::vector<std::string> additive;
};

// attn_mask [L, S] or [N·heads, L, S] -> broadcasting against [N, heads, L, S]; `role` names it
// as the module's forward does (a decoder's tgt_mask, memory_mask).
void add_attn_mask(const FxNode& n, const std::optional<JsonRef>& a, const std::string& owner, int64_t heads, int64_t l, int64_t s, Masks& m,
                   const std::string& role = "attn_mask") {
  if (a) m.additive.push_back(additive_mask(n, *a, role, owner, {{l, s}, {-1, l, s}}, {{l, s}, {-1, heads, l, s}}));
}

// key_padding_mask [N, S] -> [N, 1, 1, S].
void add_key_padding_mask(const FxNode& n, const std::optional<JsonRef>& a, const std::string& owner, int64_t s, Masks& m,
                          const std::string& role = "key_padding_mask") {
  if (a) m.additive.push_back(additive_mask(n, *a, role, owner, {{-1, s}}, {{-1, 1, 1, s}}));
}

// The stream tensor behind fx value `name` when it is a buffer (get_attr) or a graph input
// (the captured example), else nullptr; `input` says which.
const Tensor* captured(const FxNode& n, const std::string& name, bool& input) {
  size_t placeholders = 0;
  for (const JsonRef& node : n.decoder().model()["graph"].items()) {
    const std::string op = node["op"].str();
    if (node["name"].str() == name) {
      input = op == "placeholder";
      if (op == "get_attr") return &n.decoder().tensor(node["target"].str(), node["target"].path());
      const Stream& s = n.decoder().stream();
      return input && placeholders < s.inputs.size() ? &s.tensors.at(s.inputs[placeholders]) : nullptr;
    }
    placeholders += op == "placeholder";
  }
  return nullptr;
}

// What an encoder stack's nested-tensor path does to its output: `keep` [N, S, 1] (1 where a
// position is kept, 0 where padded; "" when torch runs densely) and the length it is padded
// back to.
struct Nested {
  std::string keep;
  int64_t length = 0;
};

// src_key_padding_mask `a` [N, S] under the nested path. A buffer is read here: torch's
// left-alignment check (mask_check) and the output length (its longest row) follow from it. A
// runtime mask is assumed padded at the end of each row, with a row unpadded (the output length
// follows the values, which a graph cannot): the captured example must be so (refused otherwise).
// `owner` names its constant "<owner>.keep" or step "<owner>/keep" (the fx node, or the stack
// inside an nn.Transformer).
Nested nested_padding(const FxNode& n, const JsonRef& a, bool mask_check, const std::string& owner) {
  Decoder& d = n.decoder();
  const std::string v = n.node_ref(a);
  bool input = false;
  const Tensor* t = captured(n, v, input);
  const bool buffer = t && !input;
  if (!buffer && bool_buffer_behind(n, v)) a.fail(kIndexedBoolBuffer);
  if (is_float(buffer ? t->dtype() : d.type(v).dtype))
    a.fail("a float src_key_padding_mask on this encoder makes torch 1.13 drop every position where it is non-zero "
           "(its nested-tensor path); not supported: pass a bool mask");
  Nested r;
  const Shape& shape = d.type(v).shape;
  if (shape.size() != 2) a.fail("src_key_padding_mask must be [N, S], got " + shape_str(shape));
  r.length = shape[1];
  if (t) {
    const Tensor m = t->cast(DType::i64);
    const int64_t rows = m.shape()[0], cols = m.shape()[1];
    int64_t longest = 0;
    bool aligned = true;
    for (int64_t i = 0; i < rows; ++i) {
      int64_t kept = 0;
      for (int64_t j = 0; j < cols; ++j) {
        const bool pad = m.data<int64_t>()[i * cols + j] != 0;
        kept += !pad;
        if (j > 0 && !pad && m.data<int64_t>()[i * cols + j - 1] != 0) aligned = false;
      }
      longest = std::max(longest, kept);
    }
    if (!aligned) {
      if (buffer && mask_check) return {};  // torch checks the alignment and runs densely
      a.fail(std::string("a row of the ") + (input ? "captured " : "") + "src_key_padding_mask has padding before a kept position: " +
             (mask_check ? "torch 1.13 runs such a mask densely and one padded at the end on its nested-tensor path (zeros at the "
                           "padding), a choice by value a graph cannot follow"
                         : "with mask_check=False torch 1.13 builds its nested tensor from it regardless") +
             "; not supported");
    }
    if (longest < cols) {
      if (input)
        a.fail("every row of the captured src_key_padding_mask is padded (the longest keeps " + std::to_string(longest) + " of " +
               std::to_string(cols) + "): torch 1.13's nested-tensor path then returns [N, " + std::to_string(longest) +
               ", E], a length that depends on the mask's values, which a graph cannot follow; capture with a row "
               "that has no padding");
      r.length = longest;
    }
  }
  if (buffer) {
    const Tensor m = t->cast(DType::i64);
    Tensor k(DType::f32, {m.shape()[0], m.shape()[1], 1});
    for (int64_t i = 0; i < m.numel(); ++i) k.data<float>()[i] = m.data<int64_t>()[i] != 0 ? 0.f : 1.f;
    r.keep = d.constant(owner, "keep", k);
  } else {
    Tensor table(DType::f32, {2, 1});
    table.data<float>()[0] = 1.f;
    r.keep = owner + "/keep";
    d.step(r.keep, "Embedding", {d.planet_form(v), d.constant(owner, "keep_table", table)});
  }
  return r;
}

// ------------------------------------------------------------------ attention

struct Attention {
  int64_t e = 0, heads = 0, head_dim = 0, kdim = 0, vdim = 0;
  bool batch_first = false, packed = true;
};

// The module's facts, checked: what the IR cannot compute is refused naming the attribute.
Attention read_attention(const FxNode& m) {
  const JsonRef& mod = m.module();
  for (const char* key : {"bias_k", "bias_v"})
    if (auto p = mod["params"].find(key)) p->fail("add_bias_kv appends a learned key and value to every sequence; not supported");
  check_contents(m, {"out_proj"}, {"in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight"});
  m.refuse_if_true("add_zero_attn", "add_zero_attn appends a zero key and value to every sequence; not supported");
  check_eval(m, m.attr("dropout").f64());
  Attention a;
  a.e = m.attr("embed_dim").i64();
  a.heads = m.attr("num_heads").i64();
  a.kdim = m.attr("kdim").i64();
  a.vdim = m.attr("vdim").i64();
  a.batch_first = m.attr("batch_first").boolean();
  if (a.heads < 1 || a.e % a.heads) m.attr("num_heads").fail("embed_dim " + std::to_string(a.e) + " is not divisible by num_heads " + std::to_string(a.heads));
  a.head_dim = a.e / a.heads;
  if (m.attr("head_dim").i64() != a.head_dim) m.attr("head_dim").fail("head_dim must be embed_dim / num_heads = " + std::to_string(a.head_dim));
  a.packed = mod["params"].has("in_proj_weight");
  if (a.packed && (a.kdim != a.e || a.vdim != a.e))
    mod["params"]["in_proj_weight"].fail("a packed in_proj_weight needs kdim = vdim = embed_dim (torch keeps separate q/k/v_proj_weight otherwise)");
  return a;
}

// q, k or v: the projection of x (IR value [.., L, in]) by its block of in_proj, named step
// "<prefix><which>", then split into heads [N, heads, L, head_dim].
std::string project_heads(const FxNode& n, const FxNode& m, const Attention& a, const std::string& prefix, const std::string& x, int64_t which,
                          int64_t in) {
  Decoder& d = n.decoder();
  const std::string role = std::string(1, "qkv"[which]);
  const JsonRef params = m.module()["params"];
  std::string w;
  if (a.packed) {
    w = d.derived(params["in_proj_weight"].str(), role, rows(param_f32(m, "in_proj_weight", {3 * a.e, a.e}), which * a.e, a.e));
  } else {
    w = m.required_param(role + "_proj_weight");
    m.check_param_shape(role + "_proj_weight", w, {a.e, in}, "shape [embed_dim, " + std::string(which == 0 ? "embed_dim" : which == 1 ? "kdim" : "vdim") + "] = ");
  }
  std::vector<std::string> inputs = {x, w};
  if (params.has("in_proj_bias"))
    inputs.push_back(d.derived(params["in_proj_bias"].str(), role, rows(param_f32(m, "in_proj_bias", {3 * a.e}), which * a.e, a.e)));
  const std::string p = n.step(prefix + role, "Dense", inputs);
  const std::string split = n.step(prefix + role + "_split", "Reshape", {p}, attrs_of({{"shape", Ints{0, 0, a.heads, a.head_dim}}}));
  // [N, L, heads, hd] or [L, N, heads, hd] -> [N, heads, L, hd]
  return n.step(prefix + role + "_heads", "Transpose", {split}, attrs_of({{"perm", a.batch_first ? Ints{0, 2, 1, 3} : Ints{1, 2, 0, 3}}}));
}

struct AttentionOut {
  std::string out, weights;  // weights: "" unless asked for
};

// One attention call of module view `m`: IR values query [.., L, E], key [.., S, kdim], value
// [.., S, vdim] in the module's layout; steps named "<prefix>..." of node n, the output
// projection "<prefix>out", the softmax "<prefix>weights" [N, heads, L, S].
AttentionOut attention(const FxNode& n, const FxNode& m, const Attention& a, const std::string& prefix, const std::string& query,
                       const std::string& key, const std::string& value, const Masks& masks, bool need_weights, bool average) {
  Decoder& d = n.decoder();
  const Shape& qs = d.ir_type(query).shape;
  const Shape& ks = d.ir_type(key).shape;
  const Shape& vs = d.ir_type(value).shape;
  if (qs.size() != 3 || ks.size() != 3 || vs.size() != 3)
    n.fail("MultiheadAttention on unbatched inputs (" + shape_str(qs) + ", " + shape_str(ks) + ", " + shape_str(vs) +
           ") is not supported: pass a batch " + (a.batch_first ? "[N, L, E]" : "[L, N, E]"));
  if (qs[2] != a.e || ks[2] != a.kdim || vs[2] != a.vdim)
    n.fail("MultiheadAttention(embed_dim " + std::to_string(a.e) + ", kdim " + std::to_string(a.kdim) + ", vdim " + std::to_string(a.vdim) +
           ") called on query " + shape_str(qs) + ", key " + shape_str(ks) + ", value " + shape_str(vs));
  if (ks[a.batch_first ? 1 : 0] != vs[a.batch_first ? 1 : 0]) n.fail("key " + shape_str(ks) + " and value " + shape_str(vs) + " differ in length");
  const std::string q = project_heads(n, m, a, prefix, query, 0, a.e);
  const std::string k = project_heads(n, m, a, prefix, key, 1, a.kdim);
  const std::string v = project_heads(n, m, a, prefix, value, 2, a.vdim);
  // torch scales q by 1/sqrt(head_dim) before the product; here the product is scaled.
  std::string scores = n.step(prefix + "scores", "MatMul", {q, k}, attrs_of({{"transpose_b", int64_t(1)}, {"scale", 1 / std::sqrt(double(a.head_dim))}}));
  for (size_t i = 0; i < masks.additive.size(); ++i)
    scores = n.step(prefix + "masked" + (i ? std::to_string(i) : ""), "Add", {scores, masks.additive[i]});
  const std::string weights = n.step(prefix + "weights", "Softmax", {scores}, attrs_of({{"axis", int64_t(-1)}}));
  const std::string context = n.step(prefix + "context", "MatMul", {weights, v});
  // [N, heads, L, hd] -> [N, L, heads, hd] or [L, N, heads, hd] -> [.., E]
  const std::string merged = n.step(prefix + "merged", "Transpose", {context}, attrs_of({{"perm", a.batch_first ? Ints{0, 2, 1, 3} : Ints{2, 0, 1, 3}}}));
  const std::string flat = n.step(prefix + "merged_flat", "Reshape", {merged}, attrs_of({{"shape", Ints{0, 0, a.e}}}));
  AttentionOut r;
  r.out = linear(n, submodule(m, "out_proj", {"NonDynamicallyQuantizableLinear", "Linear"}), prefix + "out", flat, a.e, a.e);
  if (need_weights) {
    r.weights = weights;
    if (average) {
      // The mean over heads as torch takes it, the sum divided by num_heads: ones[1, heads] · w
      // [N, heads, L·S], scaled.
      const Shape& ws = d.ir_type(weights).shape;
      const std::string by_head = n.step(prefix + "weights_by_head", "Reshape", {weights}, attrs_of({{"shape", Ints{0, a.heads, -1}}}));
      Tensor ones(DType::f32, {1, a.heads});
      std::fill(ones.data<float>(), ones.data<float>() + a.heads, 1.f);
      const std::string sum = n.step(prefix + "weights_mean", "MatMul", {d.constant(n.name() + "/" + prefix + "weights_mean", "ones", ones), by_head},
                                     attrs_of({{"scale", 1.0 / double(a.heads)}}));
      r.weights = n.step(prefix + "weights_avg", "Reshape", {sum}, attrs_of({{"shape", Ints{0, ws[2], ws[3]}}}));
    }
  }
  return r;
}

bool bool_arg(const FxNode& n, size_t i, const std::string& kw, bool fallback) {
  auto a = n.arg(i, kw);
  if (!a) return fallback;
  if (!a->raw().is_boolean()) a->fail(kw + " must be a Python bool (a constant of the traced code)");
  return a->boolean();
}

// ------------------------------------------------------------------ layers' activation

// A transformer layer's feed-forward activation as torch runs it: the attribute `activation`
// (F.relu, F.gelu: {"function": name}) or the child `activation` (nn.ReLU, nn.GELU); `what`
// names the layer in errors. Sets `approximate` for a GELU module.
std::string layer_activation(const FxNode& m, const std::string& what, std::string& approximate) {
  const JsonRef attrs = m.attrs();
  approximate = "none";
  if (m.module().has("children") && m.module()["children"].has("activation")) {
    if (attrs.has("activation")) attrs["activation"].fail("an activation both as an attribute and as a submodule");
    const FxNode act = submodule(m, "activation", {"ReLU", "GELU"});
    if (act.module()["type"].str() == "ReLU") return "relu";
    approximate = act.attrs().str("approximate", "none");
    return "gelu";
  }
  if (!attrs.has("activation"))
    attrs.fail(m.module()["type"].str() + ".activation is a callable the capture cannot name (neither a function nor an nn.Module); "
               "supported: torch.nn.functional.relu, torch.nn.functional.gelu, nn.ReLU, nn.GELU");
  const JsonRef f = attrs["activation"];
  const std::string name = f.is_object() && f.has("function") ? f["function"].str() : "";
  if (name == "torch.nn.functional.relu") return "relu";
  if (name == "torch._C._nn.gelu" || name == "torch.nn.functional.gelu") return "gelu";
  f.fail("unsupported " + what + " activation " + (name.empty() ? f.raw().dump() : "\"" + name + "\"") +
         " (known: torch.nn.functional.relu, torch.nn.functional.gelu, nn.ReLU, nn.GELU)");
}

// The IR's function for relu / gelu with GELU's `approximate` (the fused kernel's exact gelu
// where `exact_gelu`).
std::string ir_activation(const FxNode& m, const std::string& fn, const std::string& approximate, bool exact_gelu) {
  if (fn == "relu") return "relu";
  if (approximate == "none" || exact_gelu) return "gelu_erf";
  if (approximate == "tanh") return "gelu_tanh";
  m.child("activation").attr("approximate").fail("unknown GELU approximation \"" + approximate + "\"");
}

// ff = linear2(act(linear1(x))) of a layer's children, the activation fused; steps
// "<prefix>linear1", "<prefix>linear2".
std::string feed_forward(const FxNode& n, const FxNode& m, const std::string& prefix, const std::string& x, int64_t e, const std::string& activation) {
  const FxNode lin1 = submodule(m, "linear1", {"Linear"}), lin2 = submodule(m, "linear2", {"Linear"});
  const int64_t ff = lin1.attr("out_features").i64();
  const std::string h = linear(n, lin1, prefix + "linear1", x, e, ff, attrs_of({{"activation", activation}}));
  return linear(n, lin2, prefix + "linear2", h, ff, e);
}

// ------------------------------------------------------------------ encoder layer

struct EncoderLayer {
  FxNode attn;
  Attention a;
  bool norm_first = false;
  std::string activation;  // the IR's function name
  bool fast_path = false;   // torch's fused kernel (_transformer_encoder_layer_fwd) runs it
};

// Layer module view `m`: its facts checked, its activation resolved as torch runs it.
EncoderLayer read_encoder_layer(const FxNode& m, bool src_mask) {
  const bool module_activation = m.module().has("children") && m.module()["children"].has("activation");
  check_contents(m, module_activation ? std::vector<std::string>{"self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2", "activation"}
                                      : std::vector<std::string>{"self_attn", "linear1", "dropout", "linear2", "norm1", "norm2", "dropout1", "dropout2"});
  for (const char* dropout : {"dropout", "dropout1", "dropout2"}) check_dropout(m, dropout);
  EncoderLayer l{submodule(m, "self_attn", {"MultiheadAttention"}), {}, m.attrs().boolean("norm_first", false), "", false};
  l.a = read_attention(l.attn);
  std::string approximate;
  const std::string fn = layer_activation(m, "encoder layer", approximate);
  if (m.attr("activation_relu_or_gelu").i64() != (fn == "relu" ? 1 : 2)) m.attr("activation_relu_or_gelu").fail("disagrees with the activation (" + fn + ")");
  const FxNode norm1 = submodule(m, "norm1", {"LayerNorm"}), norm2 = submodule(m, "norm2", {"LayerNorm"});
  // torch 1.13 takes its fused kernel in eval under no_grad when all these hold (src.dim() == 3
  // is checked with the input); the kernel's gelu is the exact one whatever the module says.
  l.fast_path = !m.module().boolean("training", false) && l.a.batch_first && l.a.packed &&
                norm1.attr("eps").f64() == norm2.attr("eps").f64() && !src_mask && l.a.heads % 2 == 0;
  l.activation = ir_activation(m, fn, approximate, l.fast_path);
  return l;
}

// One encoder layer of module view `m` on IR value x; steps "<prefix>..."; the result is the
// step `out` ("": the node's own value).
std::string encoder_layer(const FxNode& n, const FxNode& m, const EncoderLayer& l, const std::string& prefix, const std::string& x,
                          const Masks& masks, const std::string& out) {
  const int64_t e = l.a.e;
  const FxNode norm1 = submodule(m, "norm1", {"LayerNorm"}), norm2 = submodule(m, "norm2", {"LayerNorm"});
  auto sa = [&](const std::string& in) { return attention(n, l.attn, l.a, prefix + "attn/", in, in, in, masks, false, true).out; };
  auto ff = [&](const std::string& in) { return feed_forward(n, m, prefix, in, e, l.activation); };
  if (l.norm_first) {
    const std::string x1 = n.step(prefix + "add1", "Add", {x, sa(put(n, prefix + "norm1", layer_norm(norm1, x, e)))});
    return put(n, out, {"Add", {x1, ff(put(n, prefix + "norm2", layer_norm(norm2, x1, e)))}, {}});
  }
  const std::string x1 = put(n, prefix + "norm1", layer_norm(norm1, n.step(prefix + "add1", "Add", {x, sa(x)}), e));
  return put(n, out, layer_norm(norm2, n.step(prefix + "add2", "Add", {x1, ff(x1)}), e));
}

// The stack's ModuleList `layers` of `count` (num_layers) children of `type`.
std::vector<FxNode> stack_layers(const FxNode& m, const std::string& type) {
  const int64_t count = m.attr("num_layers").i64();
  if (count < 1) m.attr("num_layers").fail("num_layers must be at least 1");
  const FxNode list = submodule(m, "layers", {"ModuleList"});
  std::vector<std::string> names;
  for (int64_t k = 0; k < count; ++k) names.push_back(std::to_string(k));
  check_contents(list, names);
  std::vector<FxNode> layers;
  for (const std::string& k : names) layers.push_back(submodule(list, k, {type}));
  return layers;
}

// A stack's optional final norm: the child "norm" (the attribute is null then).
std::optional<FxNode> final_norm(const FxNode& m) {
  const bool has_norm = m.module().has("children") && m.module()["children"].has("norm");
  check_contents(m, has_norm ? std::vector<std::string>{"layers", "norm"} : std::vector<std::string>{"layers"});
  if (!has_norm) return std::nullopt;
  if (m.attrs().has("norm") && !m.attr("norm").is_null()) m.attr("norm").fail("a norm both as an attribute and as a submodule");
  return submodule(m, "norm", {"LayerNorm"});
}

// The owner of a stack's constants: the fx node, or "<node>/<stack>" inside an nn.Transformer.
std::string owner_of(const FxNode& n, const std::string& prefix) {
  return prefix.empty() ? n.name() : n.name() + "/" + prefix.substr(0, prefix.size() - 1);
}

// An nn.TransformerEncoder `m` on IR value x0 (its forward's mask and src_key_padding_mask
// arguments `mask`, `padding`): the layers in turn ("<prefix>l<k>"), then the final norm if any;
// the result is the step `out` ("": the node's own value). Its masks are "attn_mask" and
// "key_padding_mask", or inside an nn.Transformer (a `prefix`) "src_mask", "src_key_padding_mask".
std::string encoder_stack(const FxNode& n, const FxNode& m, const std::string& prefix, const std::string& x0, const std::optional<JsonRef>& mask,
                          const std::optional<JsonRef>& padding, const std::string& out) {
  Decoder& d = n.decoder();
  const std::optional<FxNode> norm = final_norm(m);
  std::vector<std::pair<FxNode, EncoderLayer>> layers;
  for (const FxNode& layer : stack_layers(m, "TransformerEncoderLayer")) layers.emplace_back(layer, read_encoder_layer(layer, mask.has_value()));
  const Shape& xs = d.ir_type(x0).shape;
  const EncoderLayer& first = layers[0].second;
  if (xs.size() != 3) n.fail("TransformerEncoder on an unbatched input " + shape_str(xs) + " is not supported");
  const int64_t seq = xs[first.a.batch_first ? 1 : 0];
  const std::string owner = owner_of(n, prefix);
  const bool inner = !prefix.empty();
  Masks masks;
  add_attn_mask(n, mask, owner, first.a.heads, seq, seq, masks, inner ? "src_mask" : "attn_mask");
  add_key_padding_mask(n, padding, owner, seq, masks, inner ? "src_key_padding_mask" : "key_padding_mask");
  // torch 1.13's sparsity fast path: with a key padding mask (and no mask) on a post-norm,
  // batch-first, fast-path first layer, the layers run on a nested tensor of the unpadded
  // positions, and it comes back padded with zeros to the longest row's length. mask_check makes
  // torch verify that each row's padding is at its end (else it runs densely).
  const bool nested = padding && !mask && m.attrs().boolean("enable_nested_tensor", true) && !first.norm_first && first.fast_path;
  const Nested unpad = nested ? nested_padding(n, *padding, m.attrs().boolean("mask_check", true), owner) : Nested{};
  // Each layer's output is "<prefix>l<k>"; the last op is `out`.
  std::string x = x0;
  const bool last_is_out = !norm && unpad.keep.empty();
  const size_t count = layers.size();
  for (size_t k = 0; k < count; ++k) {
    const std::string layer = prefix + "l" + std::to_string(k);
    x = encoder_layer(n, layers[k].first, layers[k].second, layer + "/", x, masks, last_is_out && k == count - 1 ? out : layer);
  }
  if (!unpad.keep.empty()) {
    x = put(n, norm || unpad.length < seq ? prefix + "unpadded" : out, {"Mul", {x, unpad.keep}, {}});
    if (unpad.length < seq)
      x = put(n, norm ? prefix + "trimmed" : out, {"Slice", {x}, attrs_of({{"starts", Ints{0}}, {"ends", Ints{unpad.length}}, {"axes", Ints{1}}})});
  }
  if (norm) x = put(n, out, layer_norm(*norm, x, first.a.e));
  return x;
}

// ------------------------------------------------------------------ decoder layer

struct DecoderLayer {
  FxNode self_attn, cross_attn;  // self_attn, multihead_attn
  Attention sa, ca;
  bool norm_first = false;
  std::string activation;  // the IR's function name (no fused kernel: GELU's approximate holds)
};

DecoderLayer read_decoder_layer(const FxNode& m) {
  const bool module_activation = m.module().has("children") && m.module()["children"].has("activation");
  std::vector<std::string> children = {"self_attn", "multihead_attn", "linear1", "dropout", "linear2", "norm1",
                                       "norm2",     "norm3",          "dropout1", "dropout2", "dropout3"};
  if (module_activation) children.push_back("activation");
  check_contents(m, children);
  for (const char* dropout : {"dropout", "dropout1", "dropout2", "dropout3"}) check_dropout(m, dropout);
  DecoderLayer l{submodule(m, "self_attn", {"MultiheadAttention"}), submodule(m, "multihead_attn", {"MultiheadAttention"}), {}, {},
                 m.attrs().boolean("norm_first", false), ""};
  l.sa = read_attention(l.self_attn);
  l.ca = read_attention(l.cross_attn);
  if (l.ca.batch_first != l.sa.batch_first)
    l.cross_attn.attr("batch_first").fail("TransformerDecoderLayer.multihead_attn.batch_first differs from self_attn's");
  if (l.ca.e != l.sa.e) l.cross_attn.attr("embed_dim").fail("TransformerDecoderLayer.multihead_attn.embed_dim differs from self_attn's");
  std::string approximate;
  l.activation = ir_activation(m, layer_activation(m, "decoder layer", approximate), approximate, false);
  return l;
}

// A decoder's mask arguments, as its forward (or nn.Transformer's) names them.
struct DecoderArgs {
  std::optional<JsonRef> tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask;
};

// The mask arguments of a decoder layer's or stack's call: (tgt, memory, tgt_mask, memory_mask,
// tgt_key_padding_mask, memory_key_padding_mask).
DecoderArgs decoder_args(const FxNode& n) {
  return {n.arg(2, "tgt_mask"), n.arg(3, "memory_mask"), n.arg(4, "tgt_key_padding_mask"), n.arg(5, "memory_key_padding_mask")};
}

// A decoder's masks, as additive masks of its two attentions.
struct DecoderMasks {
  Masks self, cross;
};

// tgt_mask [L, L] / [N·heads, L, L], tgt_key_padding_mask [N, L] on the self-attention;
// memory_mask [L, S] / [N·heads, L, S], memory_key_padding_mask [N, S] on the cross-attention.
DecoderMasks decoder_masks(const FxNode& n, const std::string& owner, const DecoderLayer& l, const std::string& tgt, const std::string& memory,
                           const DecoderArgs& a) {
  Decoder& d = n.decoder();
  const Shape& ts = d.ir_type(tgt).shape;
  const Shape& ms = d.ir_type(memory).shape;
  if (ts.size() != 3 || ms.size() != 3)
    n.fail("a transformer decoder on unbatched inputs (tgt " + shape_str(ts) + ", memory " + shape_str(ms) + ") is not supported");
  const size_t seq = l.sa.batch_first ? 1 : 0;
  const int64_t lt = ts[seq], sm = ms[seq];
  DecoderMasks r;
  add_attn_mask(n, a.tgt_mask, owner, l.sa.heads, lt, lt, r.self, "tgt_mask");
  add_key_padding_mask(n, a.tgt_key_padding_mask, owner, lt, r.self, "tgt_key_padding_mask");
  add_attn_mask(n, a.memory_mask, owner, l.ca.heads, lt, sm, r.cross, "memory_mask");
  add_key_padding_mask(n, a.memory_key_padding_mask, owner, sm, r.cross, "memory_key_padding_mask");
  return r;
}

// One decoder layer of module view `m` on IR values x (tgt) and memory; steps "<prefix>...",
// the result the step `out` ("": the node's own value). Post-norm x = norm1(x + sa(x)),
// x = norm2(x + mha(x, memory)), x = norm3(x + ff(x)); norm_first x = x + sa(norm1(x)),
// x = x + mha(norm2(x), memory), x = x + ff(norm3(x)).
std::string decoder_layer(const FxNode& n, const FxNode& m, const DecoderLayer& l, const std::string& prefix, const std::string& x,
                          const std::string& memory, const DecoderMasks& masks, const std::string& out) {
  const int64_t e = l.sa.e;
  const FxNode norm1 = submodule(m, "norm1", {"LayerNorm"}), norm2 = submodule(m, "norm2", {"LayerNorm"}), norm3 = submodule(m, "norm3", {"LayerNorm"});
  auto sa = [&](const std::string& in) { return attention(n, l.self_attn, l.sa, prefix + "self_attn/", in, in, in, masks.self, false, true).out; };
  auto mha = [&](const std::string& in) {
    return attention(n, l.cross_attn, l.ca, prefix + "multihead_attn/", in, memory, memory, masks.cross, false, true).out;
  };
  auto ff = [&](const std::string& in) { return feed_forward(n, m, prefix, in, e, l.activation); };
  if (l.norm_first) {
    const std::string x1 = n.step(prefix + "add1", "Add", {x, sa(put(n, prefix + "norm1", layer_norm(norm1, x, e)))});
    const std::string x2 = n.step(prefix + "add2", "Add", {x1, mha(put(n, prefix + "norm2", layer_norm(norm2, x1, e)))});
    return put(n, out, {"Add", {x2, ff(put(n, prefix + "norm3", layer_norm(norm3, x2, e)))}, {}});
  }
  const std::string x1 = put(n, prefix + "norm1", layer_norm(norm1, n.step(prefix + "add1", "Add", {x, sa(x)}), e));
  const std::string x2 = put(n, prefix + "norm2", layer_norm(norm2, n.step(prefix + "add2", "Add", {x1, mha(x1)}), e));
  return put(n, out, layer_norm(norm3, n.step(prefix + "add3", "Add", {x2, ff(x2)}), e));
}

// An nn.TransformerDecoder `m` on tgt and memory under masks `args`: the layers in turn
// ("<prefix>l<k>"), then the final norm if any; the result is the step `out`.
std::string decoder_stack(const FxNode& n, const FxNode& m, const std::string& prefix, const std::string& tgt, const std::string& memory,
                          const DecoderArgs& args, const std::string& out) {
  const std::optional<FxNode> norm = final_norm(m);
  std::vector<std::pair<FxNode, DecoderLayer>> layers;
  for (const FxNode& layer : stack_layers(m, "TransformerDecoderLayer")) layers.emplace_back(layer, read_decoder_layer(layer));
  const DecoderMasks masks = decoder_masks(n, owner_of(n, prefix), layers[0].second, tgt, memory, args);
  std::string x = tgt;
  const size_t count = layers.size();
  for (size_t k = 0; k < count; ++k) {
    const std::string layer = prefix + "l" + std::to_string(k);
    x = decoder_layer(n, layers[k].first, layers[k].second, layer + "/", x, memory, masks, !norm && k == count - 1 ? out : layer);
  }
  if (norm) x = put(n, out, layer_norm(*norm, x, layers[0].second.sa.e));
  return x;
}

}  // namespace

// ------------------------------------------------------------------ translators

// self.attn(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
// average_attn_weights=True) -> the tuple (out, weights or None).
void translate_multihead_attention(const FxNode& n) {
  const Attention a = read_attention(n);
  const std::string query = n.in(0, "query"), key = n.in(1, "key"), value = n.in(2, "value");
  const Shape& qs = n.decoder().ir_type(query).shape;
  const Shape& ks = n.decoder().ir_type(key).shape;
  const bool need_weights = bool_arg(n, 4, "need_weights", true), average = bool_arg(n, 6, "average_attn_weights", true);
  Masks masks;
  if (qs.size() == 3 && ks.size() == 3) {
    const int64_t l = qs[a.batch_first ? 1 : 0], s = ks[a.batch_first ? 1 : 0];
    add_attn_mask(n, n.arg(5, "attn_mask"), n.name(), a.heads, l, s, masks);
    add_key_padding_mask(n, n.arg(3, "key_padding_mask"), n.name(), s, masks);
  }
  const AttentionOut r = attention(n, n, a, "", query, key, value, masks, need_weights, average);
  n.define_tuple(FxTuple{"", {FxTuple{r.out, {}}, need_weights ? FxTuple{r.weights, {}} : FxTuple{}}});
}

// self.layer(src, src_mask=None, src_key_padding_mask=None)
void translate_encoder_layer(const FxNode& n) {
  auto src_mask = n.arg(1, "src_mask"), padding = n.arg(2, "src_key_padding_mask");
  const EncoderLayer l = read_encoder_layer(n, src_mask.has_value());
  const std::string x = n.in(0, "src");
  const Shape& xs = n.decoder().ir_type(x).shape;
  if (xs.size() != 3) n.fail("TransformerEncoderLayer on an unbatched input " + shape_str(xs) + " is not supported");
  const int64_t seq = xs[l.a.batch_first ? 1 : 0];
  Masks masks;
  add_attn_mask(n, src_mask, n.name(), l.a.heads, seq, seq, masks);
  add_key_padding_mask(n, padding, n.name(), seq, masks);
  encoder_layer(n, n, l, "", x, masks, "");
}

// self.encoder(src, mask=None, src_key_padding_mask=None): the layers in turn ("<node>/l<k>"),
// then the final norm if any.
void translate_encoder(const FxNode& n) {
  encoder_stack(n, n, "", n.in(0, "src"), n.arg(1, "mask"), n.arg(2, "src_key_padding_mask"), "");
}

// self.layer(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
// memory_key_padding_mask=None)
void translate_decoder_layer(const FxNode& n) {
  const DecoderLayer l = read_decoder_layer(n);
  const std::string tgt = n.in(0, "tgt"), memory = n.in(1, "memory");
  decoder_layer(n, n, l, "", tgt, memory, decoder_masks(n, n.name(), l, tgt, memory, decoder_args(n)), "");
}

// self.decoder(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
// memory_key_padding_mask=None): the layers in turn ("<node>/l<k>"), then the final norm if any.
void translate_decoder(const FxNode& n) { decoder_stack(n, n, "", n.in(0, "tgt"), n.in(1, "memory"), decoder_args(n), ""); }

// self.transformer(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
// src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None):
// memory = encoder(src, src_mask, src_key_padding_mask) ("<node>/encoder", its layers under
// "<node>/encoder/"), then decoder(tgt, memory, ...) (under "<node>/decoder/"), the node's value.
void translate_transformer(const FxNode& n) {
  check_contents(n, {"encoder", "decoder"});
  const FxNode encoder = submodule(n, "encoder", {"TransformerEncoder"}), decoder = submodule(n, "decoder", {"TransformerDecoder"});
  const std::string src = n.in(0, "src"), tgt = n.in(1, "tgt");
  const std::string memory = encoder_stack(n, encoder, "encoder/", src, n.arg(2, "src_mask"), n.arg(5, "src_key_padding_mask"), "encoder");
  const DecoderArgs masks = {n.arg(3, "tgt_mask"), n.arg(4, "memory_mask"), n.arg(6, "tgt_key_padding_mask"), n.arg(7, "memory_key_padding_mask")};
  decoder_stack(n, decoder, "decoder/", tgt, memory, masks, "");
}

}  // namespace pb::pytorch
