// Flatten, view / reshape, transpose, permute, torch.cat and indexing ([]): PyTorch's dims are
// the IR's, so each reads its dims as given; only negative dims resolve against the input's rank.
#include <algorithm>
#include <limits>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

// dim in [-rank, rank), made non-negative; `what` names it in the error.
int64_t resolved_dim(const FxNode& n, int64_t dim, size_t rank, const std::string& what) {
  const int64_t r = static_cast<int64_t>(rank);
  if (dim < -r || dim >= r) n.fail(what + " " + std::to_string(dim) + " is out of range for rank " + std::to_string(r));
  return dim < 0 ? dim + r : dim;
}

// The element `index` (negative counts from the end) selects from a tuple.
void select_from_tuple(const FxNode& n, const FxTuple& t, const JsonRef& index) {
  const int64_t size = static_cast<int64_t>(t.items.size());
  if (!index.raw().is_number_integer())
    index.fail("a tuple (" + std::to_string(size) + " elements) is indexed by an integer only");
  const int64_t i = index.i64() < 0 ? index.i64() + size : index.i64();
  if (i < 0 || i >= size) index.fail("index " + std::to_string(index.i64()) + " is out of range for a tuple of " + std::to_string(size));
  const FxTuple& e = t.items[size_t(i)];
  if (e.is_tuple()) return n.define_tuple(e);
  n.decoder().bind(n.name(), e.value, Layout::ChannelsFirst);
}

// Basic indexing of a tensor with constant integers and slices, one per leading dim
// (y[:, -1], h_n[-1], x[0], y[:, 2:5]): a Slice, then a Reshape dropping the dims an integer
// selected (the batch keeps -1 so a checkpoint serves any batch). Anything else (a tensor, None,
// Ellipsis, a bool) is refused naming the index.
void index_tensor(const FxNode& n, const JsonRef& index) {
  const std::string x = n.value_arg(0);
  const Shape& shape = n.decoder().type(x).shape;
  const std::vector<JsonRef> items = index.is_array() ? index.items() : std::vector<JsonRef>{index};
  if (items.size() > shape.size())
    index.fail(std::to_string(items.size()) + " indices for a tensor of rank " + std::to_string(shape.size()));
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  Ints starts, ends, axes, steps;
  std::vector<bool> dropped(shape.size(), false);
  for (size_t i = 0; i < items.size(); ++i) {
    const JsonRef& it = items[i];
    const int64_t dim = shape[i];
    if (it.raw().is_number_integer()) {
      const int64_t k = it.i64();
      if (dim >= 0 && (k < -dim || k >= dim))
        it.fail("index " + std::to_string(k) + " is out of range for dim " + std::to_string(i) + " of size " + std::to_string(dim));
      starts.push_back(k);
      ends.push_back(k == -1 ? kEnd : k + 1);
      axes.push_back(int64_t(i));
      steps.push_back(1);
      dropped[i] = true;
    } else if (it.is_object() && it.has("slice")) {
      const JsonRef sl = it["slice"];
      auto bound = [&](size_t j, int64_t fallback) {
        const JsonRef b = sl[j];
        if (b.is_null()) return fallback;
        if (!b.raw().is_number_integer()) b.fail("a slice bound must be a constant integer");
        return b.i64();
      };
      const int64_t start = bound(0, 0), stop = bound(1, kEnd), step = bound(2, 1);
      if (step <= 0) sl[2].fail("a slice step must be positive (torch refuses others)");
      if (start == 0 && stop == kEnd && step == 1) continue;  // ":" takes the whole dim
      starts.push_back(start);
      ends.push_back(stop);
      axes.push_back(int64_t(i));
      steps.push_back(step);
    } else {
      it.fail("indexing with " + it.raw().dump() +
              " is not supported (only constant integers and slices, e.g. y[:, -1] or h[-1])");
    }
  }
  const std::string in = n.in(0);
  if (starts.empty()) return n.emit("Identity", {in});
  const ir::Attrs slice = attrs_of({{"starts", starts}, {"ends", ends}, {"axes", axes}, {"steps", steps}});
  if (std::find(dropped.begin(), dropped.end(), true) == dropped.end()) return n.emit("Slice", {in}, slice);
  const std::string sliced = n.step("slice", "Slice", {in}, slice);
  // Each kept dim: 0 where it stays at its own position (the batch), else its size, or -1 once.
  const Shape& s = n.decoder().ir_type(sliced).shape;
  Ints target;
  bool inferred = false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (dropped[i]) continue;
    const size_t j = target.size();
    if (j == i) {
      target.push_back(0);
    } else if (!inferred) {
      target.push_back(-1);
      inferred = true;
    } else {
      target.push_back(s[i]);
    }
  }
  n.emit("Reshape", {sliced}, attrs_of({{"shape", target}}));
}

}  // namespace

// _operator.getitem(a, index): an element of a tuple (a recurrent module's (y, h_n), nested
// (h_n, c_n)) is that element itself, no node; on a tensor it is indexing.
void translate_getitem(const FxNode& n) {
  auto src = n.arg(0);
  auto index = n.arg(1);
  if (!src) n.fail("getitem needs what it indexes");
  if (!index) n.json()["args"].fail("indexing with None (a new axis) is not supported");
  if (const FxTuple* t = n.tuple_ref(*src)) return select_from_tuple(n, *t, *index);
  index_tensor(n, *index);
}

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
