// Elementwise map kernels: out[i] = kiln_expr(in0[i], in1[i], ...), contiguous and strided/broadcast.
// Vulkan compute, GLSL 4.50 + buffer device addresses; inlined after glsl/ops.glsl and the
// emitter's hooks:
//   KILN_STRIDED                 defined for the strided variant, else the contiguous one
//   KILN_NUM_INPUTS              0..4
//   KILN_VEC                     elements per 16-byte step: 16 / the largest element size
//   KILN_T<k>, KILN_S<k>         storage type and size in bytes of input k (k < KILN_NUM_INPUTS)
//   KILN_LOAD<k>(v)              storage value of input k -> compute value
//   KILN_UNPACK<k>(b)            raw bits (uint64_t, zero-extended) of input k -> compute value
//   KILN_TOUT, KILN_SOUT         storage type and size of the output
//   KILN_STORE(c), KILN_PACK(c)  compute value -> storage value / raw bits (uint64_t)
//   KILN_COUT                    compute type of the result
//   KILN_EXPR(a0, a1, a2, a3)    kiln_expr applied to its first KILN_NUM_INPUTS arguments
// A map with several results (up to 4) also defines:
//   KILN_NUM_OUTPUTS             2..4 (1 when undefined)
//   KILN_TOUT<k>, KILN_SOUT<k>, KILN_COUT<k>, KILN_STORE<k>(c), KILN_PACK<k>(c)   for results
//                                k = 1..KILN_NUM_OUTPUTS-1, as those of result 0 above
//   KILN_EXPRS(a0, a1, a2, a3, r0, r1, r2, r3)   the results of the inputs into r0..r<count-1>
// ABI (codegen/abi.hpp): the contiguous variant takes KilnMapParams (72 bytes) as push constants;
// the strided one takes the device address of a KilnStridedParams block (320 bytes). Elements are
// addressed as base + index * size in 64-bit arithmetic (never 32-bit array indices), and the
// kernels are correct for any number of workgroups >= 1 (grid-stride loops). Block size:
// specialization constant 0 (default 256).
layout(local_size_x_id = 0) in;

