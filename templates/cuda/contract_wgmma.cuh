// Contractions on Hopper's tensor cores (sm_90a only; codegen/families/contract.cpp, path "wgmma"):
// f16 or bf16 operands, f32 accumulators, wgmma.mma_async m64nNk16 (N = 128 or 256) reading both
// operands from shared memory, the operands brought in by the TMA (cp.async.bulk.tensor) through a
// ring of kWgStages stages, a warp-specialized block of 128 (1 + C) threads (WgTile<C, N>: C = 2,
// N = 128: 128 x 128 output tiles; C = 1: 64 x 128 tiles for M <= 64; C = 2, N = 256: 128 x 256
// tiles for large M and N, with setmaxnreg moving registers from the producer to the consumers):
//   warpgroup 0, the producer: one thread waits for a free stage (its "empty" mbarrier), arms the
//     stage's "full" mbarrier with the bytes to come and issues the stage's tensor loads (the TMA
//     fills what lies outside the operand with zeros: partial tiles and the K tail need no code);
//   warpgroups 1 .. C, the consumers: each owns 64 rows of the 64 C x N output tile, waits for a
//     full stage, issues four k16 steps of wgmma over it as one group, and frees the previous
//     stage once only this group is in flight (each warp's lane 0 arrives on "empty": 4 C
//     arrivals), then applies the contraction family's epilogue functor (R::put) to its N / 2
//     accumulators per thread.
// The tiles of the grid are walked by a grid-stride loop; producer and consumers count the same
// k steps, so stage s = step % kWgStages and the mbarrier phase parity = (step / kWgStages) & 1.
//
// Shared memory (dynamic, WgTile<C, N>::kSharedBytes, the stages 1024-byte aligned): per stage a (8 C
// KiB) then b (N / 8 KiB), written by the TMA with the 128-byte swizzle (16-byte chunk c of 128-byte
// row r stored at chunk c ^ (r % 8)), and read by wgmma through matrix descriptors in that mode:
//   K-major operand (its k axis contiguous; a as [m][k], b as [n][k]): one box of 64 k x rows,
//     row r at 128 r bytes: the canonical layout ((8, rows / 8), (8 elements, 2)) with 8-row groups
//     1024 bytes apart (SBO); a k16 step starts 32 bytes further into the rows.
//   MN-major operand (a's m or b's n contiguous: imm-trans 1): boxes of 64 (m or n) x 64 k,
//     each k row 128 bytes; the canonical layout ((64 elements, 2 blocks), (8, k / 8)) with the
//     64-wide blocks 8 KiB apart (LBO) and 8-k groups 1024 bytes apart (SBO); a k16 step starts
//     2048 bytes further.
// Descriptor (PTX ISA, "Matrix Descriptor Format"): bits 0-13 start address >> 4, 16-29 LBO >> 4,
// 32-45 SBO >> 4, 49-51 base offset (0: the stages are 1024-byte aligned), 62-63 swizzle (1: 128B).
// Accumulators (PTX ISA, "wgmma .m64nNk16 register fragment D"): warp w of the warpgroup, lane
// 4 g + t, register i < N / 2 holds (m, n) = (16 w + g + 8 ((i / 2) % 2), 8 (i / 4) + 2 t + i % 2).
//
// The tensor maps (CUtensorMap, 128 bytes) are made at launch from LaunchStep::tensor_maps (the
// plan's requests; the driver's cuTensorMapEncodeTiled) into KilnWgmmaParams: dim 0 the operand's
// contiguous axis, dim 1 its other matrix axis, then its batch dimensions with a nonzero stride,
// innermost first. Summation: the tensor cores' order and rounding per k16 step, the steps in k
// order; deterministic, not bit-identical to the mma.sync or fma kernels.
#ifndef KILN_TEMPLATES_CUDA_CONTRACT_WGMMA_CUH
#define KILN_TEMPLATES_CUDA_CONTRACT_WGMMA_CUH

#include "cuda/contract.cuh"

