// The kernel table: one line per IR op (its schema is in core/src/ops.cpp). A builder
// declared here is defined in the op's kernel file.
#include "kernel.h"

#include <mutex>

namespace pb::layers {

#define PB_KERNELS(X)             \
  X(Dense, build_dense)           \
  X(MatMul, build_matmul)         \
  X(Activation, build_activation) \
  X(Softmax, build_softmax)       \
  X(Identity, build_view)         \
  X(Flatten, build_view)          \
  X(Reshape, build_view)          \
  X(Add, build_add)               \
  X(Sub, build_sub)               \
  X(Mul, build_mul)               \
  X(Div, build_div)               \
  X(Concat, build_concat)         \
  X(Compare, build_compare)       \
  X(Affine, build_affine)         \
  X(Conv, build_conv)             \
  X(ConvTranspose, build_conv_transpose) \
  X(Pool, build_pool)             \
  X(Resize, build_resize)         \
  X(PReLU, build_prelu)           \
  X(BatchNorm, build_batchnorm)   \
  X(LayerNorm, build_layernorm)   \
  X(RMSNorm, build_rmsnorm)       \
  X(Embedding, build_embedding)   \
  X(Transpose, build_transpose)   \
  X(Expand, build_expand)         \
  X(Where, build_where)           \
  X(Pad, build_pad)               \
  X(Slice, build_slice)           \
  X(Reduce, build_reduce)         \
  X(RNN, build_rnn)               \
  X(LSTM, build_lstm)             \
  X(GRU, build_gru)

#define PB_DECLARE(op, builder) std::unique_ptr<Kernel> builder(const ir::Node&, CompileContext&);
#define PB_ENTRY(op, builder) {#op, builder},
PB_KERNELS(PB_DECLARE)

const std::map<std::string, KernelBuilder>& kernel_table() {
  static const std::map<std::string, KernelBuilder> table = {PB_KERNELS(PB_ENTRY)};
  return table;
}

namespace {

std::mutex overrides_mu;
std::map<std::string, KernelBuilder>& overrides() {
  static std::map<std::string, KernelBuilder> o;
  return o;
}

}  // namespace

KernelBuilder kernel_builder(const std::string& op) {
  {
    std::lock_guard<std::mutex> lock(overrides_mu);
    auto it = overrides().find(op);
    if (it != overrides().end()) return it->second;
  }
  auto it = kernel_table().find(op);
  return it == kernel_table().end() ? nullptr : it->second;
}

KernelOverride::KernelOverride(std::string op, KernelBuilder builder) : op_(std::move(op)) {
  std::lock_guard<std::mutex> lock(overrides_mu);
  auto it = overrides().find(op_);
  if (it != overrides().end()) previous_ = it->second;
  overrides()[op_] = std::move(builder);
}

KernelOverride::~KernelOverride() {
  std::lock_guard<std::mutex> lock(overrides_mu);
  if (previous_)
    overrides()[op_] = std::move(previous_);
  else
    overrides().erase(op_);
}

}  // namespace pb::layers
