// nn.RNN (tanh / relu), nn.LSTM and nn.GRU -> one IR RNN / LSTM / GRU node per layer (a chain
// for num_layers > 1), and torch.nn.utils.rnn's packed sequences, refused. PyTorch's facts,
// each converted here explicitly (docs/ir.md "Recurrent ops", docs/planets/pytorch.md):
// - parameters of layer k, direction suffix "" (forward) or "_reverse": weight_ih_l{k}
//   [G·H, I_k], weight_hh_l{k} [G·H, H], bias_ih_l{k} and bias_hh_l{k} [G·H] (neither with
//   bias=False); I_0 = input_size, I_k = D·H (the previous layer's directions concatenated);
// - the gate blocks along those rows: LSTM i, f, g, o (the IR's own order, used as is); GRU
//   r, z, n, whose first two blocks swap into the IR's z, r, n; RNN one gate;
// - GRU: n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), the IR's linear_before_reset = 1;
// - bias_ih is the IR's B, bias_hh its RB (kept apart: the kernel folds what it may);
// - outputs (y, h_n), an LSTM's (y, (h_n, c_n)): y is the last layer's sequence [N, T, D·H]
//   (batch_first) or [T, N, D·H], forward features first; h_n, c_n are [L·D, N, H] with row
//   k·D + d for layer k, direction d; the initial state hx (h0, an LSTM's (h0, c0)) has that
//   layout too, zeros when absent;
// - dropout acts between layers in training only.
#include <cstring>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

struct Cell {
  std::string op;               // the IR op
  std::vector<int64_t> order;   // IR gate block g is torch's block order[g]
  std::string reordered;        // the transform naming a weight whose blocks move ("" when none do)
  bool lstm = false;
};

const Cell kRnn{"RNN", {0}, "", false};
const Cell kLstm{"LSTM", {0, 1, 2, 3}, "", true};  // i, f, g, o: the IR's order
const Cell kGru{"GRU", {1, 0, 2}, "zrn", false};  // torch r, z, n -> the IR's z, r, n

const char* kDirections[] = {"", "_reverse"};

// torch's per-direction tensors [G·H, cols...] stacked into [D, G·H, cols...], each direction's
// gate blocks in the IR's order (f32; a double rounds once, here).
Tensor stacked_gates(const std::vector<const Tensor*>& dirs, const std::vector<int64_t>& order) {
  Shape shape = dirs[0]->shape();
  shape.insert(shape.begin(), static_cast<int64_t>(dirs.size()));
  Tensor out(DType::f32, shape);
  const int64_t per_dir = dirs[0]->numel(), block = per_dir / static_cast<int64_t>(order.size());
  float* o = out.data<float>();
  for (size_t d = 0; d < dirs.size(); ++d) {
    const Tensor f = dirs[d]->dtype() == DType::f32 ? *dirs[d] : dirs[d]->cast(DType::f32);
    for (size_t g = 0; g < order.size(); ++g)
      std::memcpy(o + int64_t(d) * per_dir + int64_t(g) * block, f.data<float>() + order[g] * block, size_t(block) * sizeof(float));
  }
  return out;
}

class Recurrent {
 public:
  Recurrent(const FxNode& n, const Cell& cell) : n_(n), d_(n.decoder()), cell_(cell), type_(n.module()["type"].str()) {}

