// nn.Linear and nn.Embedding (PyTorch keeps their weights in the IR's own layouts), and the
// matrix product a @ b.
#include <algorithm>

#include "../fx_node.h"

namespace pb::pytorch {

// Linear.weight is [out_features, in_features], the IR's Dense weight: used as is, never
// transposed, and never guessed from the shape (a square weight fits both orientations).
void translate_linear(const FxNode& n) {
  const int64_t in_f = n.attr("in_features").i64(), out_f = n.attr("out_features").i64();
  const std::string w = n.required_param("weight");
  n.check_param_shape("weight", w, {out_f, in_f}, "shape [out_features, in_features] = ");
  std::vector<std::string> inputs = {n.in(0), w};
  if (auto b = n.param("bias")) {
    n.check_param_shape("bias", *b, {out_f}, "shape ");
    inputs.push_back(*b);
  }
  n.emit("Dense", inputs);
}

// Embedding: rows of weight [num_embeddings, embedding_dim] by i64 id. padding_idx,
// scale_grad_by_freq and sparse only shape training; max_norm rewrites rows during forward.
void translate_embedding(const FxNode& n) {
  if (n.attrs().has("max_norm")) n.attr("max_norm").fail("max_norm renormalises rows during forward; not supported");
  const std::string w = n.required_param("weight");
  const int64_t rows = n.attr("num_embeddings").i64();
  n.check_param_shape("weight", w, {rows, n.attr("embedding_dim").i64()}, "[num_embeddings, embedding_dim] = ");
  // Ids from torch.arange (positions): those rows of the table, a Slice.
  const std::optional<JsonRef> ids = n.arg(0, "input");
  if (const FxRange* r = ids ? n.range_ref(*ids) : nullptr) {
    const int64_t last = r->start + (r->count - 1) * r->step;
    if (std::min(r->start, last) < 0 || std::max(r->start, last) >= rows)
      n.fail("ids " + std::to_string(r->start) + ".." + std::to_string(last) + " (torch.arange) are out of range for " + std::to_string(rows) + " rows");
    const int64_t end = last + (r->step > 0 ? 1 : -1);
    return n.emit("Slice", {w}, attrs_of({{"starts", Ints{r->start}}, {"ends", Ints{end < 0 ? INT64_MIN : end}}, {"axes", Ints{0}}, {"steps", Ints{r->step}}}));
  }
  n.emit("Embedding", {n.in(0), w});
}

// a @ b, torch.matmul(input, other), torch.bmm(input, mat2) and their methods: numpy's matmul,
// the IR's MatMul, for operands of rank >= 2 (torch promotes a 1-D operand to a matrix and
// drops that dim again: refused, naming the node).
void translate_matmul(const FxNode& n) {
  const std::string other = n.kwarg("mat2") ? "mat2" : "other";
  std::vector<std::string> ins = {n.in(0), n.in(1, other)};
  for (size_t i = 0; i < 2; ++i)
    if (n.decoder().ir_type(ins[i]).shape.size() < 2)
      n.fail("a matrix product with a 1-D operand (" + std::string(i ? "other" : "input") + " " +
             shape_str(n.decoder().ir_type(ins[i]).shape) + ", which torch promotes to a matrix) is not supported");
  n.emit("MatMul", ins);
}

}  // namespace pb::pytorch