namespace kiln {

constexpr int kWgTileK = 64, kWgStages = 4;
// The tile table's rows: C consumer warpgroups of 64 rows each, N columns (C = 2, N = 128: 128 x
// 128 tiles, 384 threads; C = 1: 64 x 128, 256 threads, for M <= 64; C = 2, N = 256: 128 x 256,
// 384 threads, for large M and N; codegen/families/contract_variants.cpp chooses).
template <int C, int N = 128>
struct WgTile {
  static constexpr int kM = 64 * C, kN = N, kThreads = 128 * (1 + C), kAcc = N / 2;  // accumulators per thread
  static constexpr unsigned kABytes = 8192u * C;                  // a's part of a stage: 64 C rows x 64 k
  static constexpr unsigned kBBytes = unsigned(N) * kWgTileK * 2;  // b's: N rows x 64 k
  static constexpr unsigned kStageBytes = kABytes + kBBytes;
  static constexpr unsigned kSharedBytes = kWgStages * kStageBytes + 2 * kWgStages * 8 + 1024;  // + barriers, alignment
};
constexpr unsigned kWgSharedBytes = WgTile<2>::kSharedBytes, kWgSharedBytesM64 = WgTile<1>::kSharedBytes,
                   kWgSharedBytesN256 = WgTile<2, 256>::kSharedBytes;

// cuda.h's CUtensorMap: 128 opaque bytes, 64-byte aligned.
struct __align__(64) KilnTensorMap {
  unsigned long long opaque[16];
};

// The kernel ABI (codegen/families/contract.cpp).
struct KilnWgmmaParams {
  KilnContractParams c;
  long long layout;  // bit 0: a is M-major (its m axis contiguous); bit 1: b is N-major
  long long reserved;
  KilnTensorMap a_map, b_map;
};
static_assert(sizeof(KilnWgmmaParams) == 640, "KilnWgmmaParams must match codegen/families/contract.cpp");

#if !defined(__CUDA_ARCH__)
// Compiled for the host (tests/test_cuda_wgmma_host.cpp runs the template on host threads: these
// are the instructions as the PTX ISA defines them; NVRTC, the only compiler of these kernels,
// always defines __CUDA_ARCH__).
unsigned char* contract_wgmma_shared_on_host();
unsigned contract_wgmma_address_on_host(const void* p);
void contract_mbar_init_on_host(unsigned bar, unsigned count);
void contract_mbar_arrive_on_host(unsigned bar, unsigned expect_bytes);
bool contract_mbar_test_on_host(unsigned bar, unsigned parity);
void contract_tma_load_on_host(unsigned dst, const KilnTensorMap* map, const int* coords, int rank, unsigned bar);
void contract_wgmma_on_host(float* d, int n, unsigned long long a, unsigned long long b, bool accumulate, bool a_mn,
                            bool b_mn, bool bf16);
void contract_wgmma_commit_on_host();
void contract_wgmma_wait_on_host(int pending);
#endif

__device__ __forceinline__ unsigned char* contract_wgmma_shared() {
#if defined(__CUDA_ARCH__)
  extern __shared__ __align__(128) unsigned char kiln_wgmma_shared[];
  const unsigned long long at = reinterpret_cast<unsigned long long>(kiln_wgmma_shared);
  const unsigned pad = (1024u - (unsigned)__cvta_generic_to_shared(kiln_wgmma_shared) % 1024u) % 1024u;
  return reinterpret_cast<unsigned char*>(at + pad);
#else
  return contract_wgmma_shared_on_host();
#endif
}

__device__ __forceinline__ unsigned contract_wgmma_address(const void* p) {
#if defined(__CUDA_ARCH__)
  return (unsigned)__cvta_generic_to_shared(p);
#else
  return contract_wgmma_address_on_host(p);
#endif
}

__device__ __forceinline__ void contract_mbar_init(unsigned bar, unsigned count) {
#if defined(__CUDA_ARCH__)
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
#else
  contract_mbar_init_on_host(bar, count);
#endif
}

// The initialized barriers made visible to the other threads and to the TMA (the async proxy).
__device__ __forceinline__ void contract_mbar_fence_init() {
#if defined(__CUDA_ARCH__)
  asm volatile("fence.mbarrier_init.release.cluster;\nfence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// This thread's generic-proxy writes of shared memory (st.shared) made visible to the async proxy
// (wgmma's operand reads) once the thread's next release (its mbarrier arrival) is acquired.
__device__ __forceinline__ void contract_fence_proxy_async() {
#if defined(__CUDA_ARCH__)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// An arrival; with |expect_bytes| > 0 the phase also waits for that many bytes of TMA loads.
__device__ __forceinline__ void contract_mbar_arrive(unsigned bar, unsigned expect_bytes) {
#if defined(__CUDA_ARCH__)
  if (expect_bytes)
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(expect_bytes) : "memory");
  else
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
#else
  contract_mbar_arrive_on_host(bar, expect_bytes);
#endif
}

// An arrival on |bar| once this thread's earlier cp.async copies have landed (.noinc: one of the
// arrivals the barrier was initialized to expect).
__device__ __forceinline__ void contract_cp_async_arrive(unsigned bar) {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
#else
  contract_land_copies_on_host(~0ull);  // (the host lands them here)
  contract_mbar_arrive_on_host(bar, 0);
#endif
}

// Waits until the phase of parity |parity| has completed (a fresh barrier counts its phase 1 done).
__device__ __forceinline__ void contract_mbar_wait(unsigned bar, unsigned parity) {
#if defined(__CUDA_ARCH__)
  unsigned done = 0;
  do {
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
  } while (!done);
#else
  while (!contract_mbar_test_on_host(bar, parity)) {
  }
#endif
}

// A box of |map| at |coords| (rank 2..5, dim 0 first) into shared memory at |dst|, completing its
// bytes on mbarrier |bar|.
__device__ __forceinline__ void contract_tma_load(unsigned dst, const KilnTensorMap* map, const int* c, int rank, unsigned bar) {
#if defined(__CUDA_ARCH__)
  const unsigned long long m = reinterpret_cast<unsigned long long>(map);
  if (rank == 2)
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n"
                 ::"r"(dst), "l"(m), "r"(c[0]), "r"(c[1]), "r"(bar) : "memory");
  else if (rank == 3)
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], [%5];\n"
                 ::"r"(dst), "l"(m), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(bar) : "memory");
  else if (rank == 4)
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
                 ::"r"(dst), "l"(m), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(bar) : "memory");
  else
    asm volatile("cp.async.bulk.tensor.5d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4, %5, %6}], [%7];\n"
                 ::"r"(dst), "l"(m), "r"(c[0]), "r"(c[1]), "r"(c[2]), "r"(c[3]), "r"(c[4]), "r"(bar) : "memory");