  void translate() {
    check_mode();
    const JsonRef attrs = n_.attrs();
    if (attrs.i64("proj_size", 0) != 0)
      attrs["proj_size"].fail("an LSTM with proj_size projects h through weight_hr to proj_size features; the IR's LSTM has no projection: not supported");
    hidden_ = n_.attr("hidden_size").i64();
    layers_ = n_.attr("num_layers").i64();
    if (layers_ < 1) n_.attr("num_layers").fail("num_layers must be at least 1");
    dirs_ = n_.attr("bidirectional").boolean() ? 2 : 1;
    bias_ = n_.attr("bias").boolean();
    batch_first_ = n_.attr("batch_first").boolean();
    if (n_.module().boolean("training", false) && layers_ > 1 && n_.attr("dropout").f64() > 0)
      n_.module()["training"].fail(type_ + " in training mode drops out between layers at random (dropout " +
                                   std::to_string(n_.attr("dropout").f64()) + "); capture the model in eval()");
    input();
    initial_state();

    std::string x = x_;
    std::vector<std::string> hs, cs;
    for (int64_t k = 0; k < layers_; ++k) {
      const std::string layer = n_.name() + "/l" + std::to_string(k);
      const int64_t in = k == 0 ? n_.attr("input_size").i64() : dirs_ * hidden_;
      const int64_t rows = int64_t(cell_.order.size()) * hidden_;
      std::vector<std::string> inputs = {x, weight(layer, k, "weight_ih", "W", {rows, in}), weight(layer, k, "weight_hh", "R", {rows, hidden_}),
                                         bias_ ? weight(layer, k, "bias_ih", "B", {rows}) : "",
                                         bias_ ? weight(layer, k, "bias_hh", "RB", {rows}) : "", state_of(h0_, "h0", k)};
      if (cell_.lstm) inputs.push_back(state_of(c0_, "c0", k));
      while (inputs.back().empty()) inputs.pop_back();
      ir::Attrs a = attrs_of({{"direction", std::string(dirs_ == 2 ? "bidirectional" : "forward")},
                              {"merge", std::string("concat")},
                              {"batch_first", int64_t(batch_first_)}});
      if (cell_.op == "RNN") a.set("activation", n_.attr("nonlinearity").str());
      if (cell_.op == "GRU") a.set("linear_before_reset", int64_t(1));
      const std::vector<std::string> outs = d_.steps(layer, cell_.op, inputs, a);
      x = outs[0];
      hs.push_back(outs[1]);
      if (cell_.lstm) cs.push_back(outs[2]);
    }
    const FxTuple y{x, {}}, h_n{final_states(hs, "h_n"), {}};
    n_.define_tuple(cell_.lstm ? FxTuple{"", {y, FxTuple{"", {h_n, FxTuple{final_states(cs, "c_n"), {}}}}}} : FxTuple{"", {y, h_n}});
  }

 private:
  // `mode` is what torch dispatches on: it must be the module type's (and, for RNN, agree with
  // its nonlinearity).
  void check_mode() {
    std::string want = cell_.op;
    if (cell_.op == "RNN") {
      const JsonRef nl = n_.attr("nonlinearity");
      if (nl.str() != "tanh" && nl.str() != "relu") nl.fail("unknown RNN nonlinearity \"" + nl.str() + "\" (expected \"tanh\" or \"relu\")");
      want = nl.str() == "tanh" ? "RNN_TANH" : "RNN_RELU";
    }
    const JsonRef mode = n_.attr("mode");
    if (mode.str() != want) mode.fail(type_ + " with mode \"" + mode.str() + "\" (expected \"" + want + "\")");
  }

  void input() {
    const std::string v = n_.value_arg(0);
    const Shape& s = d_.type(v).shape;
    if (s.size() != 3)
      n_.fail(type_ + " on an input of rank " + std::to_string(s.size()) + ": only a batch of sequences " +
              (batch_first_ ? "[N, T, input_size]" : "[T, N, input_size]") + " is supported (torch's unbatched [T, input_size] is not)");
    if (s[2] != n_.attr("input_size").i64())
      n_.fail(type_ + " with input_size " + std::to_string(n_.attr("input_size").i64()) + " called on " + shape_str(s));
    x_ = d_.planet_form(v);
    batch_ = batch_first_ ? s[0] : s[1];
  }

  // hx: h0 (RNN, GRU) or the tuple (h0, c0) (LSTM), each [L·D, N, H].
  void initial_state() {
    auto hx = n_.arg(1, "hx");
    if (!hx) return;
    if (cell_.lstm) {
      const FxTuple t = n_.tuple_arg(*hx);
      if (t.items.size() != 2 || t.items[0].is_tuple() || t.items[1].is_tuple()) hx->fail("an LSTM's hx must be a tuple (h0, c0) of two tensors");
      h0_ = t.items[0].value;
      c0_ = t.items[1].value;
    } else {
      h0_ = d_.planet_form(n_.node_ref(*hx));
    }
    const Shape want = {layers_ * dirs_, batch_, hidden_};
    for (const std::string& s : {h0_, c0_})
      if (!s.empty() && d_.ir_type(s).shape != want)
        hx->fail(type_ + "'s initial state must be [num_layers·directions, N, hidden_size] = " + shape_str(want) + ", got " +
                 shape_str(d_.ir_type(s).shape));
  }

