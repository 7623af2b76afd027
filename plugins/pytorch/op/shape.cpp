// Flatten, view / reshape, transpose, permute, torch.cat, torch.stack, chunk / split, unsqueeze /
// squeeze, expand and indexing ([]): PyTorch's dims are the IR's, so each reads its dims as given; only
// negative dims resolve against the input's rank. Sizes may come from shapes (FxScalar): the
// graph keeps the batch open, so a size that depends on it is never written as a constant.
#include <algorithm>
#include <functional>
#include <limits>

#include "../fx_node.h"

namespace pb::pytorch {

namespace {

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();

// The Reshape target for sizes `dims` of IR value `in`: a size that depends on the batch is 0
// where it is `in`'s own dim at that position (the batch kept in place), else the one -1, which
// the compiled graph infers from the rest; two such sizes are refused. Constants stay as given.
Ints reshape_target(const FxNode& n, const std::string& in, const std::vector<FxScalar>& dims) {
  const Shape& open = n.batch_shape(in);
  bool inferred = std::any_of(dims.begin(), dims.end(), [](const FxScalar& s) { return !s.batch() && s.i == -1; });
  Ints target;
  for (size_t i = 0; i < dims.size(); ++i) {
    const FxScalar& s = dims[i];
    if (!s.batch()) {
      target.push_back(s.i);
      continue;
    }
    if (!s.nonlinear && i < open.size() && open[i] < 0) {
      const FxScalar own = n.dim_size(in, i);
      if (!own.nonlinear && own.per_batch == s.per_batch && own.offset == s.offset) {
        target.push_back(0);
        continue;
      }
    }
    if (inferred) {
      std::string sizes;
      for (const FxScalar& d : dims) sizes += (sizes.empty() ? "" : ", ") + std::to_string(d.i) + (d.batch() ? " (batch)" : "");
      n.fail("reshape to [" + sizes + "]: more than one size depends on the batch or is -1, and the graph, which leaves the batch open, "
             "can infer only one");
    }
    target.push_back(-1);
    inferred = true;
  }
  return target;
}

// A Python int index or slice bound that does not depend on the batch; nullopt for anything else.
std::optional<int64_t> constant_index(const FxNode& n, const JsonRef& a, const std::string& what) {
  const std::optional<FxScalar> s = n.scalar(a);
  if (!s || s->kind != FxScalar::Kind::Int) return std::nullopt;
  return n.constant_int(a, what);
}

// tuple[index] (negative counts from the end) is that element itself; tuple[a:b:c] a tuple.
void select_from_tuple(const FxNode& n, const FxTuple& t, const JsonRef& index) {
  const int64_t size = static_cast<int64_t>(t.items.size());
  if (index.is_object() && index.has("slice")) {
    const JsonRef sl = index["slice"];
    auto bound = [&](size_t j, int64_t fallback) {
      if (sl[j].is_null()) return fallback;
      if (auto v = constant_index(n, sl[j], "a slice bound")) return *v;
      sl[j].fail("a slice bound must be a constant integer");
    };
    const int64_t step = bound(2, 1);
    if (step == 0) sl[2].fail("a slice step of 0");
    const ir::SliceRange r = ir::slice_range(size, bound(0, step > 0 ? 0 : size - 1), bound(1, step > 0 ? size : INT64_MIN), step);
    FxTuple out;
    for (int64_t k = 0; k < r.count; ++k) out.items.push_back(t.items[size_t(r.first + k * step)]);
    return n.define_tuple(std::move(out));
  }
  const std::optional<int64_t> k = constant_index(n, index, "a tuple index");
  if (!k) index.fail("a tuple (" + std::to_string(size) + " elements) is indexed by an integer only");
  const int64_t i = *k < 0 ? *k + size : *k;
  if (i < 0 || i >= size) index.fail("index " + std::to_string(*k) + " is out of range for a tuple of " + std::to_string(size));
  const FxTuple& e = t.items[size_t(i)];
  if (e.scalar) return n.define_scalar(*e.scalar);
  if (e.is_tuple()) return n.define_tuple(e);
  n.decoder().bind(n.name(), e.value, Layout::ChannelsFirst);
}

// Basic indexing of a tensor with constant integers and slices, one per dim (y[:, -1], h_n[-1],
// x[0], y[:, 2:5], bias[:, :, :T, :T] with T from x.size()), a list of one integer (x[:, [-1]],
// which keeps the dim), None (a new dim of 1: x[:, :, None]) and one Ellipsis (the dims no other
// item takes: x[..., :d // 2]): a Slice, then a Reshape dropping the dims an integer selected and
// adding None's (reshape_target keeps the batch open). Anything else (a tensor, a bool, a longer
// list) is refused naming the index.
void index_tensor(const FxNode& n, const JsonRef& index) {
  const std::string in = n.in(0);
  const Shape& shape = n.decoder().ir_type(in).shape;
  const std::vector<JsonRef> items = index.is_array() ? index.items() : std::vector<JsonRef>{index};
  auto is_ellipsis = [](const JsonRef& it) { return it.is_object() && it.has("repr") && it["repr"].raw() == "Ellipsis"; };
  size_t taking = 0, ellipses = 0;
  for (const JsonRef& it : items) {
    if (is_ellipsis(it)) ++ellipses;
    else if (!it.is_null()) ++taking;
  }
  if (ellipses > 1) index.fail("an index can have only one Ellipsis (...)");
  if (taking > shape.size()) index.fail(std::to_string(taking) + " indices for a tensor of rank " + std::to_string(shape.size()));
  Ints starts, ends, axes, steps;
  Ints layout;  // the output's dims: an input dim, or -1 for a new dim of 1
  bool dropped = false;
  size_t i = 0;  // the input dim the next item takes
  for (const JsonRef& it : items) {
    if (it.is_null()) {
      layout.push_back(-1);
      continue;
    }
    if (is_ellipsis(it)) {
      for (size_t k = 0; k < shape.size() - taking; ++k) layout.push_back(int64_t(i++));
      continue;
    }
    const int64_t dim = shape[i];
    const bool listed = it.is_array() && it.size() == 1;
    if (auto k = constant_index(n, listed ? it[0] : it, "an index")) {
      if (*k < -dim || *k >= dim)
        it.fail("index " + std::to_string(*k) + " is out of range for dim " + std::to_string(i) + " of size " + std::to_string(dim));
      starts.push_back(*k);
      ends.push_back(*k == -1 ? kEnd : *k + 1);
      axes.push_back(int64_t(i));
      steps.push_back(1);
      if (listed) layout.push_back(int64_t(i));
      dropped = dropped || !listed;
    } else if (it.is_object() && it.has("slice")) {
      const JsonRef sl = it["slice"];
      auto bound = [&](size_t j, int64_t fallback) {
        const JsonRef b = sl[j];
        if (b.is_null()) return fallback;
        if (auto v = constant_index(n, b, "a slice bound")) return *v;
        b.fail("a slice bound must be a constant integer");
      };
      const int64_t start = bound(0, 0), stop = bound(1, kEnd), step = bound(2, 1);
      if (step <= 0) sl[2].fail("a slice step must be positive (torch refuses others)");
      layout.push_back(int64_t(i));
      if (!(start == 0 && stop == kEnd && step == 1)) {  // ":" takes the whole dim
        starts.push_back(start);
        ends.push_back(stop);
        axes.push_back(int64_t(i));
        steps.push_back(step);
      }
    } else {
      it.fail("indexing with " + it.raw().dump() +
              " is not supported (only constant integers, slices, None, ... and a list of one integer, e.g. y[:, -1], h[-1], "
              "x[..., :d], x[:, None] or x[:, [-1]])");
    }
    ++i;
  }
  for (; i < shape.size(); ++i) layout.push_back(int64_t(i));
  const bool reshaped = dropped || std::find(layout.begin(), layout.end(), -1) != layout.end();
  if (starts.empty() && !reshaped) return n.emit("Identity", {in});
  const ir::Attrs slice = attrs_of({{"starts", starts}, {"ends", ends}, {"axes", axes}, {"steps", steps}});
  if (!reshaped) return n.emit("Slice", {in}, slice);
  const std::string sliced = starts.empty() ? in : n.step("slice", "Slice", {in}, slice);
  std::vector<FxScalar> kept;
  for (int64_t d : layout) kept.push_back(d < 0 ? FxScalar::integer(1) : n.dim_size(sliced, size_t(d)));
  n.emit("Reshape", {sliced}, attrs_of({{"shape", reshape_target(n, sliced, kept)}}));
}

// The pieces of x along `dim` (sizes as torch cuts them) as a tuple of Slice nodes "<node>/<k>".
void emit_pieces(const FxNode& n, size_t dim_arg, const std::string& dim_kw, const std::function<Ints(int64_t)>& sizes) {
  const std::string x = n.in(0);
  const int64_t dim = resolved_dim(n, n.int_arg(dim_arg, dim_kw, 0), n.decoder().ir_type(x).shape.size(), "dim");
  const FxScalar length = n.dim_size(x, size_t(dim));
  if (length.batch()) n.fail("dim " + std::to_string(dim) + " depends on the batch, which the graph leaves open: cutting it fixes how many pieces there are");
  FxTuple t;
  int64_t start = 0;
  for (int64_t size : sizes(length.i)) {
    const std::string piece = std::to_string(t.items.size());
    t.items.push_back(FxTuple{n.step(piece, "Slice", {x}, attrs_of({{"starts", Ints{start}}, {"ends", Ints{start + size}}, {"axes", Ints{dim}}})), {}});
    start += size;
  }
  n.define_tuple(std::move(t));
}

// The sizes of x's dims as Python ints.
std::vector<FxScalar> dims_of(const FxNode& n, const std::string& in) {
  std::vector<FxScalar> dims;
  for (size_t i = 0; i < n.decoder().ir_type(in).shape.size(); ++i) dims.push_back(n.dim_size(in, i));
  return dims;
}

}  // namespace

// _operator.getitem(a, index): an element of a tuple (a recurrent module's (y, h_n), nested
// (h_n, c_n)) is that element itself, no node; on a tensor it is indexing.
void translate_getitem(const FxNode& n) {
  auto src = n.arg(0);
  if (!src) n.fail("getitem needs what it indexes");
  const auto args = n.json().find("args");
  if (!args || args->size() < 2) n.fail("getitem needs an index");
  const JsonRef index = (*args)[1];  // null: x[None]
  if (const FxTuple* t = n.tuple_ref(*src)) {
    if (index.is_null()) index.fail("a tuple is indexed by an integer only");
    return select_from_tuple(n, *t, index);
  }
  index_tensor(n, index);
}

void translate_flatten_module(const FxNode& n) {
  n.emit("Flatten", {n.in(0)}, attrs_of({{"start", n.attr("start_dim").i64()}, {"end", n.attr("end_dim").i64()}}));
}

// torch.flatten(x, start_dim=0, end_dim=-1) and x.flatten(...).
void translate_flatten_call(const FxNode& n) {
  n.emit("Flatten", {n.in(0)}, attrs_of({{"start", n.int_arg(1, "start_dim", 0)}, {"end", n.int_arg(2, "end_dim", -1)}}));
}

// x.view(a, b) / x.reshape(a, b) / x.view((a, b)) / torch.reshape(x, (a, b)) / x.view(x.size()),
// sizes from shapes included (x.view(B, T, heads, C // heads)).
void translate_reshape(const FxNode& n) {
  const std::string in = n.in(0);
  n.emit("Reshape", {in}, attrs_of({{"shape", reshape_target(n, in, n.scalars_from(1, "shape", "reshape"))}}));
}

// x.chunk(chunks, dim=0) / torch.chunk: pieces of ceil(size / chunks), the last one shorter
// (torch returns fewer than `chunks` when they run out).
void translate_chunk(const FxNode& n) {
  const int64_t chunks = n.int_arg(1, "chunks", 0);
  if (chunks < 1) n.fail("chunk needs chunks >= 1");
  emit_pieces(n, 2, "dim", [&](int64_t length) {
    const int64_t size = (length + chunks - 1) / chunks;
    Ints sizes;
    for (int64_t start = 0; start < length; start += size) sizes.push_back(std::min(size, length - start));
    return sizes;
  });
}

// x.split(split_size, dim=0) / torch.split(tensor, split_size_or_sections, dim=0): pieces of
// split_size (the last one shorter), or of the listed sizes.
void translate_split(const FxNode& n) {
  auto what = n.arg(1, n.kwarg("split_size") ? "split_size" : "split_size_or_sections");
  if (!what) n.fail("split needs split_size");
  emit_pieces(n, 2, "dim", [&](int64_t length) {
    Ints sizes;
    if (!what->is_array() && !n.tuple_ref(*what)) {
      const int64_t size = n.constant_int(*what, "split_size");
      if (size < 1) what->fail("split_size must be >= 1");
      for (int64_t start = 0; start < length; start += size) sizes.push_back(std::min(size, length - start));
      return sizes;
    }
    int64_t total = 0;
    for (const FxScalar& s : n.scalars_from(1, n.kwarg("split_size") ? "split_size" : "split_size_or_sections", "split")) {
      if (s.batch() || s.i < 1) what->fail("split sizes must be constant and >= 1");
      sizes.push_back(s.i);
      total += s.i;
    }
    if (total != length) what->fail("split sizes add up to " + std::to_string(total) + ", the dim has " + std::to_string(length));
    return sizes;
  });
}

// x.unsqueeze(dim) / torch.unsqueeze: a new dim of 1 (a Reshape).
void translate_unsqueeze(const FxNode& n) {
  const std::string in = n.in(0);
  std::vector<FxScalar> dims = dims_of(n, in);
  auto dim = n.arg(1, "dim");
  if (!dim) n.fail("unsqueeze needs dim");
  const int64_t d = resolved_dim(n, n.constant_int(*dim, "dim"), dims.size() + 1, "unsqueeze dim");
  dims.insert(dims.begin() + d, FxScalar::integer(1));
  n.emit("Reshape", {in}, attrs_of({{"shape", reshape_target(n, in, dims)}}));
}

// x.squeeze(dim=None) / torch.squeeze: drops dim (or every dim) of size 1. A dim that depends
// on the batch is refused where it is 1: torch would drop it for that batch only.
void translate_squeeze(const FxNode& n) {
  const std::string in = n.in(0);
  const std::vector<FxScalar> dims = dims_of(n, in);
  std::optional<int64_t> only;
  if (auto dim = n.arg(1, "dim")) only = resolved_dim(n, n.constant_int(*dim, "dim"), dims.size(), "squeeze dim");
  std::vector<FxScalar> kept;
  for (size_t i = 0; i < dims.size(); ++i) {
    const bool asked = !only || *only == int64_t(i);
    if (asked && dims[i].i == 1 && dims[i].batch())
      n.fail("squeezing dim " + std::to_string(i) + ", which is 1 for the captured batch only (the graph leaves the batch open)");
    if (!(asked && dims[i].i == 1)) kept.push_back(dims[i]);
  }
  if (kept.size() == dims.size()) return n.emit("Identity", {in});
  n.emit("Reshape", {in}, attrs_of({{"shape", reshape_target(n, in, kept)}}));
}

// x.expand(*sizes) / x.expand(sizes): x repeated along its dims of 1 and new leading dims. -1
// keeps x's dim; a size that depends on the batch is either x's own dim there (kept) or the
// batch read from dim i of a value of the output's rank (x.shape[0] for dim 0: an Expand that
// copies it from that value when compiled).
void translate_expand(const FxNode& n) {
  const std::string in = n.in(0);
  const std::vector<FxScalar> sizes = n.scalars_from(1, "size", "expand");
  const std::vector<FxScalar> own = dims_of(n, in);
  if (sizes.size() < own.size()) n.fail("expand to " + std::to_string(sizes.size()) + " dims of a tensor of rank " + std::to_string(own.size()));
  const size_t lead = sizes.size() - own.size();
  Ints target;
  std::string like;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const FxScalar& s = sizes[i];
    const FxScalar* mine = i >= lead ? &own[i - lead] : nullptr;
    if (!s.batch()) {
      target.push_back(s.i);
    } else if (mine && mine->batch() && !s.nonlinear && !mine->nonlinear && mine->per_batch == s.per_batch && mine->offset == s.offset) {
      target.push_back(-1);
    } else if (s.is_batch() && !s.source.empty() && s.source_dim == int64_t(i) &&
               n.decoder().ir_type(s.source).shape.size() == sizes.size() && (like.empty() || like == s.source)) {
      target.push_back(0);
      like = s.source;
    } else {
      n.fail("expand: size " + std::to_string(i) + " (" + std::to_string(s.i) +
             ") depends on the batch; supported where it is the tensor's own dim or the batch read from the same dim of a value "
             "of the output's rank (x.shape[0] at dim 0)");
    }
  }
  std::vector<std::string> ins = {in};
  if (!like.empty()) ins.push_back(like);
  n.emit("Expand", ins, attrs_of({{"shape", target}}));
}

