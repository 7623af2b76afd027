// Reductions: x.mean(dim, keepdim) / torch.mean, sum, amax and amin over the listed dims (none:
// every dim), as the IR's Reduce.
#include "../fx_node.h"

namespace pb::pytorch {

Translate reduce(const std::string& mode) {
  return [mode](const FxNode& n) {
    if (auto dtype = n.kwarg("dtype"); dtype && !dtype->is_null()) dtype->fail("a reduction with a dtype is not supported");
    Ints axes;
    if (auto dim = n.arg(1, "dim")) axes = dim->is_array() ? dim->ints() : Ints{dim->i64()};
    auto keep = n.arg(2, "keepdim");
    n.emit("Reduce", {n.in(0)}, attrs_of({{"mode", mode}, {"axes", axes}, {"keepdims", int64_t(keep && keep->boolean())}}));
  };
}

}  // namespace pb::pytorch
