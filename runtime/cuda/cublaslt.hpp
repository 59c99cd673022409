// Internal: cuBLASLt, loaded at run time like the driver (libcublasLt.so.13, .12, then .so; never
// linked), so the runtime loads and runs without it and says why when it is absent. Contractions
// on CUDA (runtime/contract.cpp) run through it when it takes the problem; otherwise through
// Kiln's own kernel.
#pragma once

#include <cublasLt.h>

#include <cstdint>
#include <string>

#include "core/dtype.hpp"

namespace kiln::cuda {

// Function pointers of the cuBLASLt entry points Kiln uses (one X-macro list).
#define KILN_CUBLASLT_SYMBOLS(X)                                                                       \
  X(cublasLtGetVersion) X(cublasLtCreate) X(cublasLtDestroy)                                          \
  X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy) X(cublasLtMatmulDescSetAttribute)           \
  X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy) X(cublasLtMatrixLayoutSetAttribute)     \
  X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy)                                 \
  X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmul)

struct Lt {
#define KILN_LT_MEMBER(name) decltype(&::name) name = nullptr;
  KILN_CUBLASLT_SYMBOLS(KILN_LT_MEMBER)
#undef KILN_LT_MEMBER
  std::size_t version = 0;
  std::string library;  // the file that was opened
};

// Loads cuBLASLt once per process; nullptr with |why| when it cannot be used.
const Lt* load_cublaslt(std::string* why);

// One column-major operand of cublasLtMatmul: its transpose flag, rows and columns as stored, and
// leading dimension, for a row-major view with element strides (s_rows, s_cols).
struct LtOperand {
  cublasOperation_t op = CUBLAS_OP_N;
  std::uint64_t rows = 0, cols = 0;
  std::int64_t ld = 0;
};

// A row-major [M, N] = [M, K] x [K, N] product as cuBLASLt's column-major C^T = B^T A^T: |lt_a|
// from b (the stored form of B^T), |lt_b| from a. False when an operand has unit stride along
// neither of its axes (then no leading dimension describes it).
bool lt_operands(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t a_m, std::int64_t a_k, std::int64_t b_k,
                 std::int64_t b_n, LtOperand* lt_a, LtOperand* lt_b);

}  // namespace kiln::cuda
