// flax.linen.Einsum, jnp.einsum and jnp.matmul (the `@` operator): two-operand contractions as
// the IR's MatMul between Transposes and Reshapes.
#include <algorithm>
#include <cctype>
#include <map>
#include <numeric>

#include "../module.h"

namespace pb::jax {

namespace {

// One operand of a contraction: an IR value (a module input) or a stream tensor (Einsum's kernel).
struct Operand {
  std::string ir;             // the IR value; empty for a tensor
  Shape shape;                // captured sizes
  std::vector<bool> open;     // dims the graph keeps open: a value's dim 0, the batch
  const Tensor* tensor = nullptr;
  std::string tensor_name;    // the stream tensor's name
};

Operand value_operand(const Module& m, size_t i) {
  Operand o;
  o.ir = m.last(i);
  o.shape = m.shape(i);
  // Every value's dim 0 is the batch the graph keeps open (the dialect's convention).
  o.open.assign(o.shape.size(), false);
  if (!o.open.empty()) o.open[0] = true;
  return o;
}

// The equation, parsed and checked against the operands' ranks and sizes.
struct Equation {
  std::string a, b, out;
};

// jnp.einsum / opt_einsum syntax without ellipsis: "ab,bc->ac"; without "->" (numpy's implicit
// mode, jnp.einsum only) the output is every index used once, in alphabetical order.
Equation parse_equation(const JsonRef& where, const std::string& text, bool explicit_only) {
  std::string eq;
  for (char c : text)
    if (c != ' ') eq.push_back(c);
  const std::string quoted = "\"" + text + "\"";
  if (eq.find('.') != std::string::npos)
    where.fail("einsum " + quoted + ": ellipsis (...) is not supported; name every axis with a letter");
  const size_t arrow = eq.find("->");
  if (arrow == std::string::npos && explicit_only) where.fail("einsum " + quoted + ": the equation must be explicit and include \"->\" (as Flax's Einsum requires)");
  const std::string ins = eq.substr(0, arrow);
  const size_t comma = ins.find(',');
  if (comma == std::string::npos || ins.find(',', comma + 1) != std::string::npos)
    where.fail("einsum " + quoted + ": expected exactly two operands (one comma)");
  Equation e{ins.substr(0, comma), ins.substr(comma + 1), ""};
  auto letters = [&](const std::string& s, const std::string& what) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (!std::isalpha(static_cast<unsigned char>(s[i])))
        where.fail("einsum " + quoted + ": unexpected character '" + std::string(1, s[i]) + "' in the " + what + " (indices are letters)");
      if (s.find(s[i]) != i)
        where.fail("einsum " + quoted + ": index '" + std::string(1, s[i]) + "' repeats in the " + what + " \"" + s +
                   "\" (a trace or diagonal): not supported");
    }
  };
  letters(e.a, "first operand");
  letters(e.b, "second operand");
  if (arrow != std::string::npos) {
    e.out = eq.substr(arrow + 2);
    letters(e.out, "output");
    for (char c : e.out)
      if (e.a.find(c) == std::string::npos && e.b.find(c) == std::string::npos)
        where.fail("einsum " + quoted + ": output index '" + std::string(1, c) + "' is in neither operand");
  } else {
    std::string all = e.a + e.b;
    for (char c : all)
      if (std::count(all.begin(), all.end(), c) == 1) e.out.push_back(c);
    std::sort(e.out.begin(), e.out.end());
  }
  for (const std::string* s : {&e.a, &e.b}) {
    const std::string& other = s == &e.a ? e.b : e.a;
    for (char c : *s)
      if (other.find(c) == std::string::npos && e.out.find(c) == std::string::npos)
        where.fail("einsum " + quoted + ": index '" + std::string(1, c) + "' is summed within one operand only: not supported");
  }
  return e;
}

// The node a translation ends with, emitted by the caller as the module's output or a step.
struct Final {
  std::string op;
  std::vector<std::string> inputs;
  ir::Attrs attrs;
};