// Results: r (result 0), r1..r3 (more results) computed from the inputs' compute values x0..x3;
// KILN_PUT<k>(address, i) stores result k as element i of its array, KILN_STEP_PUT<k>(j) and
// KILN_STEP_STORE<k>(address, base) gather and store its step (as wo for result 0).
#ifndef KILN_NUM_OUTPUTS
#define KILN_NUM_OUTPUTS 1
#endif
#if KILN_NUM_OUTPUTS > 1
#define KILN_RESULTS(x0, x1, x2, x3) KILN_COUT r; KILN_DECL1 KILN_DECL2 KILN_DECL3 KILN_EXPRS(x0, x1, x2, x3, r, r1, r2, r3)
#else
#define KILN_RESULTS(x0, x1, x2, x3) KILN_COUT r = KILN_EXPR(x0, x1, x2, x3)
#endif
#if KILN_NUM_OUTPUTS > 1
layout(buffer_reference, std430, buffer_reference_align = KILN_SOUT1) buffer KilnOut1Ref { KILN_TOUT1 v; };
#define KILN_DECL1 KILN_COUT1 r1;
#define KILN_PUT1(a, i) KilnOut1Ref((a) + (i) * KILN_SOUT1).v = KILN_STORE1(r1);
#define KILN_STEP_DECL1 uvec4 wo1 = uvec4(0u);
#define KILN_STEP_PUT1(j) kiln_step_put(wo1, uint(KILN_SOUT1), j, KILN_PACK1(r1));
#define KILN_STEP_STORE1(a, base) kiln_store_step((a) + (base) * KILN_SOUT1, uint(KILN_VEC * KILN_SOUT1), wo1);
#else
#define KILN_DECL1
#define KILN_PUT1(a, i)
#define KILN_STEP_DECL1
#define KILN_STEP_PUT1(j)
#define KILN_STEP_STORE1(a, base)
#endif
#if KILN_NUM_OUTPUTS > 2
layout(buffer_reference, std430, buffer_reference_align = KILN_SOUT2) buffer KilnOut2Ref { KILN_TOUT2 v; };
#define KILN_DECL2 KILN_COUT2 r2;
#define KILN_PUT2(a, i) KilnOut2Ref((a) + (i) * KILN_SOUT2).v = KILN_STORE2(r2);
#define KILN_STEP_DECL2 uvec4 wo2 = uvec4(0u);
#define KILN_STEP_PUT2(j) kiln_step_put(wo2, uint(KILN_SOUT2), j, KILN_PACK2(r2));
#define KILN_STEP_STORE2(a, base) kiln_store_step((a) + (base) * KILN_SOUT2, uint(KILN_VEC * KILN_SOUT2), wo2);
#else
#define KILN_DECL2
#define KILN_PUT2(a, i)
#define KILN_STEP_DECL2
#define KILN_STEP_PUT2(j)
#define KILN_STEP_STORE2(a, base)
#endif
#if KILN_NUM_OUTPUTS > 3
layout(buffer_reference, std430, buffer_reference_align = KILN_SOUT3) buffer KilnOut3Ref { KILN_TOUT3 v; };
#define KILN_DECL3 KILN_COUT3 r3;
#define KILN_PUT3(a, i) KilnOut3Ref((a) + (i) * KILN_SOUT3).v = KILN_STORE3(r3);
#define KILN_STEP_DECL3 uvec4 wo3 = uvec4(0u);
#define KILN_STEP_PUT3(j) kiln_step_put(wo3, uint(KILN_SOUT3), j, KILN_PACK3(r3));
#define KILN_STEP_STORE3(a, base) kiln_store_step((a) + (base) * KILN_SOUT3, uint(KILN_VEC * KILN_SOUT3), wo3);
#else
#define KILN_DECL3
#define KILN_PUT3(a, i)
#define KILN_STEP_DECL3
#define KILN_STEP_PUT3(j)
#define KILN_STEP_STORE3(a, base)
#endif

uint64_t kiln_thread_index() {
  return uint64_t(gl_WorkGroupID.x) * uint64_t(gl_WorkGroupSize.x) + uint64_t(gl_LocalInvocationID.x);
}
uint64_t kiln_thread_count() { return uint64_t(gl_NumWorkGroups.x) * uint64_t(gl_WorkGroupSize.x); }

#ifndef KILN_STRIDED
// ---- contiguous ---------------------------------------------------------------------------------
layout(push_constant, std430) uniform KilnMapParams {
  uint64_t out_;
  uint64_t in0, in1, in2, in3;
  uint64_t n;
  uint64_t out1, out2, out3;  // results 1.. of a map with several
} p;

// One step moves KILN_VEC elements of each array: 16, 8, 4 or 2 bytes, aligned to that size.
layout(buffer_reference, std430, buffer_reference_align = 16) buffer KilnWords16 { uvec4 v; };
layout(buffer_reference, std430, buffer_reference_align = 8) buffer KilnWords8 { uvec2 v; };
layout(buffer_reference, std430, buffer_reference_align = 4) buffer KilnWords4 { uint v; };
#ifdef KILN_NEED_INT8
layout(buffer_reference, std430, buffer_reference_align = 2) buffer KilnWords2 { u8vec2 v; };
#endif

