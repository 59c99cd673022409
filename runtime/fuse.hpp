// kiln::jit's fusion pass over a recorded trace (runtime/trace.hpp). It works on launches of any
// family through two properties of the family descriptor (codegen/family.hpp):
// - an elementwise producer (map) whose output is an intermediate read only as itself or a
//   broadcast of itself is inlined into each consumer whose expression slot reads its inputs
//   pointwise (map: the fused DAG becomes one kernel; reduce: the producers become the reduction's
//   prologue), its operands' strides carried into the consumer's index space (broadcasts,
//   transposes and slices of the producer's inputs stay index math);
// - a launch that repeats an earlier one (same kernel, operands and layout, its operands unchanged
//   in between) is dropped and its readers read the earlier result (common subexpressions);
// - a one-element constant the function uploaded (a scalar operand) becomes a literal;
// - softmax and rms_norm written op by op (max, x - max, exp, sum, divide; sum of squares, rsqrt)
//   become one kernel of the rows family, what computes x its prologue, what follows its epilogue;
//   the rms_norm of x - sum(x) / n, that mean read by nothing else, becomes a layer_norm of x;
// - the one elementwise consumer of a kernel with an epilogue slot (contract: matmul, dot; rows;
//   reduce, when the consumer reads no other tensor) moves into its epilogue
//   (Family::fuse_epilogue), so gelu(a @ b + bias) + residual is one kernel;
// - last, elementwise kernels over the same shape and layout class become one map kernel with
//   several results when the later one can move to the earlier one's place (what it reads is not
//   written in between, what it writes not read or written in between) and the two stay within
//   kMaxMapInputs operands and kMaxMapOutputs results (runtime/fuse_siblings.cpp);
// then the fused expression is simplified (codegen: constants folded, x+0, x*1, x/1, -(-x), casts
// to the same dtype), unused operands dropped, and launches whose results nothing reads removed.
// A producer is not inlined when its inputs may change between it and the consumer (a buffer
// written again in between), when the consumer would exceed kMaxMapInputs operands, or when the
// consumer reads it through another layout (a reshape): it then runs as its own kernel.
#pragma once

#include <string>
#include <vector>

#include "runtime/trace.hpp"

namespace kiln {

struct FusionReport {
  int launches_before = 0;
  int launches_after = 0;
  int merged = 0;            // launches that repeated an earlier one, dropped
  int inlined = 0;           // producers inlined into consumers
  int constants_folded = 0;  // scalar operands made literals
  int epilogues = 0;         // consumers moved into a contraction's epilogue
  int rows = 0;              // softmax / rms_norm / layer_norm written op by op recognised as one rows kernel
  int siblings = 0;          // elementwise kernels that became more results of an earlier one
  std::vector<std::string> notes;  // why a consumer stayed out of an epilogue
};

// Fuses |program| in place. |outputs|: the trace buffers the function returns (never removed).
FusionReport fuse(TraceProgram& program, const std::vector<int>& outputs);

// The last pass of fuse(): sibling maps become one kernel with several results; returns how many
// launches joined an earlier one (runtime/fuse_siblings.cpp).
int merge_sibling_maps(TraceProgram& program);

// One line per launch: "#2 map_f32_f32_1a2b3c4d (exp): [4096] <- in0 %1, in1 const -> %3\n   expr: ...".
std::string describe_program(const TraceProgram& program);

}  // namespace kiln
