// flax.linen.RNN and Bidirectional over SimpleCell, LSTMCell, OptimizedLSTMCell and GRUCell
// (flax/linen/recurrent.py; docs/planets/jax.md). Each cell's per-gate Dense kernels [in,
// features] are transposed and stacked in the IR's gate order (i, f, g, o; z, r, n), its biases
// go to B (input side) or RB (hidden side) exactly where Flax puts them.
#include <limits>

#include "../module.h"

namespace pb::jax {

namespace {

// One Flax cell type: the IR op, the Dense modules of its parameters per IR gate (input side,
// hidden side) with whether Flax gives each a bias, and its carry's leaves in Flax's order.
struct CellSpec {
  std::string op;
  std::vector<std::string> attributes;
  std::vector<std::string> input_dense, hidden_dense;  // per IR gate
  std::vector<bool> input_bias, hidden_bias;
  std::vector<std::string> carry;  // "" for a single-array carry
  bool gated;                      // has gate_fn (sigmoid only)
};

const std::map<std::string, CellSpec>& cells() {
  static const std::vector<std::string> gated = {"features", "gate_fn", "activation_fn", "carry_init", "dtype", "param_dtype"};
  // LSTMCell: i = gate_fn(ii(x) + hi(h)), ...: input denses use_bias=False, hidden ones True;
  // carry (c, h). OptimizedLSTMCell creates the same parameters (DenseParams, same names) and
  // computes the same sums with the kernels concatenated.
  static const CellSpec lstm = {"LSTM", gated, {"ii", "if", "ig", "io"}, {"hi", "hf", "hg", "ho"},
                                {false, false, false, false}, {true, true, true, true}, {"c", "h"}, true};
  static const std::map<std::string, CellSpec> t = {
      // h' = activation_fn(i(x) + h(carry)): i with bias, h without.
      {"SimpleCell",
       {"RNN", {"features", "activation_fn", "residual", "carry_init", "dtype", "param_dtype"}, {"i"}, {"h"}, {true}, {false}, {""}, false}},
      {"LSTMCell", lstm},
      {"OptimizedLSTMCell", lstm},
      // r = σ(ir(x) + hr(h)), z = σ(iz(x) + hz(h)), n = tanh(in(x) + r * hn(h)): ir, iz, in and hn
      // with bias, hr and hz without. IR order z, r, n.
      {"GRUCell", {"GRU", gated, {"iz", "ir", "in"}, {"hz", "hr", "hn"}, {true, true, true}, {false, false, true}, {""}, true}},
  };
  return t;
}

// A cell translated: the IR op, its weights and attributes, and its carry.
struct Cell {
  const CellSpec* spec;
  std::string W, R;
  std::optional<std::string> B, RB;
  ir::Attrs attrs;
  int64_t features;
};

// The cell description at `cj`, read by a module whose input has `in` features. Its params are
// under params/<cell path>/<dense>/...: the cell's "name" is its Flax path, which depends on how
// the model was written (a cell passed to nn.RNN from outside, or made in setup, is adopted as
// "<rnn>/cell"; one made inline in a compact method is named by that method's module,
// "LSTMCell_0"); absent, the adopted path `adopted`.
Cell translate_cell(const Module& m, const JsonRef& cj, const std::string& adopted, int64_t in) {
  if (!cj.is_object()) cj.fail("expected a cell description {\"type\": \"LSTMCell\", \"features\": ...}");
  JsonRef type = cj["type"];
  auto it = cells().find(type.str());
  if (it == cells().end()) {
    std::vector<std::string> known;
    for (const auto& kv : cells()) known.push_back(kv.first);
    type.fail("unsupported cell \"" + type.str() + "\" (known: " + joined(known) + ")");
  }
  const CellSpec& spec = it->second;
  const std::string what = type.str();
  check_attributes(cj, spec.attributes, what, {"type", "name"});
  check_float32(cj);
  const std::string path = cj.str("name", adopted);
  if (path.empty()) cj["name"].fail("expected the cell's Flax path (\"RNN_0/cell\"), got an empty string");
  const int64_t h = positive(cj["features"]);
  Cell cell{&spec, "", "", std::nullopt, std::nullopt, {}, h};

  // The IR's LSTM and GRU gates are sigmoids and their candidate / output activations tanh.
  if (spec.gated) {
    if (auto g = cj.find("gate_fn"); g && g->str() != "nn.sigmoid")
      g->fail("only nn.sigmoid (Flax's default) is supported: the IR's " + spec.op + " gates are sigmoids, got \"" + g->str() + "\"");
    if (auto a = cj.find("activation_fn"); a && a->str() != "nn.tanh")
      a->fail("only nn.tanh (Flax's default) is supported: the IR's " + spec.op + " computes tanh, got \"" + a->str() + "\"");
    if (spec.op == "GRU") cell.attrs = attrs_of({{"linear_before_reset", int64_t(1)}});  // r multiplies hn(h), bias included
  } else {
    const std::string act = cj.str("activation_fn", "nn.tanh");
    if (act != "nn.tanh" && act != "nn.relu") cj["activation_fn"].fail("only nn.tanh (Flax's default) and nn.relu are supported, got \"" + act + "\"");
    cell.attrs = attrs_of({{"activation", act.substr(3)}});
  }
  // Without an initial carry the RNN starts from carry_init (zeros_init(), Flax's default).
  if (auto ci = cj.find("carry_init"); ci && ci->str() != "zeros")
    ci->fail("only \"zeros\" (Flax's zeros_init()) is supported, got \"" + ci->str() + "\"");

  const size_t gates = spec.input_dense.size();
  Decoder& d = m.decoder();
  const std::string source = "params/" + path;
  // The cell's param tensors: f32, present, of Flax's shape.
  const auto find = [&](const std::string& dense, const std::string& leaf) -> const Tensor* {
    const Tensor* t = d.find_tensor(source + "/" + dense + "/" + leaf);
    if (t && t->dtype() != DType::f32)
      throw Error(json_path_member("tensors", source + "/" + dense + "/" + leaf) + ".dtype", std::string("expected f32, got ") + dtype_name(t->dtype()));
    return t;
  };
  const auto param = [&](const std::string& dense, const std::string& leaf, const Shape& want, const std::string& layout,
                         const std::string& note) -> const Tensor& {
    const std::string name = source + "/" + dense + "/" + leaf;
    const Tensor* t = find(dense, leaf);
    if (!t)
      m.json().fail(m.json()["type"].str() + " \"" + m.name() + "\": missing param \"" + name + "\" of its " + what + " \"" + path +
                    "\" (no such tensor in the stream)");
    if (t->shape() != want)
      throw Error(json_path_member("tensors", name) + ".shape", "expected " + layout + " = " + shape_str(want) + note + ", got " + shape_str(t->shape()));
    return *t;
  };
  // A Dense's kernel [rows, h] (Flax's [in, features]).
  const auto kernel = [&](const std::string& dense, int64_t rows, const std::string& side) -> const Tensor& {
    return param(dense, "kernel", {rows, h}, "[" + side + ", features]", " (Flax's Dense layout)");
  };
  // Bias of a Dense: required where Flax creates one, an error where it does not.
  const auto bias = [&](const std::string& dense, bool has) -> const Tensor* {
    if (!has) {
      if (find(dense, "bias"))
        throw Error(json_path_member("tensors", source + "/" + dense + "/bias"),
                    "Flax's " + what + " creates no bias for its Dense \"" + dense + "\" (use_bias=False there)");
      return nullptr;
    }
    return &param(dense, "bias", {h}, "[features]", "");
  };

  // W [1, G·H, I] and R [1, G·H, H]: gate g's rows are its kernel transposed.
  Tensor w(DType::f32, {1, int64_t(gates) * h, in}), r(DType::f32, {1, int64_t(gates) * h, h});
  Tensor b(DType::f32, {1, int64_t(gates) * h}), rb(DType::f32, {1, int64_t(gates) * h});
  bool any_b = false, any_rb = false;
  for (size_t g = 0; g < gates; ++g) {
    const Tensor& ki = kernel(spec.input_dense[g], in, "in");
    const Tensor& kh = kernel(spec.hidden_dense[g], h, "features");
    for (int64_t j = 0; j < h; ++j) {
      for (int64_t i = 0; i < in; ++i) w.data<float>()[(g * h + j) * in + i] = ki.data<float>()[i * h + j];
      for (int64_t i = 0; i < h; ++i) r.data<float>()[(g * h + j) * h + i] = kh.data<float>()[i * h + j];
    }
    if (const Tensor* bi = bias(spec.input_dense[g], spec.input_bias[g])) {
      std::copy(bi->data<float>(), bi->data<float>() + h, b.data<float>() + g * h);
      any_b = true;
    }
    if (const Tensor* bh = bias(spec.hidden_dense[g], spec.hidden_bias[g])) {
      std::copy(bh->data<float>(), bh->data<float>() + h, rb.data<float>() + g * h);
      any_rb = true;
    }
  }
  // SimpleCell(residual=True): act(i(x) + h(carry) + carry) = act(i(x) + (Wh + I) carry).
  if (!spec.gated && cj.boolean("residual", false))
    for (int64_t j = 0; j < h; ++j) r.data<float>()[j * h + j] += 1.f;

  cell.W = d.derived(source, "W", std::move(w));
  cell.R = d.derived(source, "R", std::move(r));
  if (any_b) cell.B = d.derived(source, "B", std::move(b));
  if (any_rb) cell.RB = d.derived(source, "RB", std::move(rb));
  return cell;
}

// The sequence read by a recurrent module: x [N, T, F] ([T, N, F] time-major).
struct Sequence {
  std::string x;  // its IR value, Flax's layout
  int64_t batch, features;
  bool time_major;
};

Sequence sequence_of(const Module& m, bool time_major, const std::string& what) {
  const Shape& s = m.shape(0);
  if (s.size() != 3)
    m.json().fail(what + " needs a sequence [batch, time, features] (" + std::string(time_major ? "time-major: [time, batch, features]" : "time_major false") +
                  "), got " + shape_str(s) + " (several batch dims or feature axes are not supported)");
  return {m.last(0), time_major ? s[1] : s[0], s[2], time_major};
}

// Flax's initial carry leaves [N, H] (module inputs first .. first + count), as the IR's h0 and
// c0 [1, N, H].
struct Carry0 {
  std::string h0, c0;
};

Carry0 initial_carry(const Module& m, const Cell& cell, const Sequence& seq, size_t first, const std::string& node) {
  Carry0 out;
  if (m.arity() == 1) return out;  // carry_init: zeros
  for (size_t k = 0; k < cell.spec->carry.size(); ++k) {
    const size_t i = first + k;
    const std::string& leaf = cell.spec->carry[k];
    if (m.shape(i) != Shape{seq.batch, cell.features})
      m.json()["inputs"][i].fail("the initial carry" + (leaf.empty() ? std::string() : " leaf " + leaf) + " must be [batch, features] = " +
                                 shape_str({seq.batch, cell.features}) + ", got " + shape_str(m.shape(i)));
    const std::string ir = node + "/" + (leaf.empty() ? "h" : leaf) + "0";
    m.decoder().step(ir, "Reshape", {m.last(i)}, attrs_of({{"shape", Ints{1, -1, cell.features}}}));
    (leaf == "c" ? out.c0 : out.h0) = ir;
  }
  return out;
}

// One IR recurrent node `node` scanning the cell over the sequence; returns its outputs (y,
// h_n[, c_n]).
std::vector<std::string> scan(const Module& m, const Cell& cell, const Sequence& seq, const std::string& direction, const Carry0& c0,
                              const std::string& node) {
  std::vector<std::string> inputs = {seq.x, cell.W, cell.R, cell.B.value_or(""), cell.RB.value_or(""), c0.h0};
  if (cell.spec->op == "LSTM") inputs.push_back(c0.c0);
  while (inputs.back().empty()) inputs.pop_back();
  ir::Attrs a = cell.attrs;
  a.set("direction", direction);
  a.set("batch_first", int64_t(seq.time_major ? 0 : 1));
  return m.decoder().steps(node, cell.spec->op, inputs, a);
}

// The final carry's leaves as Flax values "<prefix>[/c|/h]" [N, H]: h_n / c_n [1, N, H] flattened.
void define_carry(const Module& m, const Cell& cell, const std::vector<std::string>& outs, const std::string& prefix) {
  for (const std::string& leaf : cell.spec->carry)
    m.decoder().define(leaf.empty() ? prefix : prefix + "/" + leaf, Layout::ChannelsLast, "Flatten", {outs.at(leaf == "c" ? 2 : 1)},
                       attrs_of({{"start", int64_t(0)}, {"end", int64_t(1)}}));
}

void check_carry_inputs(const Module& m, size_t want, const std::string& what) {
  if (m.arity() != 1 && m.arity() != 1 + want)
    m.json()["inputs"].fail(what + " reads the sequence and, optionally, the initial carry's " + std::to_string(want) +
                            " arrays (Flax's order), got " + std::to_string(m.arity()) + " inputs");
}

}  // namespace

std::vector<std::string> cell_types() {
  std::vector<std::string> out;
  for (const auto& kv : cells()) out.push_back(kv.first);
  return out;
}

// nn.RNN(cell, time_major, return_carry, reverse, keep_order): reverse processes the sequence
// from its end; without keep_order the outputs stay in processing order (flipped).
void translate_rnn(const Module& m) {
  const JsonRef& j = m.json();
  if (auto u = j.find("unroll")) positive(*u);  // scan unrolling: the same result
  const bool time_major = j.boolean("time_major", false), reverse = j.boolean("reverse", false);
  const bool keep_order = j.boolean("keep_order", false), return_carry = j.boolean("return_carry", false);
  const Sequence seq = sequence_of(m, time_major, "nn.RNN");
  const Cell cell = translate_cell(m, j["cell"], m.name() + "/cell", seq.features);
  check_carry_inputs(m, cell.spec->carry.size(), "nn.RNN");
  Decoder& d = m.decoder();
  d.translating(j, "flax:" + m.name() + " (RNN(" + j["cell"]["type"].str() + "))");
  const bool flip = reverse && !keep_order;
  const std::string node = flip ? m.name() + "/scan" : m.name();
  const std::vector<std::string> outs = scan(m, cell, seq, reverse ? "reverse" : "forward", initial_carry(m, cell, seq, 1, node), node);
  if (flip) {
    const int64_t time_axis = time_major ? 0 : 1;
    d.define(m.name(), Layout::ChannelsLast, "Slice", {outs[0]},
             attrs_of({{"starts", Ints{-1}}, {"ends", Ints{std::numeric_limits<int64_t>::min()}}, {"axes", Ints{time_axis}}, {"steps", Ints{-1}}}));
  } else {
    d.bind(m.name(), outs[0], Layout::ChannelsLast);
  }
  if (return_carry) define_carry(m, cell, outs, m.name() + ":carry");
}

// nn.Bidirectional(forward_rnn, backward_rnn, merge_fn, time_major, return_carry): forward_rnn
// with reverse=False, backward_rnn with reverse=True and keep_order=True (Bidirectional sets
// them at call time), merged by merge_fn. Two IR nodes, one per direction (each may be its own
// cell type and size, and each is a value with its own tap), then Concat or Add.
void translate_bidirectional(const Module& m) {
  const JsonRef& j = m.json();
  const bool time_major = j.boolean("time_major", false), return_carry = j.boolean("return_carry", false);
  const std::string merge = j.str("merge_fn", "concatenate");
  if (merge != "concatenate" && merge != "add")
    j["merge_fn"].fail("expected \"concatenate\" (Flax's default: forward then backward features) or \"add\" (jnp.add), got \"" + merge + "\"");
  const Sequence seq = sequence_of(m, time_major, "nn.Bidirectional");
  const std::vector<std::string> dirs = {"forward_rnn", "backward_rnn"};
  std::vector<Cell> cs;
  for (const std::string& dir : dirs) {
    const JsonRef r = j[dir];
    if (!r.is_object() || r["type"].str() != "RNN") r.fail("expected an nn.RNN {\"type\": \"RNN\", \"cell\": ...}");
    for (const std::string& key : r.keys())
      if (key == "time_major" || key == "reverse" || key == "keep_order" || key == "return_carry")
        r[key].fail("nn.Bidirectional sets its RNNs' " + key + " itself at call time; give time_major and return_carry on the Bidirectional");
    check_attributes(r, {"cell", "unroll"}, "the RNN of a Bidirectional", {"type"});
    if (auto u = r.find("unroll")) positive(*u);
    cs.push_back(translate_cell(m, r["cell"], m.name() + "/" + dir + "/cell", seq.features));
  }
  check_carry_inputs(m, cs[0].spec->carry.size() + cs[1].spec->carry.size(), "nn.Bidirectional");
  Decoder& d = m.decoder();
  std::vector<std::string> values;
  size_t first = 1;
  for (size_t k = 0; k < 2; ++k) {
    const std::string value = m.name() + "/" + dirs[k];
    d.translating(j[dirs[k]], "flax:" + value + " (RNN(" + j[dirs[k]]["cell"]["type"].str() + "))");
    const auto outs = scan(m, cs[k], seq, k == 0 ? "forward" : "reverse", initial_carry(m, cs[k], seq, first, value), value);
    first += cs[k].spec->carry.size();
    d.bind(value, outs[0], Layout::ChannelsLast);
    values.push_back(value);
    if (return_carry) define_carry(m, cs[k], outs, m.name() + ":carry/" + dirs[k]);
  }
  d.translating(j, "flax:" + m.name() + " (Bidirectional)");
  if (merge == "concatenate")
    m.emit(Layout::ChannelsLast, "Concat", values, attrs_of({{"axis", int64_t(-1)}}));
  else
    m.emit(Layout::ChannelsLast, "Add", values);
}

}  // namespace pb::jax
