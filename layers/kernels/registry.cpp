// The op table: one line per IR op, one kernel file per op (docs/ir.md lists them).
#include "kernel.h"

namespace pb::layers {

std::unique_ptr<Kernel> build_dense(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_activation(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_softmax(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_identity(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_flatten(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_reshape(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_add(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_sub(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_mul(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_div(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_concat(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_affine(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_conv(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_pool(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_batchnorm(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_layernorm(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_rmsnorm(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_embedding(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_transpose(const ir::Node&, CompileContext&);
std::unique_ptr<Kernel> build_pad(const ir::Node&, CompileContext&);

const std::map<std::string, KernelBuilder>& kernel_table() {
  static const std::map<std::string, KernelBuilder> table = {
      {"Dense", build_dense},
      {"Activation", build_activation},
      {"Softmax", build_softmax},
      {"Identity", build_identity},
      {"Flatten", build_flatten},
      {"Reshape", build_reshape},
      {"Add", build_add},
      {"Sub", build_sub},
      {"Mul", build_mul},
      {"Div", build_div},
      {"Concat", build_concat},
      {"Affine", build_affine},
      {"Conv", build_conv},
      {"Pool", build_pool},
      {"BatchNorm", build_batchnorm},
      {"LayerNorm", build_layernorm},
      {"RMSNorm", build_rmsnorm},
      {"Embedding", build_embedding},
      {"Transpose", build_transpose},
      {"Pad", build_pad},
  };
  return table;
}

}  // namespace pb::layers
