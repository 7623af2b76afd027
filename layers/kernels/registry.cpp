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
  };
  return table;
}

}  // namespace pb::layers
