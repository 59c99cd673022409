// cuBLASLt for contractions on CUDA: loaded at run time, one handle and workspace per stream, the
// row-major product computed as the column-major C^T = B^T A^T with transposes and leading
// dimensions taken from the operands' strides (no copies).
#include "runtime/cuda/cublaslt.hpp"

#include <dlfcn.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>

#include <fmt/format.h>

#include "core/error.hpp"
#include "runtime/device_state.hpp"
#include "runtime/cuda/cuda_device.hpp"
#include "runtime/cuda/cuda_driver.hpp"
#include "runtime/cuda/cuda_interop.hpp"
#include "runtime/cuda/cuda_stream.hpp"

namespace kiln::cuda {

namespace {

constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;  // NVIDIA's advice for Hopper

void check_lt(cublasStatus_t status, const char* call, const std::string& device) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail(status == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::out_of_memory : ErrorCode::internal,
         fmt::format("{}: {} failed with cublasStatus_t {}", device, call, int(status)));
}

// The stored form of a row-major view [rows, cols] with strides (s_rows, s_cols), as a
// column-major operand whose op(X) is the view's transpose ([cols, rows]).
bool transposed_view(std::int64_t rows, std::int64_t cols, std::int64_t s_rows, std::int64_t s_cols, LtOperand* o) {
  if (cols == 1 || s_cols == 1) {  // row-major: its transpose is column-major [cols, rows]
    o->op = CUBLAS_OP_N;
    o->rows = std::uint64_t(cols);
    o->cols = std::uint64_t(rows);
    o->ld = std::max<std::int64_t>(rows == 1 ? cols : s_rows, cols);
    return rows == 1 || s_rows >= cols;
  }
  if (rows == 1 || s_rows == 1) {  // column-major [rows, cols]: transpose it
    o->op = CUBLAS_OP_T;
    o->rows = std::uint64_t(rows);
    o->cols = std::uint64_t(cols);
    o->ld = std::max<std::int64_t>(s_cols, rows);
    return s_cols >= rows;
  }
  return false;
}

// The largest power of two (at most 256) dividing |address|.
std::uint32_t address_alignment(std::uint64_t address) {
  std::uint32_t a = 256;
  while (a > 1 && address % a != 0) a /= 2;
  return a;
}

}  // namespace

