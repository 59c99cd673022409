// The Hopper contraction kernel (templates/cuda/contract_wgmma.cuh: wgmma, TMA loads, mbarriers,
// a producer warpgroup and one or two consumers) compiled for the host and run on host threads, with the
// instructions it uses emulated here as the PTX ISA and the driver API define them:
//   - the TMA box load (cp.async.bulk.tensor, 128-byte swizzle: 16-byte chunk c of 128-byte row r
//     lands at chunk c ^ (r % 8); elements outside the tensor read 0), its bytes completed on an
//     mbarrier; the tensor map is this file's own encoding of the plan's TensorMapRequest (the
//     driver's CUtensorMap is opaque);
//   - mbarriers (arrivals, expected transaction bytes, phases and try_wait.parity);
//   - wgmma.mma_async m64n128k16 reading both operands through shared-memory matrix descriptors
//     (start, LBO, SBO, 128-byte swizzle; K-major and MN-major canonical layouts) into the
//     documented accumulator fragment; wgmma.wait_group as a warp-wide point.
// Plans come from the contract family's planner (the tensor maps it asks for), results are
// checked against long double sums of the 16-bit operands. A wrong descriptor field, box,
// coordinate, stage or phase in the template or the planner fails these tests.
#include <gtest/gtest.h>

#include <array>
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "codegen/families/contract.hpp"
#include "codegen/family.hpp"
#include "codegen/emit.hpp"
#include "codegen/expr.hpp"
#include "core/error.hpp"
#include "runtime/contract.hpp"
#include "runtime/jit.hpp"
#include "core/half.hpp"
#include "tests/conv_host_case.hpp"
#include "tests/tensor_core_sums.hpp"