#else
  contract_tma_load_on_host(dst, map, c, rank, bar);
#endif
}

// A shared-memory matrix descriptor in the 128-byte swizzle mode.
__device__ __forceinline__ unsigned long long contract_wgmma_desc(unsigned address, unsigned lbo, unsigned sbo) {
  return (unsigned long long)((address & 0x3FFFFu) >> 4) | (unsigned long long)((lbo & 0x3FFFFu) >> 4) << 16 |
         (unsigned long long)((sbo & 0x3FFFFu) >> 4) << 32 | 1ull << 62;
}

__device__ __forceinline__ void contract_wgmma_fence() {
#if defined(__CUDA_ARCH__)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
// The wgmmas issued since the last commit become one group.
__device__ __forceinline__ void contract_wgmma_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#else
  contract_wgmma_commit_on_host();
#endif
}
// Waits until at most |PENDING| committed groups of this warp are still in flight.
template <int PENDING>
__device__ __forceinline__ void contract_wgmma_wait() {
#if defined(__CUDA_ARCH__)
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(PENDING) : "memory");
#else
  contract_wgmma_wait_on_host(PENDING);
#endif
}

// A warpgroup's register budget changed (setmaxnreg; sm_90a): the producer gives registers back,
// the consumers take them, so a consumer thread holds 128 accumulators (the 128 x 256 tile) and a
// fused epilogue with no spills. 384 threads at 168 (the launch's count) = 128 x 56 + 256 x 224
// (ptxas allocates each side within its count: at 40 the producer's tile arithmetic spills; without
// setmaxnreg a GELU + residual epilogue spills at 168).
template <int REGS, bool INC>
__device__ __forceinline__ void contract_set_max_registers() {
#if defined(__CUDA_ARCH__)
  if (INC) asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGS));
  else asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGS));
