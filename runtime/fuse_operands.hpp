// Internal to kiln::jit's fusion passes (runtime/fuse.cpp, runtime/fuse_siblings.cpp): an
// expression built over the operands of the launches it fuses, each distinct operand (address,
// strides over the launch's shape, dtype) one input of it.
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/expr.hpp"
#include "runtime/tensor.hpp"

namespace kiln {

struct FusedOperand {
  std::uint64_t address;
  Shape strides;
  DType dtype;
};

struct OperandExpr {
  Expr e;
  std::vector<FusedOperand> ops;
  // The input reading |o|: the one already made for an equal operand, else a new one.
  NodeId slot(const FusedOperand& o) {
    for (std::size_t i = 0; i < ops.size(); ++i)
      if (ops[i].address == o.address && ops[i].strides == o.strides && ops[i].dtype == o.dtype)
        return e.input(int(i), o.dtype);
    ops.push_back(o);
    return e.input(int(ops.size() - 1), o.dtype);
  }
};

}  // namespace kiln