namespace cuda_blocks {

#include "tests/cuda_host_blocks.hpp"

#include "tests/cuda_host_templates_begin.hpp"
#include "templates/cuda/contract_wgmma.cuh"
#include "templates/cuda/conv_wgmma.cuh"
#include "tests/cuda_host_templates_end.hpp"

// ---- shared memory, mbarriers, the TMA and wgmma on the host ------------------------------------
alignas(1024) inline unsigned char wg_shared[kiln::kWgSharedBytesN256 + 1024];

unsigned char* kiln::contract_wgmma_shared_on_host() { return wg_shared; }
unsigned kiln::contract_wgmma_address_on_host(const void* p) {
  return unsigned(static_cast<const unsigned char*>(p) - wg_shared);
}

// The byte a swizzled shared-memory address lands on (128-byte mode: address bits 4-6 ^= 7-9).
inline unsigned swizzle128(unsigned address) { return address ^ (((address >> 7) & 7u) << 4); }

struct Mbarrier {
  unsigned count = 0, pending = 0, phase = 0;
  long long tx = 0;
};
inline std::mutex bar_mutex;
inline std::condition_variable bar_cv;
inline std::map<unsigned, Mbarrier> bars;

inline void bar_step(Mbarrier& b) {
  if (b.pending == 0 && b.tx == 0) {
    ++b.phase;
    b.pending = b.count;
    bar_cv.notify_all();
  }
}
void kiln::contract_mbar_init_on_host(unsigned bar, unsigned count) {
  std::lock_guard lock(bar_mutex);
  bars[bar] = Mbarrier{count, count, 0, 0};
}
void kiln::contract_mbar_arrive_on_host(unsigned bar, unsigned expect_bytes) {
  std::lock_guard lock(bar_mutex);
  Mbarrier& b = bars.at(bar);
  if (b.pending == 0) throw std::logic_error("an arrival on an mbarrier whose phase has all its arrivals");
  b.tx += expect_bytes;
  --b.pending;
  bar_step(b);
}
// try_wait.parity: true once the current phase's parity differs from |parity| (a waiter blocks
// here instead of spinning: 384 host threads share two cores).
bool kiln::contract_mbar_test_on_host(unsigned bar, unsigned parity) {
  std::unique_lock lock(bar_mutex);
  bar_cv.wait(lock, [&] { return (bars.at(bar).phase & 1u) != parity; });
  return true;
}

// This file's tensor map: the request's numbers.
struct HostTensorMap {
  std::uint64_t address;
  std::uint32_t rank, element_bytes;
  std::uint64_t dims[5], strides[4];
  std::uint32_t box[5];
};
static_assert(sizeof(HostTensorMap) <= sizeof(kiln::KilnTensorMap));

void kiln::contract_tma_load_on_host(unsigned dst, const KilnTensorMap* map, const int* c, int rank, unsigned bar) {
  HostTensorMap m;
  std::memcpy(&m, map, sizeof m);
  if (int(m.rank) != rank) throw std::logic_error("a TMA load with a coordinate count other than the map's rank");
  if (m.element_bytes != 2 || m.box[0] * 2 > 128) throw std::logic_error("a box the 128-byte swizzle cannot take");
  if (dst % 1024 != 0) throw std::logic_error("a swizzled box not 1024-byte aligned in shared memory");
  std::uint64_t boxes = 1;
  for (int d = 2; d < rank; ++d) boxes *= m.box[d];
  if (boxes != 1) throw std::logic_error("a box of more than one batch entry");
  for (std::uint32_t i1 = 0; i1 < m.box[1]; ++i1)
    for (std::uint32_t i0 = 0; i0 < m.box[0]; ++i0) {
      const std::int64_t g0 = std::int64_t(c[0]) + i0, g1 = std::int64_t(c[1]) + i1;
      bool inside = g0 >= 0 && g1 >= 0 && std::uint64_t(g0) < m.dims[0] && std::uint64_t(g1) < m.dims[1];
      std::uint64_t at = m.address + std::uint64_t(g0) * 2 + std::uint64_t(g1) * m.strides[0];
      for (int d = 2; d < rank; ++d) {
        inside = inside && c[d] >= 0 && std::uint64_t(c[d]) < m.dims[d];
        at += std::uint64_t(c[d]) * m.strides[d - 1];
      }
      std::uint16_t v = 0;
      if (inside) std::memcpy(&v, reinterpret_cast<const void*>(at), 2);
      std::memcpy(wg_shared + swizzle128(dst + (i1 * m.box[0] + i0) * 2), &v, 2);
    }
  std::lock_guard lock(bar_mutex);
  Mbarrier& b = bars.at(bar);
  b.tx -= std::int64_t(m.box[0]) * m.box[1] * 2;
  bar_step(b);
}

// Element (row, k) of a descriptor's matrix (rows: a's m or b's n): its shared-memory byte.
inline unsigned desc_element(unsigned long long desc, bool mn_major, unsigned row, unsigned k) {
  if (desc >> 62 != 1) throw std::logic_error("a descriptor not in the 128-byte swizzle mode");
  if ((desc >> 49 & 7u) != 0) throw std::logic_error("a descriptor with a base offset");
  const unsigned start = unsigned(desc & 0x3FFFu) << 4, lbo = unsigned(desc >> 16 & 0x3FFFu) << 4,
                 sbo = unsigned(desc >> 32 & 0x3FFFu) << 4;
  // K-major: ((8, rows / 8), (8, 2)) : ((128 B, SBO), (2 B, 16 B)); MN-major: ((8, 8, rows / 64),
  // (8, k / 8)) : ((2 B, 16 B, LBO), (128 B, SBO)) (CUTLASS's canonical GMMA layouts).
  const unsigned at = mn_major ? start + row / 64 * lbo + row % 64 * 2 + k % 8 * 128 + k / 8 * sbo
                               : start + row / 8 * sbo + row % 8 * 128 + k * 2;
  return swizzle128(at);
}

// wgmma.mma_async as the asynchronous operation it is: each thread queues its part, commit_group
// closes a group, and wait_group N runs every group but the newest N, reading shared memory then
// (the latest moment the PTX ISA allows). What each part reads is also captured at issue: if it
// changed before the part ran (a stage handed back to the producer while a group reading it was in
// flight), the run is marked failed (wgmma_in_flight_error).
struct WgmmaPart {
  float* d;
  int n;
  unsigned long long a, b;
  bool accumulate, a_mn, b_mn, bf16;
  std::vector<std::uint16_t> seen;
};
inline thread_local std::vector<WgmmaPart> wg_open;
inline thread_local std::deque<std::vector<WgmmaPart>> wg_groups;
inline std::mutex wg_error_mutex;
inline std::string wgmma_in_flight_error;

// This thread's operands of |w| (its two rows of a, its n / 4 columns of b; 16 k each).
inline std::vector<std::uint16_t> wgmma_operands(const WgmmaPart& w) {
  const unsigned t = threadIdx.x % 128u, warp = t / 32u, lane = t % 32u;
  std::vector<std::uint16_t> v;
  auto add = [&](unsigned byte) {
    std::uint16_t bits;
    std::memcpy(&bits, wg_shared + byte, 2);
    v.push_back(bits);
  };
  for (unsigned h = 0; h < 2; ++h)
    for (unsigned k = 0; k < 16; ++k) add(desc_element(w.a, w.a_mn, 16 * warp + lane / 4 + 8 * h, k));
  for (unsigned c = 0; c < unsigned(w.n) / 4; ++c)
    for (unsigned k = 0; k < 16; ++k) add(desc_element(w.b, w.b_mn, 8 * (c / 2) + 2 * (lane % 4) + c % 2, k));
  return v;
}

inline void wgmma_run(const WgmmaPart& w) {
  const std::vector<std::uint16_t> v = wgmma_operands(w);
  if (v != w.seen) {
    std::lock_guard lock(wg_error_mutex);
    wgmma_in_flight_error = "the shared memory a wgmma reads changed while its group was in flight";
  }
  auto value = [&](std::uint16_t bits) {
    return (long double)(w.bf16 ? ::kiln::bf16_bits_to_f32(bits) : ::kiln::f16_bits_to_f32(bits));
  };
  for (unsigned i = 0; i < unsigned(w.n) / 2; ++i) {
    const unsigned h = (i / 2) % 2, c = 2 * (i / 4) + i % 2;  // row h of a, column c of b (as gathered)
    long double s = w.accumulate ? w.d[i] : 0;  // scale-d 0: d's old value (here uninitialized) is not read
    for (unsigned k = 0; k < 16; ++k) s += value(v[h * 16 + k]) * value(v[32 + c * 16 + k]);
    w.d[i] = float(s);
  }
}

void kiln::contract_wgmma_on_host(float* d, int n, unsigned long long a, unsigned long long b, bool accumulate,
                                  bool a_mn, bool b_mn, bool bf16) {
  WgmmaPart w{d, n, a, b, accumulate, a_mn, b_mn, bf16, {}};
  w.seen = wgmma_operands(w);
  wg_open.push_back(std::move(w));
}
void kiln::contract_wgmma_commit_on_host() {
  wg_groups.push_back(std::move(wg_open));
  wg_open.clear();
}
void kiln::contract_wgmma_wait_on_host(int pending) {
  while (wg_groups.size() > std::size_t(pending)) {
    for (const WgmmaPart& w : wg_groups.front()) wgmma_run(w);
    wg_groups.pop_front();
  }
  warp_barriers[threadIdx.x / 32]->arrive_and_wait();
}

struct WgmmaF32Out {
  typedef float C;
  template <class P> void put(const P& p, long long i, const long long* ei, C y) const {
    float v = y;
    if (p.ext[0]) v = y * 0.5f + reinterpret_cast<const float*>(p.ext[0])[ei[0]] - reinterpret_cast<const float*>(p.ext[1])[ei[1]];
    reinterpret_cast<float*>(p.out)[i] = v;
  }
};

}  // namespace cuda_blocks

