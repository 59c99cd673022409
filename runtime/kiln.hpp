// Kiln's host API in one header: #include <kiln/kiln.hpp> (installed as include/kiln/kiln.hpp; in
// the build tree as <build>/include/kiln/kiln.hpp). It declares kiln::Error and the error codes,
// dtypes and the half/bfloat16 host types, devices and streams, tensors with typed host I/O, every
// op (with operators and creation helpers), reductions, fused maps over parsed expressions, and interop (DLPack,
// caller-owned memory and streams). Generated kernel headers (kiln_add_kernels) include what they
// need themselves.
#pragma once

#include "codegen/expr.hpp"
#include "core/error.hpp"
#include "core/half.hpp"
#include "runtime/contract.hpp"
#include "runtime/conv.hpp"
#include "runtime/device.hpp"
#include "runtime/host.hpp"
#include "runtime/interop.hpp"
#include "runtime/jit_function.hpp"
#include "runtime/ops.hpp"
#include "runtime/reduce.hpp"
#include "runtime/rows.hpp"
#include "runtime/scan.hpp"
#include "runtime/tensor.hpp"
