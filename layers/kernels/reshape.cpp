// Layout-free views: Identity, Flatten and Reshape share their input's bytes (no copy); their
// output shapes come from the op schemas.
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_view(const ir::Node& node, CompileContext& ctx) {
  ctx.alias(node.outputs.at(0), node_input(node, 0), ctx.output_shape());
  return nullptr;
}

}  // namespace pb::layers