#endif
}

// The accumulator operands of an m64nNk16 wgmma: N / 2 registers per thread (N = 128 or 256).
#define KILN_WGMMA_D_REGS_64 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define KILN_WGMMA_D_REGS_128 \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
#define KILN_WGMMA_D_OPERANDS_64 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define KILN_WGMMA_D_OPERANDS_128 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
  "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
  "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
  "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
  "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
  "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
  "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
  "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
  "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
  "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
  "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), \
  "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), \
  "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), \
  "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), \
  "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), \
  "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
#define KILN_WGMMA_STEP(SHAPE, REGS, OPERANDS, A, B, SCALE, TYPE, TA, TB)                                      \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " SCALE ", 0;\nwgmma.mma_async.sync.aligned." SHAPE ".f32." TYPE \
               "." TYPE " {" REGS "}, " A ", " B ", p, 1, 1, " TA ", " TB ";\n}\n"                                \
               : OPERANDS                                                                                      \
               : "l"(a), "l"(b), "r"(accumulate))
#define KILN_WGMMA_M64N128K16(TYPE, TA, TB) \
  KILN_WGMMA_STEP("m64n128k16", KILN_WGMMA_D_REGS_64, KILN_WGMMA_D_OPERANDS_64, "%64", "%65", "%66", TYPE, TA, TB)
#define KILN_WGMMA_M64N256K16(TYPE, TA, TB)                                                                  \
  KILN_WGMMA_STEP("m64n256k16", KILN_WGMMA_D_REGS_128, KILN_WGMMA_D_OPERANDS_128, "%128", "%129", "%130", TYPE, \
                  TA, TB)

// The accumulators as defined by an (empty) asm statement: keeps the compiler from moving register
// accesses across wgmma.fence / wait_group (PTX ISA: other accesses of the registers a wgmma in
// flight uses are undefined; ptxas would serialize the wgmmas). No instruction: it may stand while
// a wgmma group is in flight.
template <int R>
__device__ __forceinline__ void contract_wgmma_fence_registers(float (&d)[R]) {
#if defined(__CUDA_ARCH__)
#pragma unroll
  for (int i = 0; i < R; ++i) asm volatile("" : "+f"(d[i])::"memory");
#else
  (void)d;
#endif
}

// d = a b (|accumulate| 0) or d += a b over one m64nNk16 step of the warpgroup (a: 64 x 16, b:
// 16 x N, from their descriptors; N = 2 R, 128 or 256).
template <bool BF16, bool A_MN, bool B_MN, int R>
__device__ __forceinline__ void contract_wgmma_step(float (&d)[R], unsigned long long a, unsigned long long b,
                                                    unsigned accumulate) {
  static_assert(R == 64 || R == 128, "wgmma tiles of 128 or 256 columns");
#if defined(__CUDA_ARCH__)
  // The dtype and the transposes are immediates of the instruction: one asm statement each.
#define KILN_WGMMA_EACH_FORM(STEP)                          \
  if (BF16 && !A_MN && !B_MN) STEP("bf16", "0", "0");       \
  if (BF16 && !A_MN && B_MN) STEP("bf16", "0", "1");        \
  if (BF16 && A_MN && !B_MN) STEP("bf16", "1", "0");        \
  if (BF16 && A_MN && B_MN) STEP("bf16", "1", "1");         \
  if (!BF16 && !A_MN && !B_MN) STEP("f16", "0", "0");       \
  if (!BF16 && !A_MN && B_MN) STEP("f16", "0", "1");        \
  if (!BF16 && A_MN && !B_MN) STEP("f16", "1", "0");        \
  if (!BF16 && A_MN && B_MN) STEP("f16", "1", "1");
  if constexpr (R == 64) {
    KILN_WGMMA_EACH_FORM(KILN_WGMMA_M64N128K16)
  } else {
    KILN_WGMMA_EACH_FORM(KILN_WGMMA_M64N256K16)
  }
#undef KILN_WGMMA_EACH_FORM
#else
  contract_wgmma_on_host(d, R * 2, a, b, accumulate != 0, A_MN, B_MN, BF16);
#endif
}
#undef KILN_WGMMA_M64N256K16
#undef KILN_WGMMA_M64N128K16
#undef KILN_WGMMA_STEP
#undef KILN_WGMMA_D_OPERANDS_128
#undef KILN_WGMMA_D_OPERANDS_64
#undef KILN_WGMMA_D_REGS_128
#undef KILN_WGMMA_D_REGS_64