namespace kiln {
namespace {

// A wgmma contraction [batch, m, k] x [k, n] -> [batch, m, n] f32 run on the host threads: a given
// as [batch, m, k] (or [batch, k, m] when |a_mn|: m contiguous), b as [k, n] (n contiguous) or
// [n, k] when |b_k_major| (b shared by the batch: stride 0), optionally y * 0.5 + bias - residual;
// |blocks| blocks of the |tile_m| x 128 kernel walk the tiles.
void check_wgmma(bool bf16, std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k, bool a_mn,
                 bool b_k_major, bool epilogue, unsigned blocks, int tile_m = 128, int tile_n = 128) {
  SCOPED_TRACE(testing::Message() << (bf16 ? "bf16 " : "f16 ") << batch << "x" << m << "x" << n << "x" << k
                                  << (a_mn ? " a m-major" : "") << (b_k_major ? " b k-major" : "")
                                  << (epilogue ? " epilogue" : "") << ", " << blocks << " blocks of " << tile_m
                                  << " x " << tile_n);
  std::mt19937 rng(unsigned(m * 31 + n * 7 + k));
  std::uniform_real_distribution<float> u(-2, 2);
  auto bits = [&] { return bf16 ? f32_to_bf16_bits(u(rng)) : f32_to_f16_bits(u(rng)); };
  auto of_bits = [bf16](std::uint16_t v) { return (long double)(bf16 ? bf16_bits_to_f32(v) : f16_bits_to_f32(v)); };
  std::vector<std::uint16_t> a(std::size_t(batch * m * k)), b(std::size_t(k * n));
  for (auto& v : a) v = bits();
  for (auto& v : b) v = bits();
  std::vector<float> bias(std::size_t(n), 0.0f), res(std::size_t(batch * m * n), 0.0f), out(std::size_t(batch * m * n), -777.0f);
  for (float& v : bias) v = u(rng);
  for (float& v : res) v = u(rng);
  const Expr epi = parse_expr("x * 0.5 + y - z", {DType::f32, DType::f32, DType::f32});
  const DType t = bf16 ? DType::bf16 : DType::f16;
  const KernelSpec spec =
      contract_wgmma_spec(make_contract_spec(t, t, DType::f32, epilogue ? &epi : nullptr), tile_m, tile_n);
  ASSERT_EQ(spec.block_size, tile_m == 128 ? 384 : 256);
  ASSERT_EQ(contract_tile(spec).m, tile_m);
  ASSERT_EQ(contract_tile(spec).n, tile_n);
  const std::vector<std::int64_t> shape{batch, m, n, k};
  const std::vector<std::int64_t> sa = a_mn ? std::vector<std::int64_t>{m * k, 1, 0, m} : std::vector<std::int64_t>{m * k, k, 0, 1};
  const std::vector<std::int64_t> sb = b_k_major ? std::vector<std::int64_t>{0, 0, k, 1} : std::vector<std::int64_t>{0, 0, 1, n};
  const std::vector<std::int64_t> sbias{0, 0, 1, 0}, sres{m * n, n, 1, 0};
  std::vector<PlanOperand> ops{{reinterpret_cast<std::uint64_t>(a.data()), sa}, {reinterpret_cast<std::uint64_t>(b.data()), sb}};
  if (epilogue) {
    ops.push_back({reinterpret_cast<std::uint64_t>(bias.data()), sbias});
    ops.push_back({reinterpret_cast<std::uint64_t>(res.data()), sres});
  }
  const PlanRequest request{shape, ops, reinterpret_cast<std::uint64_t>(out.data()), {}, spec.block_size};
  std::string why;
  ASSERT_TRUE(contract_wgmma_fits(request, &why)) << why;
  LaunchPlan plan = family_of(spec).plan(spec, request, &why);
  ASSERT_EQ(plan.function, 0) << why;
  ASSERT_EQ(plan.params.size(), entry_params_bytes(family_of(spec), spec, 0));
  ASSERT_EQ(plan.tensor_maps.size(), 2u);
  for (const TensorMapRequest& r : plan.tensor_maps) {  // "encode" them as the launch does
    ASSERT_EQ(r.offset % 64, 0u);
    EXPECT_EQ(r.swizzle_bytes, 128u);
    for (std::uint32_t d = 1; d < r.rank; ++d) EXPECT_EQ(r.strides[d - 1] % 16, 0u);
    cuda_blocks::HostTensorMap map{r.address, r.rank, r.element_bytes, {}, {}, {}};
    std::memcpy(map.dims, r.dims, sizeof map.dims);
    std::memcpy(map.strides, r.strides, sizeof map.strides);
    std::memcpy(map.box, r.box, sizeof map.box);
    std::memcpy(plan.params.data() + r.offset, &map, sizeof map);
  }
  cuda_blocks::kiln::KilnWgmmaParams p;
  std::memcpy(&p, plan.params.data(), sizeof p);
  EXPECT_EQ(p.layout, (a_mn ? 1 : 0) | (b_k_major ? 0 : 2));
  EXPECT_EQ(p.c.tiles_m, (m + tile_m - 1) / tile_m);
  EXPECT_EQ(p.c.tiles_n, (n + tile_n - 1) / tile_n);
  cuda_blocks::wgmma_in_flight_error.clear();
  cuda_blocks::launch(std::min(plan.groups_x, blocks), unsigned(spec.block_size), [&] {
    namespace k = cuda_blocks::kiln;
    if (tile_n == 256) {
      if (bf16) k::contract_wgmma_run_bf16_n256(p, cuda_blocks::WgmmaF32Out());
      else k::contract_wgmma_run_f16_n256(p, cuda_blocks::WgmmaF32Out());
    } else if (tile_m == 64) {
      if (bf16) k::contract_wgmma_run_bf16_m64(p, cuda_blocks::WgmmaF32Out());
      else k::contract_wgmma_run_f16_m64(p, cuda_blocks::WgmmaF32Out());
    } else if (bf16) {
      k::contract_wgmma_run_bf16(p, cuda_blocks::WgmmaF32Out());
    } else {
      k::contract_wgmma_run_f16(p, cuda_blocks::WgmmaF32Out());
    }
  });
  expect_tensor_core_sums(
      batch, m, n, k,
      [&](std::int64_t bi, std::int64_t i, std::int64_t kk) {
        return of_bits(a[std::size_t(a_mn ? (bi * k + kk) * m + i : (bi * m + i) * k + kk)]);
      },
      [&](std::int64_t kk, std::int64_t j) { return of_bits(b[std::size_t(b_k_major ? j * k + kk : kk * n + j)]); },
      epilogue, bias, res, out);
  EXPECT_EQ(cuda_blocks::wgmma_in_flight_error, "");
}

TEST(CudaWgmmaOnHost, TmaStagesDescriptorsAndFragments) {
  // Partial tiles each way, K across the 64-wide stage with a tail (72 = 64 + 8).
  check_wgmma(true, 1, 130, 136, 72, false, false, false, 2);
  // f16, a batch (b shared: stride 0, a 3-D map for a), b K-major, the epilogue's operands.
  check_wgmma(false, 2, 40, 24, 32, false, true, true, 1);
  // a M-major (transposed: imm-trans-a), b N-major; one block walks 4 tiles x 3 k steps: the ring
  // of 4 stages wraps three times, both mbarrier parities in use.
  check_wgmma(true, 1, 256, 200, 136, true, false, false, 1);
  // Both K-major, exact tiles.
  check_wgmma(false, 1, 128, 128, 64, false, true, false, 1);
  // a M-major and batched (a 3-D map over [k, m] planes), b K-major; partial last M box (m0 + 64
  // past m: a box wholly outside the tensor reads zeros).
  check_wgmma(true, 2, 48, 40, 24, true, true, true, 2);
}

// The tile table's 64 x 128 row (one consumer warpgroup, 256 threads; M <= 64, LLM decode): every
// layout of a and b, a K tail, a batch with the epilogue, one block walking 2 batches x 2 tiles x 3
// k steps (the ring wraps with 4 arrivals per empty phase), M = 1 (a decode step); and the table.
TEST(CudaWgmmaOnHost, TheSixtyFourRowTile) {
  check_wgmma(true, 1, 13, 136, 72, false, false, false, 2, 64);
  check_wgmma(false, 2, 64, 200, 136, true, true, true, 1, 64);
  check_wgmma(true, 1, 40, 24, 40, true, false, false, 1, 64);
  check_wgmma(false, 1, 1, 130, 64, false, true, false, 2, 64);
  // A 64-row box of an M-major a over 128 rows: the second tile's box starts at row 64.
  check_wgmma(true, 1, 104, 64, 32, true, true, false, 1, 64);
  EXPECT_EQ(contract_wgmma_tile_for(1, 1, 4096).m, 64);
  EXPECT_EQ(contract_wgmma_tile_for(1, 64, 4096).m, 64);
  EXPECT_EQ(contract_wgmma_tile_for(1, 65, 4096).m, 128);
  const KernelSpec plain = make_contract_spec(DType::bf16, DType::bf16, DType::bf16);
  const KernelSpec small = contract_wgmma_spec(plain, 64), big = contract_wgmma_spec(plain);
  EXPECT_NE(small.name(), big.name());
  EXPECT_EQ(contract_same_variant(small, plain).name(), small.name());
  EXPECT_THROW(contract_wgmma_spec(plain, 96), Error);
  KernelSpec wrong = small;
  wrong.block_size = 384;
  std::string why;
  EXPECT_FALSE(target_supports(wrong, Target::cuda, &why));
  EXPECT_NE(why.find("256 threads"), std::string::npos) << why;
  EXPECT_EQ(contract_tile(big).m, 128);
  EXPECT_EQ(contract_tile(plain).m, kContractTileM);
  EXPECT_EQ(contract_tile(contract_tensor_core_spec(plain)).k, 32);
}

// The tile table's 128 x 256 row (two consumer warpgroups of 64 x 256, 128 accumulators per
// thread, m64n256k16; setmaxnreg on a GPU): b as 4 boxes of 64 n (N-major) or one of 256 n rows
// (K-major), partial tiles each way, a K tail, a batch with the epilogue, the ring wrapping over
// tiles; and the rule that picks it.
TEST(CudaWgmmaOnHost, TheWideTile) {
  check_wgmma(true, 1, 130, 296, 136, false, false, false, 1, 128, 256);
  check_wgmma(false, 2, 64, 256, 64, true, true, true, 2, 128, 256);
  check_wgmma(true, 1, 200, 520, 40, false, true, false, 2, 128, 256);
  check_wgmma(false, 1, 256, 136, 200, true, false, true, 1, 128, 256);
  auto tile = [](std::int64_t batch, std::int64_t m, std::int64_t n) {
    const ContractTile t = contract_wgmma_tile_for(batch, m, n);
    EXPECT_EQ(t.k, 64);
    return std::to_string(t.m) + "x" + std::to_string(t.n);
  };
  EXPECT_EQ(tile(1, 4096, 4096), "128x256");  // 32 x 16 = 512 wide tiles
  EXPECT_EQ(tile(1, 8192, 8192), "128x256");
  EXPECT_EQ(tile(1, 2048, 2048), "128x128");  // 128 wide tiles: under two waves
  EXPECT_EQ(tile(16, 1024, 1024), "128x256");  // 16 x 8 x 4
  EXPECT_EQ(tile(1, 8192, 128), "128x128");    // N fits one 128-column tile
  EXPECT_EQ(tile(1, 64, 14336), "64x128");     // decode rows
  EXPECT_EQ(tile(1, 65, 1 << 20), "128x256");
  const KernelSpec plain = make_contract_spec(DType::bf16, DType::bf16, DType::bf16);
  const KernelSpec wide = contract_wgmma_spec(plain, 128, 256);
  EXPECT_EQ(wide.attribute("tile"), "128x256");
  EXPECT_EQ(wide.block_size, 384);
  EXPECT_NE(wide.name(), contract_wgmma_spec(plain).name());
  EXPECT_EQ(contract_same_variant(wide, make_contract_spec(DType::f16, DType::f16, DType::f32)).attribute("tile"), "128x256");
  EXPECT_THROW(contract_wgmma_spec(plain, 64, 256), Error);
  EXPECT_THROW(contract_wgmma_spec(make_conv_spec(DType::bf16, DType::bf16, DType::f32), 128, 256), Error);
  KernelSpec odd = wide;
  odd.set_attribute("tile", "96x128");
  std::string why;
  EXPECT_FALSE(target_supports(odd, Target::cuda, &why));
  EXPECT_NE(why.find("96x128"), std::string::npos) << why;
  EXPECT_EQ(contract_tile(wide).n, 256);
  // KILN_WGMMA_TILE overrides the choice (to time one tile against another on a GPU).
  ::setenv("KILN_WGMMA_TILE", "128x128", 1);
  EXPECT_EQ(wgmma_tile(1, 8192, 8192).n, 128);
  ::setenv("KILN_WGMMA_TILE", "64x128", 1);
  EXPECT_EQ(wgmma_tile(1, 8192, 8192).m, 64);
  ::setenv("KILN_WGMMA_TILE", "128x512", 1);
  try {
    wgmma_tile(1, 8192, 8192);
    ADD_FAILURE() << "KILN_WGMMA_TILE=128x512 was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("KILN_WGMMA_TILE=128x512"), std::string::npos) << e.what();
  }
  ::unsetenv("KILN_WGMMA_TILE");
  EXPECT_EQ(wgmma_tile(1, 8192, 8192).n, 256);
}

// The tiles' order (groups of kWgGroupM rows of tiles, down each group's columns): every tile of
// every batch exactly once; tall problems whose last group has 3 and 1 rows, walked by 3 blocks.
TEST(CudaWgmmaOnHost, GroupedTileOrder) {
  for (const auto& [batch, tm_count, tn_count] : std::vector<std::array<long long, 3>>{
           {1, 1, 1}, {1, 8, 5}, {2, 11, 3}, {3, 19, 1}, {1, 1, 40}, {2, 16, 16}}) {
    cuda_blocks::kiln::KilnContractParams p{};
    p.batch = batch, p.tiles_m = tm_count, p.tiles_n = tn_count;
    std::vector<int> seen(std::size_t(batch * tm_count * tn_count), 0);
    long long last_tm = -1;
    for (long long w = 0; w < batch * tm_count * tn_count; ++w) {
      long long bi, tm, tn;
      cuda_blocks::kiln::contract_wgmma_tile_at(p, w, bi, tm, tn);
      ASSERT_TRUE(bi >= 0 && bi < batch && tm >= 0 && tm < tm_count && tn >= 0 && tn < tn_count) << w;
      ++seen[std::size_t((bi * tm_count + tm) * tn_count + tn)];
      if ((w % (tm_count * tn_count)) % (cuda_blocks::kiln::kWgGroupM * tn_count) != 0) {  // within a group
        EXPECT_LE(std::abs(tm - last_tm), cuda_blocks::kiln::kWgGroupM - 1) << w;
      }
      last_tm = tm;
    }
    for (int s : seen) EXPECT_EQ(s, 1);
  }
  check_wgmma(true, 1, 1300, 136, 16, false, false, false, 3);
  check_wgmma(false, 1, 1096, 264, 40, true, true, false, 3, 128, 256);
}

TEST(CudaWgmmaOnHost, WhatTheTmaCannotLoadStaysOnMmaSync) {
  std::vector<std::uint16_t> a(4096 + 8), b(4096 + 8);
  const std::uint64_t pa = reinterpret_cast<std::uint64_t>(a.data()), pb = reinterpret_cast<std::uint64_t>(b.data());
  const std::vector<std::int64_t> shape{1, 32, 32, 36};
  auto fits = [&](std::uint64_t at_a, std::vector<std::int64_t> sa, std::vector<std::int64_t> sb, std::string* why) {
    const std::vector<PlanOperand> ops{{at_a, sa}, {pb, sb}};
    return contract_wgmma_fits(PlanRequest{shape, ops, 0, {}, 384}, why);
  };
  std::string why;
  EXPECT_FALSE(fits(pa, {0, 36, 0, 1}, {0, 0, 1, 40}, &why));  // a's rows 72 bytes apart
  EXPECT_NE(why.find("operand a"), std::string::npos) << why;
  EXPECT_FALSE(fits(pa + 2, {0, 40, 0, 1}, {0, 0, 1, 40}, &why));  // a 2 bytes off alignment
  EXPECT_NE(why.find("16-byte"), std::string::npos) << why;
  EXPECT_FALSE(fits(pa, {0, 80, 0, 2}, {0, 0, 1, 40}, &why));  // no contiguous axis
  EXPECT_NE(why.find("contiguous"), std::string::npos) << why;
  EXPECT_FALSE(fits(pa, {0, 40, 0, 1}, {0, 0, 1, 24}, &why));  // b's k rows overlap (24 < 32 elements)
  EXPECT_NE(why.find("operand b"), std::string::npos) << why;
  const std::vector<std::int64_t> empty_k{1, 32, 32, 0}, sa{0, 1, 0, 32}, sb{0, 0, 1, 32};  // K = 0: no map has a 0 dim
  const std::vector<PlanOperand> ops{{pa, sa}, {pb, sb}};
  EXPECT_FALSE(contract_wgmma_fits(PlanRequest{empty_k, ops, 0, {}, 384}, &why));
  EXPECT_NE(why.find("empty"), std::string::npos) << why;
  EXPECT_TRUE(fits(pa, {0, 40, 0, 1}, {0, 0, 1, 40}, &why)) << why;
  // Operands the tensor cores do not take have no wgmma variant.
  EXPECT_THROW(contract_wgmma_spec(make_contract_spec(DType::f32, DType::f32, DType::f32)), Error);
  const KernelSpec w = contract_wgmma_spec(make_contract_spec(DType::bf16, DType::bf16, DType::bf16));
  EXPECT_TRUE(spec_contract_wgmma(w));
  EXPECT_EQ(w.attribute("arch"), "sm_90a");
  EXPECT_FALSE(target_supports(w, Target::glsl, &why));
  EXPECT_TRUE(target_supports(w, Target::cuda, &why)) << why;
}

// The conv kernel on Hopper's tensor cores (templates/cuda/conv_wgmma.cuh) on the host threads: the
// producer warpgroup's window gathers into the swizzled stages (8 k a chunk: element by element, or
// one 16-byte load where 8 k are adjacent: a channels-last input with channels per group a multiple
// of 8, an OHWI kernel, an OIHW kernel read channels first), the k counters across stages and
// tiles, the consumers' wgmmas through the same descriptors as the contraction, the epilogue at
// each row's offsets; against long double sums of the 16-bit operands.
void check_conv_wgmma(ConvCase c, unsigned blocks) {
  c.wgmma = true;
  run_conv_case(c, [&](const KernelSpec& spec, const LaunchPlan& plan) {
    ASSERT_EQ(spec.block_size, 384);
    EXPECT_EQ(spec.attribute("arch"), "sm_90a");
    EXPECT_TRUE(plan.tensor_maps.empty());  // (the producer gathers: nothing for the driver to encode)
    cuda_blocks::kiln::KilnConvParams p;
    std::memcpy(&p, plan.params.data(), sizeof p);
    EXPECT_EQ(p.tiles_m, (p.m + 127) / 128);
    EXPECT_EQ(p.tiles_n, (p.n + 127) / 128);
    cuda_blocks::wgmma_in_flight_error.clear();
    cuda_blocks::launch(std::min(plan.groups_x, blocks), 384, [&] {
      if (c.cores == 1) cuda_blocks::kiln::conv_wgmma_run_bf16(p, cuda_blocks::WgmmaF32Out());
      else cuda_blocks::kiln::conv_wgmma_run_f16(p, cuda_blocks::WgmmaF32Out());
    });
    EXPECT_EQ(cuda_blocks::wgmma_in_flight_error, "");
  });
}

TEST(CudaWgmmaOnHost, ConvGathersWindowsIntoTheSwizzledStages) {
  // NCHW, two feature groups of 35 output channels, stride (2, 1), kernel dilation (1, 2), an NHWC
  // output; K = 18 (one stage, a tail chunk), element by element.
  ConvCase groups{{2, 6, 9, 7}, {70, 3, 3, 2}, {2, 1}, {1, 0}, {1, 1}, {1, 2}, {1, 1}, 2, 1, {0, 2, 3, 1}, false};
  groups.cores = 1;
  check_conv_wgmma(groups, 2);
  // 1-D, input dilation 3 and negative padding, batch groups, the epilogue's operands; f16.
  ConvCase dilated{{4, 3, 11}, {4, 3, 3}, {2}, {-1}, {2}, {1}, {3}, 1, 2, {}, true};
  dilated.cores = 2;
  check_conv_wgmma(dilated, 1);
  // NHWC with 16 channels and an OHWI kernel: both operands in 16-byte chunks. M = 288 (3 tiles),
  // N = 130 (2), K = 144 (3 stages, the last part-filled); one block walks the 6 tiles x 3 stages:
  // the ring of 4 wraps, the k counters restart per tile.
  ConvCase chunks{{2, 16, 12, 12}, {130, 16, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1, {0, 2, 3, 1}, true};
  chunks.nhwc = chunks.ohwi = true;
  chunks.cores = 1;
  check_conv_wgmma(chunks, 1);
  // NHWC with 5 channels and an HWIO kernel: element by element, channels fastest in k.
  ConvCase hwio{{2, 5, 6, 6}, {9, 5, 3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1, {}, false};
  hwio.nhwc = hwio.hwio = true;
  hwio.cores = 2;
  check_conv_wgmma(hwio, 2);
  // NCHW with an OIHW kernel of K = 72 (8 x 3 x 3): the kernel in chunks read channels first, the
  // input element by element with stride 2 and padding.
  ConvCase oihw{{1, 8, 10, 10}, {136, 8, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, 1, 1, {}, false};
  oihw.cores = 1;
  check_conv_wgmma(oihw, 2);
  // NHWC in chunks with an input dilation (chunks in the holes read 0) and 2 feature groups of 8
  // channels, 3-D.
  ConvCase three_d{{1, 16, 3, 4, 4}, {8, 8, 2, 2, 3}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, {1, 1, 1}, {2, 1, 2}, 2, 1, {}, false};
  three_d.nhwc = three_d.ohwi = true;
  three_d.cores = 2;
  check_conv_wgmma(three_d, 1);
  // Conv kernels have only the 128-row tile.
  EXPECT_THROW(contract_wgmma_spec(make_conv_spec(DType::bf16, DType::bf16, DType::f32), 64), Error);
}

// The kernels compile with NVRTC for sm_90a as kiln::jit compiles them (bf16 and f16, a fused
// GELU + residual epilogue, every row of the tile table); the wgmma and TMA instructions exist on
// no other target, so plain sm_90 refuses them (why the spec carries arch = sm_90a). Each names
// its dynamic shared memory.
TEST(CudaWgmmaOnHost, KernelsCompileForSm90aOnly) {
  const Expr gelu_bias_res =
      parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f32, DType::bf16});
  const Expr gelu_bias_res16 =
      parse_expr("0.5 * (x + y) * (1 + erf((x + y) * 0.7071067811865476)) + z", {DType::f32, DType::f16, DType::f16});
  std::string src;
  // (Each entry point once per dtype's instructions: a plain bf16 128 x 128 or f16 64 x 128 kernel
  // adds NVRTC time, not coverage.)
  std::vector<KernelSpec> specs{contract_wgmma_spec(make_contract_spec(DType::f16, DType::f16, DType::f32)),
                                contract_wgmma_spec(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &gelu_bias_res)),
                                contract_wgmma_spec(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &gelu_bias_res), 64),
                                contract_wgmma_spec(make_contract_spec(DType::bf16, DType::bf16, DType::bf16, &gelu_bias_res), 128, 256),
                                contract_wgmma_spec(make_contract_spec(DType::f16, DType::f16, DType::f32), 128, 256),
                                contract_wgmma_spec(make_conv_spec(DType::bf16, DType::bf16, DType::bf16)),
                                contract_wgmma_spec(make_conv_spec(DType::f16, DType::f16, DType::f16, &gelu_bias_res16))};
  for (const KernelSpec& spec : specs) src += emit_cuda(spec);
  try {
    const std::vector<unsigned char> cubin = compile_cuda_cubin(src, "wgmma_test", "sm_90a", false);
    const std::string text(cubin.begin(), cubin.end());
    for (const KernelSpec& spec : specs)
      EXPECT_NE(text.find(spec.name() + (spec.family == "conv" ? "_conv" : "_gemm") + "_shared_bytes"), std::string::npos)
          << spec.name();
  } catch (const Error& e) {
    if (e.code() == ErrorCode::unsupported) GTEST_SKIP() << e.what();  // no NVRTC here
    ADD_FAILURE() << e.what();
  }
  EXPECT_THROW(compile_cuda_cubin(emit_cuda(specs[0]), "wgmma_test", "sm_90", false), Error);
}

}  // namespace
}  // namespace kiln