uvec4 kiln_load_step(uint64_t addr, uint bytes) {
  if (bytes == 16u) return KilnWords16(addr).v;
  if (bytes == 8u) return uvec4(KilnWords8(addr).v, 0u, 0u);
#ifdef KILN_NEED_INT8
  if (bytes == 2u) { u8vec2 b = KilnWords2(addr).v; return uvec4(uint(b.x) | (uint(b.y) << 8), 0u, 0u, 0u); }
#endif
  return uvec4(KilnWords4(addr).v, 0u, 0u, 0u);
}
void kiln_store_step(uint64_t addr, uint bytes, uvec4 w) {
  if (bytes == 16u) { KilnWords16(addr).v = w; return; }
  if (bytes == 8u) { KilnWords8(addr).v = w.xy; return; }
#ifdef KILN_NEED_INT8
  if (bytes == 2u) { KilnWords2(addr).v = u8vec2(w.x & 0xFFu, (w.x >> 8) & 0xFFu); return; }
#endif
  KilnWords4(addr).v = w.x;
}
// Raw bits of element j of a step of |size|-byte elements, and the reverse.
uint64_t kiln_step_bits(uvec4 w, uint size, uint j) {
  if (size == 8u) return packUint2x32(uvec2(w[2u * j], w[2u * j + 1u]));
  if (size == 4u) return uint64_t(w[j]);
  if (size == 2u) return uint64_t((w[j >> 1] >> ((j & 1u) * 16u)) & 0xFFFFu);
  return uint64_t((w[j >> 2] >> ((j & 3u) * 8u)) & 0xFFu);
}
void kiln_step_put(inout uvec4 w, uint size, uint j, uint64_t b) {
  if (size == 8u) {
    uvec2 h = unpackUint2x32(b);
    w[2u * j] = h.x;
    w[2u * j + 1u] = h.y;
  } else if (size == 4u) {
    w[j] = uint(b);
  } else if (size == 2u) {
    w[j >> 1] |= (uint(b) & 0xFFFFu) << ((j & 1u) * 16u);
  } else {
    w[j >> 2] |= (uint(b) & 0xFFu) << ((j & 3u) * 8u);
  }
}

void kiln_map_step(uint64_t base) {
#if KILN_NUM_INPUTS > 0
  uvec4 w0 = kiln_load_step(p.in0 + base * KILN_S0, uint(KILN_VEC * KILN_S0));
#endif
#if KILN_NUM_INPUTS > 1
  uvec4 w1 = kiln_load_step(p.in1 + base * KILN_S1, uint(KILN_VEC * KILN_S1));
#endif
#if KILN_NUM_INPUTS > 2
  uvec4 w2 = kiln_load_step(p.in2 + base * KILN_S2, uint(KILN_VEC * KILN_S2));
#endif
#if KILN_NUM_INPUTS > 3
  uvec4 w3 = kiln_load_step(p.in3 + base * KILN_S3, uint(KILN_VEC * KILN_S3));
#endif
  uvec4 wo = uvec4(0u);
  KILN_STEP_DECL1 KILN_STEP_DECL2 KILN_STEP_DECL3
  [[unroll]] for (uint j = 0u; j < uint(KILN_VEC); ++j) {
    KILN_RESULTS(KILN_UNPACK0(kiln_step_bits(w0, uint(KILN_S0), j)),
                 KILN_UNPACK1(kiln_step_bits(w1, uint(KILN_S1), j)),
                 KILN_UNPACK2(kiln_step_bits(w2, uint(KILN_S2), j)),
                 KILN_UNPACK3(kiln_step_bits(w3, uint(KILN_S3), j)));
    kiln_step_put(wo, uint(KILN_SOUT), j, KILN_PACK(r));
    KILN_STEP_PUT1(j) KILN_STEP_PUT2(j) KILN_STEP_PUT3(j)
  }
  kiln_store_step(p.out_ + base * KILN_SOUT, uint(KILN_VEC * KILN_SOUT), wo);
  KILN_STEP_STORE1(p.out1, base) KILN_STEP_STORE2(p.out2, base) KILN_STEP_STORE3(p.out3, base)
}

void kiln_map_one(uint64_t i) {
  KILN_RESULTS(KILN_LOAD0(KilnIn0Ref(p.in0 + i * KILN_S0).v),
               KILN_LOAD1(KilnIn1Ref(p.in1 + i * KILN_S1).v),
               KILN_LOAD2(KilnIn2Ref(p.in2 + i * KILN_S2).v),
               KILN_LOAD3(KilnIn3Ref(p.in3 + i * KILN_S3).v));
  KilnOutRef(p.out_ + i * KILN_SOUT).v = KILN_STORE(r);
  KILN_PUT1(p.out1, i) KILN_PUT2(p.out2, i) KILN_PUT3(p.out3, i)
}