// The coordinates of batch |bi| in operand |o|'s tensor map (dims 2..): the batch dimensions with
// a nonzero stride, innermost first; returns the map's rank.
__device__ __forceinline__ int contract_wgmma_batch_coords(const KilnContractParams& p, int o, long long bi, int* c) {
  int rank = 2;
  long long rem = bi;
  for (int d = (int)p.batch_rank - 1; d >= 0; --d) {
    const long long s = p.batch_shape[d], q = rem / s, idx = rem - q * s;
    rem = q;
    if (p.batch_strides[o][d] != 0) c[rank++] = (int)idx;
  }
  return rank;
}

// Tile |w| of the grid-stride walk: batch |bi|, then the tiles in groups of kWgGroupM rows of
// tiles, down each column of a group before the next (w consecutive over a group's rows): the tiles
// a wave of blocks computes at once span about kWgGroupM panels of a and (blocks / kWgGroupM) of b
// instead of a few of a and every one of b, so L2 serves more of their stages.
constexpr long long kWgGroupM = 8;
__device__ __forceinline__ void contract_wgmma_tile_at(const KilnContractParams& p, long long w, long long& bi,
                                                       long long& tm, long long& tn) {
  const long long tiles = p.tiles_m * p.tiles_n;
  bi = w / tiles;
  const long long t = w - bi * tiles, span = kWgGroupM * p.tiles_n, g = t / span, first = g * kWgGroupM;
  const long long rows = p.tiles_m - first < kWgGroupM ? p.tiles_m - first : kWgGroupM, r = t - g * span;
  tm = first + r % rows;
  tn = r / rows;
}

// The ring's mbarriers (2 kWgStages of them at |full0| and |empty0|, 8 bytes each), initialized
// by thread 0 before the block's first barrier: full[s] completes on |full_arrivals| arrivals (the
// producer's) and the bytes they announce, empty[s] on 4 C (lane 0 of each consumer warp).
template <int C>
__device__ __forceinline__ void contract_wgmma_init_ring(unsigned full0, unsigned empty0, unsigned full_arrivals) {
  if (threadIdx.x == 0) {
    for (int s = 0; s < kWgStages; ++s) {
      contract_mbar_init(full0 + 8u * s, full_arrivals);
      contract_mbar_init(empty0 + 8u * s, 4 * C);
    }
    contract_mbar_fence_init();
  }
  __syncthreads();
}