// A Reshape target merging `in` (letters, one per dim) into `slots` (groups of letters; an empty
// group is a dim of 1): 0 keeps a dim that stays where it is, one merged group holding an open
// (batch) dim is inferred (-1), every other size is explicit.
Ints reshape_target(const JsonRef& where, const std::string& eq, const std::string& in, const std::vector<std::string>& slots,
                    const std::map<char, int64_t>& size, const std::map<char, bool>& open) {
  Ints target;
  int inferred = 0;
  for (size_t j = 0; j < slots.size(); ++j) {
    const std::string& g = slots[j];
    if (g.size() == 1 && j < in.size() && in[j] == g[0]) {
      target.push_back(0);
      continue;
    }
    bool any_open = false;
    int64_t n = 1;
    for (char c : g) {
      any_open = any_open || open.at(c);
      n *= size.at(c);
    }
    if (any_open && ++inferred > 1)
      where.fail("einsum \"" + eq + "\": two axes the graph keeps open (the batch) would need inferring in one reshape; not supported");
    target.push_back(any_open ? -1 : n);
  }
  return target;
}

bool same_slots(const std::string& in, const std::vector<std::string>& slots) {
  if (slots.size() != in.size()) return false;
  for (size_t j = 0; j < slots.size(); ++j)
    if (slots[j].size() != 1 || slots[j][0] != in[j]) return false;
  return true;
}

// out = einsum(eq, a, b) as Transpose/Reshape of each operand to [batch..., M, K] and
// [batch..., K, N], one MatMul, a Reshape to [batch..., free a..., free b...] and a Transpose
// to the output's order; steps are "<name>/<step>", the last node is returned unemitted.
Final einsum(const Module& m, const JsonRef& where, const std::string& text, const Equation& e, const Operand& a, const Operand& b) {
  Decoder& d = m.decoder();
  std::map<char, int64_t> size;
  std::map<char, bool> open;
  auto bind = [&](const std::string& letters, const Operand& o, const std::string& what) {
    if (letters.size() != o.shape.size())
      where.fail("einsum \"" + text + "\": the " + what + " \"" + letters + "\" has " + std::to_string(letters.size()) + " indices, the array is " +
                 shape_str(o.shape));
    for (size_t i = 0; i < letters.size(); ++i) {
      const char c = letters[i];
      auto it = size.find(c);
      if (it != size.end() && it->second != o.shape[i])
        where.fail("einsum \"" + text + "\": index '" + std::string(1, c) + "' is " + std::to_string(it->second) + " in one operand and " +
                   std::to_string(o.shape[i]) + " in the other");
      size[c] = o.shape[i];
      open[c] = open[c] || (!o.open.empty() && o.open[i]);
    }
  };
  bind(e.a, a, "first operand");
  bind(e.b, b, "second operand");

  std::string batch, free_a, free_b, contracted;
  for (char c : e.out) {
    const bool in_a = e.a.find(c) != std::string::npos, in_b = e.b.find(c) != std::string::npos;
    (in_a && in_b ? batch : in_a ? free_a : free_b).push_back(c);
  }
  for (char c : e.a)
    if (e.b.find(c) != std::string::npos && e.out.find(c) == std::string::npos) contracted.push_back(c);

  // Each operand in the order [batch..., rows, columns].
  auto arrange = [&](const Operand& o, const std::string& letters, const std::string& rows, const std::string& cols, const std::string& step) {
    const std::string order = batch + rows + cols;
    Ints perm;
    for (char c : order) perm.push_back(int64_t(letters.find(c)));
    std::vector<std::string> slots;
    for (char c : batch) slots.emplace_back(1, c);
    slots.push_back(rows);
    slots.push_back(cols);
    if (o.tensor) {  // a weight: arranged once here
      Shape flat;
      for (const std::string& g : slots) {
        int64_t n = 1;
        for (char c : g) n *= size.at(c);
        flat.push_back(n);
      }
      return d.derived(o.tensor_name, "einsum", permuted(*o.tensor, perm).reshaped(flat));
    }
    std::string x = o.ir;
    bool moved = false;
    for (size_t i = 0; i < perm.size(); ++i) moved = moved || perm[i] != int64_t(i);
    if (moved) x = m.emit_step(step + "_t", "Transpose", {x}, attrs_of({{"perm", perm}}));
    if (!same_slots(order, slots))
      x = m.emit_step(step, "Reshape", {x}, attrs_of({{"shape", reshape_target(where, text, order, slots, size, open)}}));
    return x;
  };
  const std::string lhs = arrange(a, e.a, free_a, contracted, "lhs");
  const std::string rhs = arrange(b, e.b, contracted, free_b, "rhs");

  // [batch..., M, N] -> [batch..., free a..., free b...] -> the output's order.
  std::vector<std::string> product;
  for (char c : batch) product.emplace_back(1, c);
  product.push_back(free_a);
  product.push_back(free_b);
  const std::string split = batch + free_a + free_b;
  std::vector<std::string> split_slots;
  for (char c : split) split_slots.emplace_back(1, c);
  Ints perm;
  for (char c : e.out) perm.push_back(int64_t(split.find(c)));
  bool moved = false;
  for (size_t i = 0; i < perm.size(); ++i) moved = moved || perm[i] != int64_t(i);
  std::string product_letters;  // a slot's letter where it is one, else a placeholder
  for (const std::string& g : product) product_letters.push_back(g.size() == 1 ? g[0] : '.');
  const bool reshape = !same_slots(product_letters, split_slots);

  Final mm{"MatMul", {lhs, rhs}, {}};
  if (!reshape && !moved) return mm;
  std::string y = m.emit_step("matmul", mm.op, mm.inputs, {});
  Final shaped{"Reshape", {y}, attrs_of({{"shape", reshape_target(where, text, product_letters, split_slots, size, open)}})};
  if (!moved) return shaped;
  if (reshape) y = m.emit_step("split", shaped.op, shaped.inputs, shaped.attrs);
  return {"Transpose", {y}, attrs_of({{"perm", perm}})};
}

