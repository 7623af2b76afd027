// Embedding: out[..., :] = table[ids[...], :]. ids i32 or i64, table [V, D] (a weight).
// An id outside [0, V) stops the run with an error naming the node, the id and its position.
#include <cstring>

#include "kernel.h"

namespace pb::layers {

namespace {
class EmbeddingKernel : public Kernel {
 public:
  EmbeddingKernel(std::string where, const Tensor& ids, const Tensor& table, Tensor& y)
      : where_(std::move(where)), ids_(ids), table_(table), y_(y) {}

  void execute(dnnl::stream&) override {
    if (ids_.dtype() == DType::i64) gather(ids_.data<int64_t>());
    else gather(ids_.data<int32_t>());
  }
  std::string implementation() const override { return "cpp:gather"; }

 private:
  template <typename Id>
  void gather(const Id* ids) {
    const int64_t rows = table_.shape()[0], dim = table_.shape()[1], n = ids_.numel();
    for (int64_t i = 0; i < n; ++i) {  // check first: an exception cannot leave a parallel loop
      const int64_t id = static_cast<int64_t>(ids[i]);
      if (id < 0 || id >= rows)
        throw Error(where_, "id " + std::to_string(id) + " at flat position " + std::to_string(i) + " of ids " +
                                shape_str(ids_.shape()) + " is outside the table's " + std::to_string(rows) + " rows");
    }
    const float* table = table_.data<float>();
    float* y = y_.data<float>();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(y + i * dim, table + static_cast<int64_t>(ids[i]) * dim, sizeof(float) * static_cast<size_t>(dim));
  }

  std::string where_;
  const Tensor ids_, table_;
  Tensor y_;
};
}  // namespace

std::unique_ptr<Kernel> build_embedding(const ir::Node& node, CompileContext& ctx) {
  const Tensor& ids = ctx.value(node_input(node, 0));
  const Tensor& table = ctx.weight(node_input(node, 1), "table");
  return std::make_unique<EmbeddingKernel>(ir::node_where(node), ids, table, ctx.define_output(node));
}

}  // namespace pb::layers