// x.expand_as(other): x expanded to other's shape, other's batch dims copied when compiled.
void translate_expand_as(const FxNode& n) {
  const std::string in = n.in(0), other = n.in(1, "other");
  const Shape& open = n.batch_shape(other);
  Ints target = n.decoder().ir_type(other).shape;
  bool copies = false;
  for (size_t i = 0; i < target.size(); ++i)
    if (open[i] < 0) target[i] = 0, copies = true;
  std::vector<std::string> ins = {in};
  if (copies) ins.push_back(other);
  n.emit("Expand", ins, attrs_of({{"shape", target}}));
}

// x.transpose(a, b) / torch.transpose(x, a, b): swaps two dims (negative ones count from the end).
void emit_swap(const FxNode& n, int64_t dim0, int64_t dim1, const std::string& what) {
  const size_t rank = n.type(0).shape.size();
  const int64_t a = resolved_dim(n, dim0, rank, what + " dim"), b = resolved_dim(n, dim1, rank, what + " dim");
  Ints perm(rank);
  for (size_t i = 0; i < rank; ++i) perm[i] = static_cast<int64_t>(i);
  std::swap(perm[a], perm[b]);
  n.emit("Transpose", {n.in(0)}, attrs_of({{"perm", perm}}));
}

void translate_transpose(const FxNode& n) {
  auto dim0 = n.arg(1, "dim0"), dim1 = n.arg(2, "dim1");
  if (!dim0 || !dim1) n.fail("transpose needs dim0 and dim1");
  emit_swap(n, dim0->i64(), dim1->i64(), "transpose");
}