  // Layer k's rows of an initial state: the state itself for one layer (no copy), else a Slice.
  std::string state_of(const std::string& state, const std::string& what, int64_t k) const {
    if (state.empty() || layers_ == 1) return state;
    return n_.step(what + "_l" + std::to_string(k), "Slice", {state},
                   attrs_of({{"starts", Ints{k * dirs_}}, {"ends", Ints{(k + 1) * dirs_}}, {"axes", Ints{0}}}));
  }

  // The module's h_n / c_n [L·D, N, H]: the layers' own, concatenated layer after layer.
  std::string final_states(const std::vector<std::string>& per_layer, const std::string& what) const {
    if (per_layer.size() == 1) return per_layer[0];
    return n_.step(what, "Concat", per_layer, attrs_of({{"axis", int64_t(0)}}));
  }

  // The stream tensor of torch parameter `key`, its shape checked.
  const Tensor& param(const std::string& key, const Shape& want) const {
    const JsonRef params = n_.module()["params"];
    auto p = params.find(key);
    if (!p) params.fail(type_ + " has no \"" + key + "\"");
    const Tensor& t = d_.tensor(p->str(), p->path());
    if (!is_float(t.dtype())) p->fail(std::string("expected a float tensor, got ") + dtype_name(t.dtype()));
    if (t.shape() != want) p->fail("expected shape " + shape_str(want) + ", got " + shape_str(t.shape()));
    return t;
  }

  // The IR weight `role` (W, R, B, RB) of layer k from torch's `param` of each direction:
  // [D, G·H, cols...] with the gates in the IR's order. One direction whose gates stay in place
  // is the stream tensor itself, reshaped ("<tensor>@dir": no copy); one whose gates move is
  // "<tensor>@<order>" (GRU: "@zrn"); two directions are stacked into the constant
  // "<layer>.<role>".
  std::string weight(const std::string& layer, int64_t k, const std::string& name, const std::string& role, const Shape& shape) const {
    std::vector<const Tensor*> dirs;
    std::string first;
    for (int64_t dir = 0; dir < dirs_; ++dir) {
      const std::string key = name + "_l" + std::to_string(k) + kDirections[dir];
      dirs.push_back(&param(key, shape));
      if (dir == 0) first = n_.module()["params"][key].str();
    }
    if (dirs_ == 2) return d_.constant(layer, role, stacked_gates(dirs, cell_.order));
    if (!cell_.reordered.empty()) return d_.derived(first, cell_.reordered, stacked_gates(dirs, cell_.order));
    Shape with_dir = shape;
    with_dir.insert(with_dir.begin(), 1);
    return d_.derived(first, "dir", dirs[0]->reshaped(with_dir));
  }

  const FxNode& n_;
  Decoder& d_;
  const Cell& cell_;
  const std::string type_;
  int64_t hidden_ = 0, layers_ = 0, dirs_ = 1, batch_ = 0;
  bool bias_ = true, batch_first_ = false;
  std::string x_, h0_, c0_;
};

}  // namespace

void translate_rnn(const FxNode& n) { Recurrent(n, kRnn).translate(); }
void translate_lstm(const FxNode& n) { Recurrent(n, kLstm).translate(); }
void translate_gru(const FxNode& n) { Recurrent(n, kGru).translate(); }

// pack_padded_sequence, pack_sequence, pad_packed_sequence: the capture records them as
// call_function nodes (traced into, they fail inside torch).
void translate_packed_sequence(const FxNode& n) {
  n.fail("packed sequences (" + n.json()["target"].str() +
         ") are not supported: the IR's recurrent ops run every sequence of the batch over all its steps; pass the padded "
         "batch to the recurrent module itself (outputs past a sequence's length then differ from torch's packed ones)");
}

}  // namespace pb::pytorch