void main() {
  const uint64_t n = p.n;
  const uint64_t tid = kiln_thread_index(), nthreads = kiln_thread_count();
  uint64_t start = 0ul;
  uint64_t addr_bits = p.out_;
#if KILN_NUM_OUTPUTS > 1
  addr_bits |= p.out1;
#endif
#if KILN_NUM_OUTPUTS > 2
  addr_bits |= p.out2;
#endif
#if KILN_NUM_OUTPUTS > 3
  addr_bits |= p.out3;
#endif
#if KILN_NUM_INPUTS > 0
  addr_bits |= p.in0;
#endif
#if KILN_NUM_INPUTS > 1
  addr_bits |= p.in1;
#endif
#if KILN_NUM_INPUTS > 2
  addr_bits |= p.in2;
#endif
#if KILN_NUM_INPUTS > 3
  addr_bits |= p.in3;
#endif
  if ((addr_bits & 15ul) == 0ul) {  // every array 16-byte aligned: whole steps, then the tail
    const uint64_t nvec = n / uint64_t(KILN_VEC);
    for (uint64_t s = tid; s < nvec; s += nthreads) kiln_map_step(s * uint64_t(KILN_VEC));
    start = nvec * uint64_t(KILN_VEC);
  }
  for (uint64_t i = start + tid; i < n; i += nthreads) kiln_map_one(i);
}

#else
// ---- strided / broadcast ------------------------------------------------------------------------
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KilnStridedParams {
  uint64_t out_;
  uint64_t in_[4];
  uint64_t n;
  int64_t rank;
  int64_t shape[6];
  int64_t strides[24];  // [input][dim], in elements; 0 broadcasts
  uint64_t more_out[3];  // results 1.. of a map with several
};
layout(push_constant, std430) uniform KilnStridedPush { KilnStridedParams params; } pc;

void main() {
  KilnStridedParams P = pc.params;
  const uint64_t n = P.n;
  const int rank = int(P.rank);
  const uint64_t tid = kiln_thread_index(), nthreads = kiln_thread_count();
  uint64_t shape[6];
  uint64_t st[24];
  [[unroll]] for (int d = 0; d < 6; ++d) {
    shape[d] = d < rank ? uint64_t(P.shape[d]) : 1ul;
    [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) st[k * 6 + d] = d < rank ? uint64_t(P.strides[k * 6 + d]) : 0ul;
  }
  const uint64_t out_addr = P.out_;
  const uint64_t out1 = P.more_out[0], out2 = P.more_out[1], out3 = P.more_out[2];
  uint64_t in_addr[4];
  [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) in_addr[k] = P.in_[k];
  for (uint64_t i = tid; i < n; i += nthreads) {
    // Decompose i over shape[0..rank) (last dimension fastest) into per-input element offsets.
    // Wrapping unsigned math: negative strides work as two's complement.
    uint64_t off[4] = uint64_t[4](0ul, 0ul, 0ul, 0ul);
    uint64_t rem = i;
    [[unroll]] for (int d = 5; d >= 0; --d) {
      if (d < rank) {
        const uint64_t q = rem / shape[d];
        const uint64_t idx = rem - q * shape[d];
        rem = q;
        [[unroll]] for (int k = 0; k < KILN_NUM_INPUTS; ++k) off[k] += idx * st[k * 6 + d];
      }
    }
    KILN_RESULTS(KILN_LOAD0(KilnIn0Ref(in_addr[0] + off[0] * KILN_S0).v),
                 KILN_LOAD1(KilnIn1Ref(in_addr[1] + off[1] * KILN_S1).v),
                 KILN_LOAD2(KilnIn2Ref(in_addr[2] + off[2] * KILN_S2).v),
                 KILN_LOAD3(KilnIn3Ref(in_addr[3] + off[3] * KILN_S3).v));
    KilnOutRef(out_addr + i * KILN_SOUT).v = KILN_STORE(r);
    KILN_PUT1(out1, i) KILN_PUT2(out2, i) KILN_PUT3(out3, i)
  }
}
#endif