// A consumer warpgroup's part of one output tile: its 64 rows (consumer |cw|) of the stages' a
// against all N columns of their b, over |ksteps| k steps from ring position |step| (advanced past
// them): wait for a full stage, four k16 wgmmas committed as one group, then wait until only that
// group is in flight and free the stage the previous group read, so the tensor cores always have
// the next group queued while a stage is handed back; the last stage is freed after all groups
// complete. The first k16 step overwrites the accumulators (scale-d 0): no ordinary register writes
// define them (ptxas would serialize the wgmmas after such writes); |acc| is undefined when
// |ksteps| is 0. |COPIED|: the stages were written by cp.async (generic-proxy writes no producer
// fence covers: each consumer thread fences the proxies after its wait, before its wgmmas read them).
template <bool BF16, bool A_MN, bool B_MN, int C, bool COPIED = false, int N = 128>
__device__ __forceinline__ void contract_wgmma_consume(float (&acc)[N / 2], unsigned base, unsigned full0,
                                                       unsigned empty0, unsigned cw, unsigned lane, long long ksteps,
                                                       unsigned long long& step) {
  typedef WgTile<C, N> T;
  for (long long kt = 0; kt < ksteps; ++kt, ++step) {
    const unsigned s = (unsigned)(step % kWgStages), parity = (unsigned)(step / kWgStages) & 1u;
    const unsigned as = base + s * T::kStageBytes + cw * 8192u, bs = base + s * T::kStageBytes + T::kABytes;
    contract_mbar_wait(full0 + 8u * s, parity);
    if (COPIED) contract_fence_proxy_async();
#if defined(__CUDA_ARCH__)
    __syncwarp();  // the warp converged again for the .aligned instructions
#endif
    contract_wgmma_fence_registers(acc);
    contract_wgmma_fence();
#pragma unroll
    for (unsigned kk = 0; kk < kWgTileK / 16; ++kk) {
      // LBO: the 64-wide blocks of an MN-major operand 8 KiB apart; unused (1) for K-major.
      const unsigned long long da = contract_wgmma_desc(A_MN ? as + 2048u * kk : as + 32u * kk, A_MN ? 8192u : 16u, 1024);
      const unsigned long long db = contract_wgmma_desc(B_MN ? bs + 2048u * kk : bs + 32u * kk, B_MN ? 8192u : 16u, 1024);
      contract_wgmma_step<BF16, A_MN, B_MN>(acc, da, db, kt > 0 || kk > 0 ? 1u : 0u);
    }
    contract_wgmma_commit();
    contract_wgmma_wait<1>();  // the previous step's group has completed: its stage is read
    contract_wgmma_fence_registers(acc);
    if (kt > 0 && lane == 0) contract_mbar_arrive(empty0 + 8u * (unsigned)((step - 1) % kWgStages), 0);
  }
  contract_wgmma_wait<0>();
  contract_wgmma_fence_registers(acc);
  if (ksteps > 0 && lane == 0) contract_mbar_arrive(empty0 + 8u * (unsigned)((step - 1) % kWgStages), 0);
}

template <class R, bool BF16, bool A_MN, bool B_MN, int C, int N>
__device__ void contract_wgmma_run(const KilnWgmmaParams& P, const R r) {
  typedef WgTile<C, N> T;
  const KilnContractParams& p = P.c;
  unsigned char* smem = contract_wgmma_shared();
  const unsigned base = contract_wgmma_address(smem);
  const unsigned full0 = base + kWgStages * T::kStageBytes, empty0 = full0 + 8u * kWgStages;
  const unsigned tid = threadIdx.x, wg = tid / 128u, warp = tid % 128u / 32u, lane = tid % 32u;
  contract_wgmma_init_ring<C>(full0, empty0, 1);
  const long long tiles = p.tiles_m * p.tiles_n, work = p.batch * tiles, ksteps = (p.k + kWgTileK - 1) / kWgTileK;
  unsigned long long step = 0;
  if (wg == 0) {  // the producer
    if (N == 256) contract_set_max_registers<56, false>();
    if (tid != 0) return;
    for (long long w = blockIdx.x; w < work; w += gridDim.x) {
      long long bi, tm, tn;
      contract_wgmma_tile_at(p, w, bi, tm, tn);
      int ca[5], cb[5];
      const int ra = contract_wgmma_batch_coords(p, 0, bi, ca), rb = contract_wgmma_batch_coords(p, 1, bi, cb);
      const int m0 = (int)(tm * T::kM), n0 = (int)(tn * N);
      for (long long kt = 0; kt < ksteps; ++kt, ++step) {
        const unsigned s = (unsigned)(step % kWgStages), parity = (unsigned)(step / kWgStages) & 1u;
        const unsigned full = full0 + 8u * s, as = base + s * T::kStageBytes, bs = as + T::kABytes;
        const int k0 = (int)(kt * kWgTileK);
        contract_mbar_wait(empty0 + 8u * s, parity ^ 1u);
        contract_mbar_arrive(full, T::kStageBytes);
        if (A_MN) {  // C boxes of 64 m x 64 k
          for (int c = 0; c < C; ++c) {
            ca[0] = m0 + 64 * c, ca[1] = k0;
            contract_tma_load(as + 8192u * c, &P.a_map, ca, ra, full);
          }
        } else {  // one box of 64 k x 64 C m
          ca[0] = k0, ca[1] = m0;
          contract_tma_load(as, &P.a_map, ca, ra, full);
        }
        if (B_MN) {  // N / 64 boxes of 64 n x 64 k
          for (int c = 0; c < N / 64; ++c) {
            cb[0] = n0 + 64 * c, cb[1] = k0;
            contract_tma_load(bs + 8192u * c, &P.b_map, cb, rb, full);
          }
        } else {  // one box of 64 k x N n
          cb[0] = k0, cb[1] = n0;
          contract_tma_load(bs, &P.b_map, cb, rb, full);
        }
      }
    }
    return;
  }
  if (N == 256) contract_set_max_registers<224, true>();
  const unsigned cw = wg - 1u;  // this consumer's rows of the tile: 64 cw ..
  for (long long w = blockIdx.x; w < work; w += gridDim.x) {
    long long bi, tm, tn;
    contract_wgmma_tile_at(p, w, bi, tm, tn);
    float acc[T::kAcc];
    contract_wgmma_consume<BF16, A_MN, B_MN, C, false, N>(acc, base, full0, empty0, cw, lane, ksteps, step);
    long long off[3], eoff[2];
    contract_batch_offsets(p, bi, off, eoff);
    const long long row0 = tm * T::kM + 64 * cw + 16 * warp + lane / 4, col0 = tn * N + 2 * (lane % 4);
#pragma unroll
    for (int i = 0; i < T::kAcc; ++i) {
      const long long om = row0 + 8 * ((i / 2) % 2), on = col0 + 8 * (i / 4) + i % 2;
      if (om < p.m && on < p.n) {
        const long long ei[2] = {eoff[0] + om * p.ext_m[0] + on * p.ext_n[0], eoff[1] + om * p.ext_m[1] + on * p.ext_n[1]};
        r.put(p, off[2] + om * p.n + on, ei, ksteps > 0 ? acc[i] : 0.0f);
      }
    }
  }
}