const Lt* load_cublaslt(std::string* why) {
  static std::once_flag once;
  static Lt lt;
  static std::string reason;
  std::call_once(once, [] {
    void* lib = nullptr;
    // cuBLASLt 13 needs a CUDA 13 driver; a 12.x driver takes the 12 library first.
    const int drv = driver_version();
    const bool new_driver = drv == 0 || drv >= 13000;
    for (const char* name : {new_driver ? "libcublasLt.so.13" : "libcublasLt.so.12",
                             new_driver ? "libcublasLt.so.12" : "libcublasLt.so.13", "libcublasLt.so"})
      if ((lib = ::dlopen(name, RTLD_NOW | RTLD_LOCAL))) {
        lt.library = name;
        break;
      }
    if (!lib) {
      reason = "libcublasLt.so (.13, .12) not found: install the CUDA toolkit's cuBLAS";
      return;
    }
    bool ok = true;
#define KILN_LT_LOAD(name)                                                       \
  lt.name = reinterpret_cast<decltype(lt.name)>(::dlsym(lib, #name));             \
  if (!lt.name) {                                                                 \
    ok = false;                                                                   \
    reason = fmt::format("{} has no {}", lt.library, #name);                      \
  }
    KILN_CUBLASLT_SYMBOLS(KILN_LT_LOAD)
#undef KILN_LT_LOAD
    if (ok) lt.version = lt.cublasLtGetVersion();
    else lt.cublasLtMatmul = nullptr;
  });
  if (!lt.cublasLtMatmul) {
    if (why) *why = reason;
    return nullptr;
  }
  return &lt;
}

bool lt_operands(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t a_m, std::int64_t a_k, std::int64_t b_k,
                 std::int64_t b_n, LtOperand* lt_a, LtOperand* lt_b) {
  // C^T [n, m] = B^T [n, k] x A^T [k, m]: B^T is the transposed view of b [k, n], A^T of a [m, k].
  return transposed_view(k, n, b_k, b_n, lt_a) && transposed_view(m, k, a_m, a_k, lt_b);
}

void CudaStream::release_lt(LtState& s, Device& device) {
  if (s.handle) {
    if (const Lt* lt = load_cublaslt(nullptr)) lt->cublasLtDestroy(static_cast<cublasLtHandle_t>(s.handle));
    s.handle = nullptr;
  }
  if (s.workspace) {
    driver().cuMemFree(s.workspace);
    detail::device_state(device).unreserve(s.workspace_bytes);
  }
  s.workspace = 0;
  s.workspace_bytes = 0;
}

bool CudaDevice::library_gemm(Stream& stream, const LibraryGemm& g, std::string* why) {
  if (const char* env = std::getenv("KILN_CUBLASLT"); env && std::strcmp(env, "0") == 0) {
    *why = "KILN_CUBLASLT=0";
    return false;
  }
  const Lt* lt = load_cublaslt(why);
  if (!lt) return false;
  auto* cs = dynamic_cast<CudaStream*>(&stream);
  if (!cs || &cs->device() != this) {
    *why = "the stream is not this device's";
    return false;
  }
  cudaDataType_t type, out_type;
  cublasComputeType_t compute;
  cudaDataType_t scale;
  switch (g.dtype) {
    case DType::f32:  // TF32 only when asked
      type = CUDA_R_32F, compute = g.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, scale = CUDA_R_32F;
      break;
    case DType::f16: type = CUDA_R_16F, compute = CUBLAS_COMPUTE_32F, scale = CUDA_R_32F; break;
    case DType::bf16: type = CUDA_R_16BF, compute = CUBLAS_COMPUTE_32F, scale = CUDA_R_32F; break;
    case DType::f64: type = CUDA_R_64F, compute = CUBLAS_COMPUTE_64F, scale = CUDA_R_64F; break;
    case DType::s8: type = CUDA_R_8I, compute = CUBLAS_COMPUTE_32I, scale = CUDA_R_32I; break;  // IMMA
    default:
      *why = fmt::format("cuBLASLt path takes f16, bf16, f32, f64 and s8 -> s32, not {}", dtype_name(g.dtype));
      return false;
  }
  out_type = type;
  if (g.out_dtype != g.dtype) {
    if (g.dtype != DType::s8 || g.out_dtype != DType::s32) {
      *why = fmt::format("cuBLASLt path: {} operands into {}", dtype_name(g.dtype), dtype_name(g.out_dtype));
      return false;
    }
    out_type = CUDA_R_32I;
  }
  if (g.batch > std::int64_t(INT32_MAX)) {
    *why = "more batches than cuBLASLt counts (int32)";
    return false;
  }
  LtOperand oa, ob;
  if (!lt_operands(g.m, g.n, g.k, g.a_m, g.a_k, g.b_k, g.b_n, &oa, &ob)) {
    *why = "an operand has unit stride along neither axis";
    return false;
  }
  bind();
  const std::lock_guard lt_lock(cs->lt_mutex());  // the handle and workspace: one contraction at a time
  CudaStream::LtState& st = cs->lt_state();
  const std::string dev = id();
  if (!st.create_failed.empty()) {
    *why = st.create_failed;
    return false;
  }
  if (!st.handle) {
    cublasLtHandle_t h = nullptr;
    if (const cublasStatus_t s = lt->cublasLtCreate(&h); s != CUBLAS_STATUS_SUCCESS) {
      // e.g. NOT_INITIALIZED: the library does not match the driver. Kiln's own kernel runs.
      st.create_failed = fmt::format("cublasLtCreate failed with cublasStatus_t {} ({})", int(s), lt->library);
      *why = st.create_failed;
      return false;
    }
    st.handle = h;
  }
  if (!st.workspace) {
    // Under the device's memory cap (kiln::set_memory_limit) like any buffer. Without room under it
    // or memory, cuBLASLt picks algorithms that need no workspace.
    detail::DeviceState& state = detail::device_state(*this);
    if (state.try_reserve(kWorkspaceBytes)) {
      if (driver().cuMemAlloc(&st.workspace, kWorkspaceBytes) == CUDA_SUCCESS) {
        st.workspace_bytes = kWorkspaceBytes;
      } else {
        st.workspace = 0, st.workspace_bytes = 0;
        state.unreserve(kWorkspaceBytes);
      }
    }
  }
  // C^T [n, m] = op(B stored) x op(A stored): cuBLASLt's A is Kiln's b, its B Kiln's a.
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  auto cleanup = [&] {
    if (pref) lt->cublasLtMatmulPreferenceDestroy(pref);
    if (lc) lt->cublasLtMatrixLayoutDestroy(lc);
    if (lb) lt->cublasLtMatrixLayoutDestroy(lb);
    if (la) lt->cublasLtMatrixLayoutDestroy(la);
    if (desc) lt->cublasLtMatmulDescDestroy(desc);
  };
  try {
    check_lt(lt->cublasLtMatmulDescCreate(&desc, compute, scale), "cublasLtMatmulDescCreate", dev);
    check_lt(lt->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &oa.op, sizeof oa.op),
             "cublasLtMatmulDescSetAttribute(TRANSA)", dev);
    check_lt(lt->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &ob.op, sizeof ob.op),
             "cublasLtMatmulDescSetAttribute(TRANSB)", dev);
    if (g.bias) {  // D = sum + bias in the compute type, the bias of D's type along D's rows (Kiln's N)
      const std::uint32_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      const void* bias = reinterpret_cast<const void*>(g.bias);
      check_lt(lt->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
               "cublasLtMatmulDescSetAttribute(EPILOGUE)", dev);
      check_lt(lt->cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
               "cublasLtMatmulDescSetAttribute(BIAS_POINTER)", dev);
    }
    check_lt(lt->cublasLtMatrixLayoutCreate(&la, type, oa.rows, oa.cols, oa.ld), "cublasLtMatrixLayoutCreate(A)", dev);
    check_lt(lt->cublasLtMatrixLayoutCreate(&lb, type, ob.rows, ob.cols, ob.ld), "cublasLtMatrixLayoutCreate(B)", dev);
    check_lt(lt->cublasLtMatrixLayoutCreate(&lc, out_type, std::uint64_t(g.n), std::uint64_t(g.m), g.n),
             "cublasLtMatrixLayoutCreate(C)", dev);
    if (g.batch > 1) {
      const std::int32_t count = std::int32_t(g.batch);
      const std::int64_t strides[3] = {g.b_batch, g.a_batch, g.out_batch};
      cublasLtMatrixLayout_t ls[3] = {la, lb, lc};
      for (int i = 0; i < 3; ++i) {
        check_lt(lt->cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
                 "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT)", dev);
        check_lt(lt->cublasLtMatrixLayoutSetAttribute(ls[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &strides[i],
                                                      sizeof strides[i]),
                 "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET)", dev);
      }
    }
    check_lt(lt->cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate", dev);
    const std::uint64_t ws = st.workspace_bytes;
    check_lt(lt->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
             "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)", dev);
    // Split-K partial sums only in the compute type (f32 for f16/bf16): INPLACE and OUTPUT_TYPE
    // would round each partial sum to the output dtype, against "summed in f32, rounded once".
    const std::uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    check_lt(lt->cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes,
                                                      sizeof schemes),
             "cublasLtMatmulPreferenceSetAttribute(REDUCTION_SCHEME_MASK)", dev);
    // The operands' real alignment (a view may start anywhere): cuBLASLt assumes 256 bytes unless
    // told, and an algorithm that needs more than a pointer has fails or reads wrongly.
    const std::pair<cublasLtMatmulPreferenceAttributes_t, std::uint64_t> aligns[] = {
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, g.b},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, g.a},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, g.out},
        {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, g.out}};
    for (const auto& [attr, address] : aligns) {
      const std::uint32_t bytes = address_alignment(address);
      check_lt(lt->cublasLtMatmulPreferenceSetAttribute(pref, attr, &bytes, sizeof bytes),
               "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)", dev);
    }
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    const cublasStatus_t hs = lt->cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(st.handle), desc, la, lb,
                                                                 lc, lc, pref, 1, &heuristic, &found);
    if (hs != CUBLAS_STATUS_SUCCESS || found == 0) {
      *why = fmt::format("cuBLASLt has no algorithm for this problem (status {})", int(hs));
      cleanup();
      return false;
    }
    const float one32 = 1, zero32 = 0;
    const double one64 = 1, zero64 = 0;
    const std::int32_t one_i = 1, zero_i = 0;
    const void* alpha = g.dtype == DType::f64 ? static_cast<const void*>(&one64)
                        : g.dtype == DType::s8 ? static_cast<const void*>(&one_i)
                                               : static_cast<const void*>(&one32);
    const void* beta = g.dtype == DType::f64 ? static_cast<const void*>(&zero64)
                       : g.dtype == DType::s8 ? static_cast<const void*>(&zero_i)
                                              : static_cast<const void*>(&zero32);
    const cublasStatus_t ms =
        lt->cublasLtMatmul(static_cast<cublasLtHandle_t>(st.handle), desc, alpha, reinterpret_cast<const void*>(g.b), la,
                           reinterpret_cast<const void*>(g.a), lb, beta, reinterpret_cast<void*>(g.out), lc,
                           reinterpret_cast<void*>(g.out), lc, &heuristic.algo, reinterpret_cast<void*>(st.workspace),
                           st.workspace_bytes, reinterpret_cast<cudaStream_t>(cs->native()));
    if (ms == CUBLAS_STATUS_NOT_SUPPORTED || ms == CUBLAS_STATUS_ARCH_MISMATCH) {  // Kiln's kernel then
      *why = fmt::format("cublasLtMatmul does not support this problem here (status {})", int(ms));
      cleanup();
      return false;
    }
    if (ms == CUBLAS_STATUS_EXECUTION_FAILED || ms == CUBLAS_STATUS_INTERNAL_ERROR) {
      // A fault of the context (an earlier kernel's sticky error) is the device lost, as on every
      // other call; anything else is the library's failure, and Kiln's kernel writes the output.
      const CUresult cr = driver().cuCtxSynchronize();
      if (cr != CUDA_SUCCESS && is_sticky(cr))
        raise(cr, "cuCtxSynchronize (after cublasLtMatmul)", __FILE__, __LINE__, health());
      *why = fmt::format("cublasLtMatmul failed with cublasStatus_t {}", int(ms));
      cleanup();
      return false;
    }
    check_lt(ms, "cublasLtMatmul", dev);
  } catch (...) {
    cleanup();
    throw;
  }
  cleanup();
  return true;
}

}  // namespace kiln::cuda