// x.swapaxes(1, 2) / torch.swapaxes(x, axis0=1, axis1=2): NumPy's name for transpose (torch.swapdims
// is transpose itself, dim0 and dim1).
void translate_swapaxes(const FxNode& n) {
  auto axis0 = n.arg(1, "axis0"), axis1 = n.arg(2, "axis1");
  if (!axis0 || !axis1) n.fail("swapaxes needs axis0 and axis1");
  emit_swap(n, axis0->i64(), axis1->i64(), "swapaxes");
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

// torch.stack(tensors, dim=0): tensors of one shape joined along a new dim (interleaved rotary
// embeddings' torch.stack((-x2, x1), dim=-1)): each gets a dim of 1 there (a Reshape "<node>/<k>"),
// then a Concat along it. The tensors come as a list or tuple literal; dim counts from the end
// against the output's rank.
void translate_stack(const FxNode& n) {
  auto list = n.arg(0, "tensors");
  if (!list) n.fail("torch.stack needs tensors");
  const FxTuple tensors = n.tuple_arg(*list);
  if (tensors.items.empty()) list->fail("torch.stack needs at least one tensor");
  std::vector<std::string> ins;
  for (const FxTuple& e : tensors.items) {
    if (e.value.empty())
      list->fail("torch.stack stacks tensors; element " + std::to_string(ins.size()) + " is " + (e.scalar ? "a Python number" : "a tuple"));
    ins.push_back(e.value);
  }
  const Shape& shape = n.decoder().ir_type(ins[0]).shape;
  for (size_t k = 1; k < ins.size(); ++k)
    if (n.decoder().ir_type(ins[k]).shape != shape)
      list->fail("torch.stack needs tensors of one shape: element " + std::to_string(k) + " is " +
                 shape_str(n.decoder().ir_type(ins[k]).shape) + ", element 0 " + shape_str(shape));
  const int64_t d = resolved_dim(n, n.int_arg(1, "dim", 0), shape.size() + 1, "stack dim");
  std::vector<std::string> parts;
  for (size_t k = 0; k < ins.size(); ++k) {
    std::vector<FxScalar> dims = dims_of(n, ins[k]);
    dims.insert(dims.begin() + d, FxScalar::integer(1));
    parts.push_back(n.step(std::to_string(k), "Reshape", {ins[k]}, attrs_of({{"shape", reshape_target(n, ins[k], dims)}})));
  }
  n.emit("Concat", parts, attrs_of({{"axis", d}}));
}

// x.repeat_interleave(repeats, dim) / torch.repeat_interleave: each slice along dim repeated
// `repeats` times in place (grouped-query attention's key and value heads): a dim of 1 after dim
// (Reshape), Expand it to `repeats`, then merge the two (Reshape).
void translate_repeat_interleave(const FxNode& n) {
  const std::string in = n.in(0);
  auto r = n.arg(1, "repeats");
  if (!r) n.fail("repeat_interleave needs repeats");
  if (!n.scalar(*r)) r->fail("repeats must be a Python int (a tensor of counts per element is not supported)");
  const int64_t repeats = n.constant_int(*r, "repeats");
  if (repeats < 1) r->fail("repeats must be at least 1");
  if (auto size = n.kwarg("output_size"); size && !size->is_null()) size->fail("output_size is not supported (the output's size follows from repeats)");
  const auto dim = n.arg(2, "dim");
  if (!dim) n.fail("repeat_interleave without dim repeats the flattened input; not supported: pass dim");
  const std::vector<FxScalar> dims = dims_of(n, in);
  const int64_t d = resolved_dim(n, n.constant_int(*dim, "dim"), dims.size(), "dim");
  if (dims[size_t(d)].batch()) dim->fail("repeat_interleave along a dim that depends on the batch is not supported");
  std::vector<FxScalar> apart = dims;
  apart.insert(apart.begin() + d + 1, FxScalar::integer(1));
  const std::string one = n.step("apart", "Reshape", {in}, attrs_of({{"shape", reshape_target(n, in, apart)}}));
  Ints shape(apart.size(), -1);
  shape[size_t(d) + 1] = repeats;
  const std::string expanded = n.step("expanded", "Expand", {one}, attrs_of({{"shape", shape}}));
  std::vector<FxScalar> merged = dims;
  merged[size_t(d)] = FxScalar::integer(dims[size_t(d)].i * repeats);
  n.emit("Reshape", {expanded}, attrs_of({{"shape", reshape_target(n, expanded, merged)}}));
}

}  // namespace pb::pytorch
