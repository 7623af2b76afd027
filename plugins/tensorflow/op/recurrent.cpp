// Keras recurrent layers: SimpleRNN, LSTM, GRU and the Bidirectional wrapper, one IR RNN / LSTM /
// GRU node each (docs/planets/tensorflow.md, docs/ir.md "Recurrent ops"). Keras's facts, each
// converted here explicitly:
//   kernel [I, G·H], recurrent_kernel [H, G·H]  ->  W [D, G·H, I], R [D, G·H, H] (transposed copies)
//   gates: LSTM i, f, c, o = the IR's i, f, g, o; GRU z, r, h = the IR's z, r, n (Cell::keras_gate)
//   bias [G·H] -> B; GRU reset_after: bias [2, 3H], row 0 -> B, row 1 -> RB, linear_before_reset 1
//   go_backwards: direction reverse, and the sequence comes back in processing order (flipped)
//   return_sequences false: the last output, which is the final state h_n
//   return_state: the layer's outputs are [output, h(, c)], Bidirectional's [output, fwd h(, c), bwd h(, c)]
//   initial states: the layer's extra inputs, [N, H] each, Keras's order (fwd h, c, bwd h, c)
#include <cstring>
#include <limits>

#include "../layer.h"

namespace pb::tensorflow {

namespace {

struct Cell {
  std::string op;                 // the IR op
  int64_t gates;                  // G
  std::vector<int64_t> keras_gate;  // IR gate g is Keras's gate keras_gate[g]
  std::vector<std::string> states;  // the cell's states, in Keras's order
};

// Keras LSTM gates i, f, c (cell candidate), o are the IR's i, f, g, o; Keras GRU gates z (update),
// r (reset), h (candidate) the IR's z, r, n: both orders coincide (docs/ir.md).
const std::map<std::string, Cell>& cells() {
  static const std::map<std::string, Cell> t = {
      {"SimpleRNN", {"RNN", 1, {0}, {"h"}}},
      {"LSTM", {"LSTM", 4, {0, 1, 2, 3}, {"h", "c"}}},
      {"GRU", {"GRU", 3, {0, 1, 2}, {"h"}}},
  };
  return t;
}

// One recurrent layer's config, checked.
struct Recurrent {
  const Cell* cell = nullptr;
  int64_t units = 0;
  bool bias = true, sequences = false, state = false, backwards = false, reset_after = false;
  std::string activation;  // SimpleRNN: tanh | relu
};

bool flag(const JsonRef& c, const std::string& key) {
  auto v = c.find(key);
  return v && v->boolean();
}

Recurrent parse(const JsonRef& c, const std::string& cls) {
  Recurrent r;
  r.cell = &cells().at(cls);
  const JsonRef units = c["units"];
  r.units = units.i64();
  if (r.units < 1) units.fail("expected a positive number of units, got " + units.raw().dump());
  // The IR's RNN computes tanh or relu; its LSTM and GRU tanh for the candidate and the cell output.
  const JsonRef act = c["activation"];
  r.activation = act.is_string() ? act.str() : "";
  const bool simple = cls == "SimpleRNN";
  if (simple ? (r.activation != "tanh" && r.activation != "relu") : r.activation != "tanh")
    act.fail("activation " + act.raw().dump() + " is not supported by " + cls + " (" + (simple ? "tanh or relu" : "tanh only") +
             ": what the IR's " + r.cell->op + " computes)");
  if (!simple) {
    const JsonRef ra = c["recurrent_activation"];
    const std::string name = ra.is_string() ? ra.str() : ra.raw().dump();
    if (name == "hardSigmoid" || name == "hard_sigmoid")
      ra.fail("recurrent_activation \"" + name + "\" is not supported: the IR's " + r.cell->op +
              " computes its gates with sigmoid, which is all oneDNN's cells can (tfjs's default is hardSigmoid: set "
              "recurrentActivation 'sigmoid')");
    if (name != "sigmoid") ra.fail("recurrent_activation " + ra.raw().dump() + " is not supported (only sigmoid)");
  }
  r.bias = c.boolean("use_bias", true);
  r.sequences = flag(c, "return_sequences");
  r.state = flag(c, "return_state");
  r.backwards = flag(c, "go_backwards");
  refuse_unless(c, "stateful", !flag(c, "stateful"), "stateful true is not supported (its state would carry over between batches)");
  refuse_unless(c, "time_major", !flag(c, "time_major"), "time_major true is not supported (Keras's default, batch-major [N, T, F], is)");
  // reset_after: Keras 2/3 default true, tfjs only false; written by every writer, never guessed.
  if (cls == "GRU") r.reset_after = c["reset_after"].boolean();
  return r;
}

// Keras's [rows, gates·H] kernel of one direction -> the IR's [gates·H, rows] slice at `dst`, the
// gates in the IR's order: dst[(g·H + j)·rows + i] = k[i][keras_gate[g]·H + j].
void put_transposed(float* dst, const Tensor& k, const Cell& cell, int64_t h) {
  const Tensor f = k.dtype() == DType::f32 ? k : k.cast(DType::f32);
  const int64_t rows = f.shape()[0], cols = cell.gates * h;
  const float* src = f.data<float>();
  for (int64_t g = 0; g < cell.gates; ++g)
    for (int64_t j = 0; j < h; ++j)
      for (int64_t i = 0; i < rows; ++i) dst[(g * h + j) * rows + i] = src[i * cols + cell.keras_gate[g] * h + j];
}

// One row of Keras biases (row `row` of a [2, gates·H] bias, or the [gates·H] one) in the IR's gate order.
void put_bias(float* dst, const Tensor& b, int64_t row, const Cell& cell, int64_t h) {
  const Tensor f = b.dtype() == DType::f32 ? b : b.cast(DType::f32);
  const float* src = f.data<float>() + row * cell.gates * h;
  for (int64_t g = 0; g < cell.gates; ++g) std::memcpy(dst + g * h, src + cell.keras_gate[g] * h, size_t(h) * sizeof(float));
}

// What the merged outputs of a Bidirectional are.
enum class Merge { Concat, Sum, Ave, Mul, None };

Merge parse_merge(const JsonRef& c) {
  if (!c.raw().contains("merge_mode")) c["merge_mode"];  // required: fails naming it
  if (c.raw()["merge_mode"].is_null()) return Merge::None;
  const JsonRef m = c["merge_mode"];
  const std::string s = m.str();
  if (s == "concat") return Merge::Concat;
  if (s == "sum") return Merge::Sum;
  if (s == "ave") return Merge::Ave;
  if (s == "mul") return Merge::Mul;
  m.fail("expected merge_mode \"concat\", \"sum\", \"ave\", \"mul\" or null, got \"" + s + "\"");
}

// The layer (D = directions.size()): weights, state inputs, the IR node and the Keras outputs.
// `directions` are the weight-name prefixes ("" for a plain layer; "forward_lstm/", "backward_lstm/").
void emit_recurrent(const Layer& L, const Recurrent& r, const std::vector<std::string>& directions, Merge merge) {
  Decoder& d = L.decoder();
  const Cell& cell = *r.cell;
  const bool bi = directions.size() == 2;
  const int64_t D = int64_t(directions.size()), H = r.units, GH = cell.gates * H;
  const size_t n_states = cell.states.size();

  // Inputs: the sequence, then (optionally) every initial state.
  if (L.arity() != 1 && L.arity() != 1 + n_states * size_t(D))
    L.fail(L.class_name() + " \"" + L.name() + "\" takes the sequence and, optionally, its " + std::to_string(n_states * size_t(D)) +
           " initial state(s); got " + std::to_string(L.arity()) + " inputs");
  const Shape& xs = L.shape(0);
  if (xs.size() != 3 || !is_float(L.type(0).dtype))
    L.fail(L.class_name() + " \"" + L.name() + "\" needs a float input [batch, steps, features], got " + dtype_name(L.type(0).dtype) + " " +
           shape_str(xs));
  const int64_t I = xs[2];
  for (size_t i = 1; i < L.arity(); ++i) {
    const ir::TensorType& t = L.type(i);
    if (t.shape.size() != 2 || !is_float(t.dtype) || t.shape[0] != xs[0] || t.shape[1] != H)
      L.fail("initial state " + std::to_string(i - 1) + " of " + L.class_name() + " \"" + L.name() + "\" must be a float [batch, units] = [" +
             std::to_string(xs[0]) + ", " + std::to_string(H) + "], got " + dtype_name(t.dtype) + " " + shape_str(t.shape));
  }

  // Weights, per direction: Keras's kernel [I, G·H], recurrent_kernel [H, G·H], bias [G·H] (or [2, 3H]).
  Tensor W(DType::f32, {D, GH, I}), R(DType::f32, {D, GH, H}), B(DType::f32, {D, GH}), RB(DType::f32, {D, GH});
  for (int64_t k = 0; k < D; ++k) {
    const std::string& p = directions[size_t(k)];
    put_transposed(W.data<float>() + k * GH * I, L.checked(p + "kernel", {I, GH}, "[input, gates·units]"), cell, H);
    put_transposed(R.data<float>() + k * GH * H, L.checked(p + "recurrent_kernel", {H, GH}, "[units, gates·units]"), cell, H);
    if (!r.bias) continue;
    if (r.reset_after) {
      const Tensor& b = L.checked(p + "bias", {2, GH}, "[2, 3·units] (reset_after: input bias, recurrent bias)");
      put_bias(B.data<float>() + k * GH, b, 0, cell, H);
      put_bias(RB.data<float>() + k * GH, b, 1, cell, H);
    } else {
      put_bias(B.data<float>() + k * GH, L.checked(p + "bias", {GH}, "[gates·units]"), 0, cell, H);
    }
  }
  // One direction: "<tensor>@W" etc.; two: the layer's constants "<layer>.W" (made of both directions' tensors).
  auto named = [&](const std::string& short_name, const std::string& role, Tensor t) {
    return bi ? L.constant(role, std::move(t)) : d.derived(L.weight_ref(short_name).str(), role, std::move(t));
  };
  std::vector<std::string> inputs = {L.x(Layout::ChannelsLast), named("kernel", "W", std::move(W)), named("recurrent_kernel", "R", std::move(R))};
  inputs.push_back(r.bias ? named("bias", "B", std::move(B)) : "");
  inputs.push_back(r.bias && r.reset_after ? named("bias", "RB", std::move(RB)) : "");

  // Initial states: Keras's [N, H] per direction -> the IR's [D, N, H].
  if (L.arity() > 1) {
    const std::vector<std::string> given = L.xs(Layout::ChannelsLast);
    for (size_t s = 0; s < n_states; ++s) {
      const std::string role = cell.states[s] + "0";
      std::vector<std::string> parts;
      for (int64_t k = 0; k < D; ++k) {
        const std::string step = bi ? role + (k == 0 ? "_fwd" : "_bwd") : role;
        parts.push_back(L.emit_step(step, "Reshape", {given[1 + size_t(k) * n_states + s]}, attrs_of({{"shape", Ints{1, -1, H}}})));
      }
      inputs.push_back(bi ? L.emit_step(role, "Concat", parts, attrs_of({{"axis", int64_t(0)}})) : parts[0]);
    }
  }
  while (!inputs.empty() && inputs.back().empty()) inputs.pop_back();

  // The node. Its y is the layer's output 0 itself when Keras returns the sequence as the IR
  // lays it out (forward; concat or sum of two directions): then the node carries the layer's name.
  const bool direct = r.sequences && (bi ? (merge == Merge::Concat || merge == Merge::Sum) : !r.backwards);
  ir::Attrs a = attrs_of({{"direction", std::string(bi ? "bidirectional" : r.backwards ? "reverse" : "forward")},
                          {"merge", std::string(merge == Merge::Sum || merge == Merge::Ave ? "sum" : "concat")},
                          {"batch_first", int64_t(1)}});
  if (cell.op == "RNN") a.set("activation", r.activation);
  if (cell.op == "GRU") a.set("linear_before_reset", int64_t(r.reset_after));
  const std::vector<std::string> node = d.steps(direct ? L.out() : L.out() + "/rnn", cell.op, inputs, std::move(a));
  const std::string& y = node[0];

  // The outputs, in Keras's order: the merged output(s), then the final states.
  const ir::Attrs flatten = attrs_of({{"start", int64_t(0)}, {"end", int64_t(1)}});  // [1, N, H] -> [N, H]
  const size_t n_main = merge == Merge::None ? 2 : 1;
  // State s of direction k as the IR's [1, N, H]: h_n / c_n itself, or its slice of two directions.
  std::map<std::pair<int64_t, size_t>, std::string> slices;
  auto state_of = [&](int64_t k, size_t s) -> std::string {
    if (!bi) return node[1 + s];
    auto it = slices.find({k, s});
    if (it != slices.end()) return it->second;
    const std::string step = std::string(k == 0 ? "fwd_" : "bwd_") + cell.states[s] + "_n";
    return slices[{k, s}] =
               L.emit_step(step, "Slice", {node[1 + s]}, attrs_of({{"starts", Ints{k}}, {"ends", Ints{k + 1}}, {"axes", Ints{0}}}));
  };
  // The final states as [N, H] outputs of their own.
  if (r.state)
    for (int64_t k = 0; k < D; ++k)
      for (size_t s = 0; s < n_states; ++s) L.emit_output(n_main + size_t(k) * n_states + s, "Flatten", {state_of(k, s)}, flatten);

  if (direct) return L.bind_output(0, y);
  if (!bi) {
    if (r.sequences)  // go_backwards: Keras returns the steps in processing order
      return L.emit_output(0, "Slice", {y},
                           attrs_of({{"starts", Ints{-1}}, {"ends", Ints{std::numeric_limits<int64_t>::min()}}, {"axes", Ints{1}}, {"steps", Ints{-1}}}));
    return L.emit_output(0, "Flatten", {node[1]}, flatten);  // the last output is the final state
  }
  // Two directions, merged otherwise than the IR merges them: each direction's output is its half
  // of the concatenated sequence, or (no sequence) its final h.
  auto part = [&](int64_t k) -> std::pair<std::string, ir::Attrs> {
    if (r.sequences) return {y, attrs_of({{"starts", Ints{k * H}}, {"ends", Ints{(k + 1) * H}}, {"axes", Ints{-1}}})};
    return {state_of(k, 0), flatten};
  };
  const std::string part_op = r.sequences ? "Slice" : "Flatten";
  if (merge == Merge::None) {
    for (int64_t k = 0; k < 2; ++k) {
      auto [from, attrs] = part(k);
      L.emit_output(size_t(k), part_op, {from}, attrs);
    }
    return;
  }
  if (merge == Merge::Ave && r.sequences)  // (fwd + bwd)·0.5: the IR's sum, then an exact halving
    return L.emit_output(0, "Activation", {y}, attrs_of({{"function", std::string("linear")}, {"alpha", 0.5}, {"beta", 0.0}}));
  std::string dirs[2];
  for (int64_t k = 0; k < 2; ++k) {
    auto [from, attrs] = part(k);
    dirs[k] = L.emit_step(k == 0 ? "fwd" : "bwd", part_op, {from}, attrs);
  }
  switch (merge) {
    case Merge::Concat: return L.emit_output(0, "Concat", {dirs[0], dirs[1]}, attrs_of({{"axis", int64_t(-1)}}));
    case Merge::Sum: return L.emit_output(0, "Add", {dirs[0], dirs[1]});
    case Merge::Mul: return L.emit_output(0, "Mul", {dirs[0], dirs[1]});
    case Merge::Ave: {
      const std::string sum = L.emit_step("sum", "Add", {dirs[0], dirs[1]});
      return L.emit_output(0, "Activation", {sum}, attrs_of({{"function", std::string("linear")}, {"alpha", 0.5}, {"beta", 0.0}}));
    }
    case Merge::None: break;
  }
}

void translate_recurrent(const Layer& L) {
  const Recurrent r = parse(L.config(), L.class_name());
  emit_recurrent(L, r, {""}, Merge::Concat);
}

std::string without_prefix(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0 ? s.substr(prefix.size()) : s;
}

// Bidirectional(layer, merge_mode, backward_layer?): the wrapped layer runs forwards, a copy of it
// with go_backwards flipped backwards (Keras 3, and Keras 2 when given, write that copy as
// backward_layer: it must be the same layer but for its name and go_backwards).
void translate_bidirectional(const Layer& L) {
  const JsonRef c = L.config();
  const JsonRef inner = c["layer"];
  const JsonRef cls = inner["class_name"];
  if (!cells().count(cls.str()))
    cls.fail("Bidirectional over \"" + cls.str() + "\" is not supported (only SimpleRNN, LSTM and GRU)");
  const JsonRef ic = inner["config"];
  check_attributes(ic, layer_table().at(cls.str()).attributes, cls.str(), informational_keys());
  check_float32(ic);
  const Recurrent r = parse(ic, cls.str());
  refuse_unless(ic, "go_backwards", !r.backwards,
                "a Bidirectional over a go_backwards layer is not supported (its \"forward\" direction would run backwards)");
  const Merge merge = parse_merge(c);
  // Weight names: tfjs and Keras 2 prefix the layer's name with forward_ / backward_; Keras 3 first
  // strips a prefix the name already has (its config holds the forward copy, "forward_lstm", and
  // the backward copy as backward_layer).
  const std::string name = ic["name"].str();
  const std::string base = L.model().keras3() ? without_prefix(name, "forward_") : name;
  std::string backward = "backward_" + base;
  if (auto bl = c.find("backward_layer")) {
    const JsonRef bcls = (*bl)["class_name"];
    if (bcls.str() != cls.str()) bcls.fail("backward_layer is a " + bcls.str() + ", the layer a " + cls.str() + ": not supported");
    const JsonRef bc = (*bl)["config"];
    check_attributes(bc, layer_table().at(cls.str()).attributes, cls.str(), informational_keys());
    refuse_unless(bc, "go_backwards", flag(bc, "go_backwards"), "the backward_layer must have go_backwards true");
    for (const std::string& k : bc.keys()) {
      if (k == "name" || k == "go_backwards") continue;
      if (!ic.raw().contains(k) || ic.raw()[k] != bc.raw()[k])
        bc[k].fail("differs from the layer's " + k + ": a backward layer unlike the forward one is not supported");
    }
    for (const std::string& k : ic.keys())
      if (k != "name" && k != "go_backwards" && !bc.raw().contains(k))
        bc.fail("has no \"" + k + "\" (the layer has): a backward layer unlike the forward one is not supported");
    // Keras 3 keeps a given backward layer's name; Keras 2 prefixes it with backward_ too.
    backward = L.model().keras3() ? bc["name"].str() : "backward_" + bc["name"].str();
  }
  emit_recurrent(L, r, {"forward_" + base + "/", backward + "/"}, merge);
}

// Keys every recurrent layer understands: shape and outputs, what training alone uses (dropout,
// unroll, initialisers of the recurrent kernel, Keras 3's dropout seed), masking (no mask reaches
// a layer here: mask_zero and Masking are refused) and Keras 2's time_major (refused when true).
std::vector<std::string> recurrent_keys(std::vector<std::string> extra) {
  std::vector<std::string> k = {"units", "activation", "use_bias", "return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                                "time_major", "dropout", "recurrent_dropout", "seed", "zero_output_for_mask", "recurrent_initializer",
                                "recurrent_regularizer", "recurrent_constraint"};
  k.insert(k.end(), extra.begin(), extra.end());
  return k;
}

}  // namespace

// arity 0: the sequence, then optionally the initial states (checked by the translator).
KerasTranslator simple_rnn() { return {recurrent_keys({}), 0, translate_recurrent}; }
// implementation (1 or 2) only chooses how Keras batches the products; unit_forget_bias initialises.
KerasTranslator lstm() { return {recurrent_keys({"recurrent_activation", "implementation", "unit_forget_bias"}), 0, translate_recurrent}; }
KerasTranslator gru() { return {recurrent_keys({"recurrent_activation", "implementation", "reset_after"}), 0, translate_recurrent}; }
KerasTranslator bidirectional() { return {{"layer", "merge_mode", "backward_layer"}, 0, translate_bidirectional}; }

}  // namespace pb::tensorflow