// The operands' layouts (KilnWgmmaParams::layout) as template arguments: each wgmma has its
// transposes as immediates, and the warpgroup's code stays free of divergent branches.
template <class R, bool BF16, int C, int N = 128>
__device__ void contract_wgmma_dispatch(const KilnWgmmaParams& p, const R r) {
  switch (p.layout & 3) {
    case 0: contract_wgmma_run<R, BF16, false, false, C, N>(p, r); break;
    case 1: contract_wgmma_run<R, BF16, true, false, C, N>(p, r); break;
    case 2: contract_wgmma_run<R, BF16, false, true, C, N>(p, r); break;
    default: contract_wgmma_run<R, BF16, true, true, C, N>(p, r); break;
  }
}
template <class R>
__device__ void contract_wgmma_run_bf16(const KilnWgmmaParams& p, const R r) {
  contract_wgmma_dispatch<R, true, 2>(p, r);
}
template <class R>
__device__ void contract_wgmma_run_f16(const KilnWgmmaParams& p, const R r) {
  contract_wgmma_dispatch<R, false, 2>(p, r);
}
template <class R>
__device__ void contract_wgmma_run_bf16_n256(const KilnWgmmaParams& p, const R r) {
  contract_wgmma_dispatch<R, true, 2, 256>(p, r);
}
template <class R>
__device__ void contract_wgmma_run_f16_n256(const KilnWgmmaParams& p, const R r) {
  contract_wgmma_dispatch<R, false, 2, 256>(p, r);
}
template <class R>
__device__ void contract_wgmma_run_bf16_m64(const KilnWgmmaParams& p, const R r) {
  contract_wgmma_dispatch<R, true, 1>(p, r);
}
template <class R>
__device__ void contract_wgmma_run_f16_m64(const KilnWgmmaParams& p, const R r) {
  contract_wgmma_dispatch<R, false, 1>(p, r);
}

}  // namespace kiln

#endif  // KILN_TEMPLATES_CUDA_CONTRACT_WGMMA_CUH
