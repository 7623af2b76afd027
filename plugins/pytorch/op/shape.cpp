// Flatten, view / reshape, transpose, permute and torch.cat: PyTorch's dims are the IR's, so
// each reads its dims as given; only negative dims resolve against the input's rank.
#include "../fx_node.h"

namespace pb::pytorch {

namespace {

// dim in [-rank, rank), made non-negative; `what` names it in the error.
int64_t resolved_dim(const FxNode& n, int64_t dim, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (dim < -r || dim >= r) n.fail(what + " " + std::to_string(dim) + " is out of range for rank " + std::to_string(r));
  return dim < 0 ? dim + r : dim;
}

}  // namespace

void translate_flatten_module(const FxNode& n) {
  n.emit("Flatten", {n.in(0)}, attrs_of({{"start", n.attr("start_dim").i64()}, {"end", n.attr("end_dim").i64()}}));
}

// torch.flatten(x, start_dim=0, end_dim=-1) and x.flatten(...).
void translate_flatten_call(const FxNode& n) {
  n.emit("Flatten", {n.in(0)}, attrs_of({{"start", n.int_arg(1, "start_dim", 0)}, {"end", n.int_arg(2, "end_dim", -1)}}));
}

// x.view(a, b) / x.reshape(a, b) / x.view((a, b)) / torch.reshape(x, (a, b)).
void translate_reshape(const FxNode& n) { n.emit("Reshape", {n.in(0)}, attrs_of({{"shape", n.ints_from(1, "shape", "reshape")}})); }

// x.transpose(a, b) / torch.transpose(x, a, b): swaps two dims (negative ones count from the end).
void translate_transpose(const FxNode& n) {
  auto dim0 = n.arg(1, "dim0"), dim1 = n.arg(2, "dim1");
  if (!dim0 || !dim1) n.fail("transpose needs dim0 and dim1");
  const size_t rank = n.type(0).shape.size();
  const int64_t a = resolved_dim(n, dim0->i64(), rank, "transpose dim"), b = resolved_dim(n, dim1->i64(), rank, "transpose dim");
  Ints perm(rank);
  for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(i);
  std::swap(perm[a], perm[b]);
  n.emit("Transpose", {n.in(0)}, attrs_of({{"perm", perm}}));
}

// x.permute(0, 2, 1) / x.permute((0, 2, 1)) / torch.permute(x, (0, 2, 1)): every dim named.
void translate_permute(const FxNode& n) {
  Ints perm = n.ints_from(1, "dims", "permute");
  const size_t rank = n.type(0).shape.size();
  if (perm.size() != rank) n.fail("permute names " + std::to_string(perm.size()) + " dims of an input of rank " + std::to_string(rank));
  for (int64_t& p : perm) p = resolved_dim(n, p, rank, "permute dim");
  n.emit("Transpose", {n.in(0)}, attrs_of({{"perm", perm}}));
}

// torch.cat(tensors, dim=0); torch also takes the keyword `axis` for dim.
void translate_cat(const FxNode& n) {
  auto list = n.arg(0, "tensors");
  if (!list || !list->is_array()) n.fail("torch.cat needs a list of tensors");
  std::vector<std::string> ins;
  for (const JsonRef& t : list->items()) ins.push_back(n.decoder().planet_form(n.node_ref(t)));
  auto dim = n.arg(1, "dim");
  n.emit("Concat", ins, attrs_of({{"axis", dim ? dim->i64() : n.kwarg("axis") ? n.kwarg("axis")->i64() : 0}}));
}

}  // namespace pb::pytorch