void emit_final(const Module& m, Final f) { m.emit(Layout::ChannelsLast, f.op, std::move(f.inputs), std::move(f.attrs)); }

}  // namespace

// flax.linen.Einsum(shape, einsum_str, use_bias): y = jnp.einsum(einsum_str, x, kernel) with
// kernel of `shape`, then + bias. Flax's bias (Einsum._get_bias_shape) has one dim per output
// index the kernel holds, in the output's order, and broadcasts with 1 at the others.
void translate_einsum_module(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  JsonRef ej = j["einsum_str"];
  const std::string text = ej.str();
  const Equation e = parse_equation(ej, text, true);
  JsonRef sj = j["shape"];
  Shape shape;
  for (const JsonRef& s : sj.items()) shape.push_back(positive(s));
  const Tensor& kernel = m.var("kernel");
  if (kernel.shape() != shape) m.fail_var_shape("kernel", "shape = " + shape_str(shape));
  Operand k;
  k.shape = shape;
  k.tensor = &kernel;
  k.tensor_name = m.var_name("kernel");
  Final f = einsum(m, ej, text, e, value_operand(m, 0), k);
  if (!j.boolean("use_bias", true)) {
    if (m.find_var("bias")) throw Error(json_path_member("tensors", m.var_name("bias")), "the module has use_bias = false but the stream has its bias");
    return emit_final(m, std::move(f));
  }
  Shape bias_shape, broadcast;
  for (char c : e.out) {
    const size_t i = e.b.find(c);
    broadcast.push_back(i == std::string::npos ? 1 : shape[i]);
    if (i != std::string::npos) bias_shape.push_back(shape[i]);
  }
  const Tensor* bias = m.find_var("bias");
  if (!bias) m.var("bias");  // the missing-param error
  if (bias->shape() != bias_shape)
    m.fail_var_shape("bias", "the kernel's dims of the output indices, in the output's order = " + shape_str(bias_shape));
  const std::string y = m.emit_step("einsum", f.op, f.inputs, f.attrs);
  m.emit(Layout::ChannelsLast, "Add", {y, m.decoder().derived(m.var_name("bias"), "broadcast", bias->reshaped(broadcast))});
}

// jnp.einsum(subscripts, a, b) between two values.
void translate_einsum(const Module& m) {
  const JsonRef& j = m.json();
  check_float32(j);
  JsonRef sj = j["subscripts"];
  const Equation e = parse_equation(sj, sj.str(), false);
  emit_final(m, einsum(m, sj, sj.str(), e, value_operand(m, 0), value_operand(m, 1)));
}

// jnp.matmul(a, b) (a @ b): the IR's MatMul is numpy's for rank >= 2, leading dims broadcast.
void translate_matmul(const Module& m) {
  check_float32(m.json());
  for (size_t i = 0; i < 2; ++i)
    if (m.shape(i).size() < 2)
      m.json().fail("matmul of a " + std::to_string(m.shape(i).size()) + "-D operand " + shape_str(m.shape(i)) +
                    " (numpy's vector case) is not supported; operands need rank >= 2");
  m.emit(Layout::ChannelsLast, "MatMul", {m.last(0), m.last(1)});
}

}  // namespace pb::jax
