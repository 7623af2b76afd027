// Comparisons of tensors (a Compare node: an i32 mask of 1 and 0, a bool as the stream carries
// one) and what selects by a mask: x.masked_fill(mask, value) and torch.where(cond, a,
// b) (a Where node). Either side may be a Python number: a constant.
#include "../fx_node.h"

namespace pb::pytorch {

// input (== != < <= > >=) other, at least one a tensor.
void emit_compare(const FxNode& n, const std::string& mode) {
  auto a = n.arg(0, "input"), b = n.arg(1, "other");
  if (!a || !b) n.fail("a comparison needs two operands");
  n.emit("Compare", {n.operand(*a, "lhs"), n.operand(*b, "rhs")}, attrs_of({{"mode", mode}}));
}

// x.masked_fill(mask, value) / torch.masked_fill(input, mask, value): value where the mask is
// true (a bool tensor, or a Compare's mask), x elsewhere. value: a number (float('-inf') too)
// or a 0-d tensor.
void translate_masked_fill(const FxNode& n) {
  auto mask = n.arg(1, "mask"), value = n.arg(2, "value");
  if (!mask || !value) n.fail("masked_fill needs a mask and a value");
  n.emit("Where", {n.decoder().planet_form(n.node_ref(*mask)), n.operand(*value, "value"), n.in(0)});
}

// torch.where(condition, input, other): input where the condition is true, other elsewhere
// (either may be a number). The one-argument form (the indices of the non-zeros) is refused.
void translate_where(const FxNode& n) {
  auto cond = n.arg(0, "condition"), a = n.arg(1, "input"), b = n.arg(2, "other");
  if (!cond || !a || !b) n.fail("torch.where(condition) (indices of the true elements) is not supported; pass input and other");
  n.emit("Where", {n.decoder().planet_form(n.node_ref(*cond)), n.operand(*a, "input"), n.operand(*b, "other")});
}

}  // namespace pb::pytorch
