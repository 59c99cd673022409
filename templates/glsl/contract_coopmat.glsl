// Contractions on cooperative matrices: out[b, m, n] = sum_k a[b, m, k] * b[b, k, n], the tile
// product of glsl/coopmat.glsl (inlined before this file, after glsl/contract_params.glsl) over the
// batch x tiles of the request: a and b read through their strides, each staged along its
// contiguous axis (a along m when m is its unit-stride axis, b along k likewise) in chunks of 8
// (KILN_CM_CHUNKS: one 16-byte load each where the operand is dense and aligned), the epilogue's
// operands laid out over the output.

KilnContractParams kiln_p;
int64_t kiln_off_a, kiln_off_b, kiln_off_o, kiln_off_e0, kiln_off_e1;
// Whether a chunk of 8 along the walked axis of a (b) is 8 adjacent elements at a 16-byte aligned
// address: unit stride along it, the operand's address and other stride multiples of 16 bytes and 8
// elements (kiln_cm_setup); and this tile's batch offset a multiple of 8 (kiln_cm_tile).
bool kiln_a_chunks, kiln_b_chunks, kiln_a_chunks_here, kiln_b_chunks_here;

// 8 f16 elements (16 bytes) of an operand.
layout(buffer_reference, std430, buffer_reference_align = 16) readonly buffer KilnChunkRef { uvec4 v; };

int64_t kiln_cm_setup() {
  kiln_p = pc.params;
  kiln_cm_m = kiln_p.m, kiln_cm_n = kiln_p.n, kiln_cm_k = kiln_p.k;
  kiln_a_m_inner = kiln_p.a_k != 1l && kiln_p.a_m == 1l;
  kiln_b_k_inner = kiln_p.b_n != 1l && kiln_p.b_k == 1l;
  kiln_a_chunks = (kiln_a_m_inner ? kiln_p.a_k : kiln_p.a_m) % 8l == 0l && (kiln_a_m_inner || kiln_p.a_k == 1l) &&
                  kiln_p.a_ % 16ul == 0ul;
  kiln_b_chunks = (kiln_b_k_inner ? kiln_p.b_n : kiln_p.b_k) % 8l == 0l && (kiln_b_k_inner || kiln_p.b_n == 1l) &&
                  kiln_p.b_ % 16ul == 0ul;
  return kiln_p.batch * kiln_p.tiles_m * kiln_p.tiles_n;
}

void kiln_cm_tile(int64_t w) {
  const int64_t tiles = kiln_p.tiles_m * kiln_p.tiles_n, bi = w / tiles, t = w - bi * tiles;
  const int64_t tm = t / kiln_p.tiles_n, tn = t - tm * kiln_p.tiles_n;
  kiln_batch_offsets(kiln_p, bi, kiln_off_a, kiln_off_b, kiln_off_o, kiln_off_e0, kiln_off_e1);
  kiln_m0 = tm * int64_t(KILN_BM);
  kiln_n0 = tn * int64_t(KILN_BN);
  kiln_a_chunks_here = kiln_a_chunks && kiln_off_a % 8l == 0l;
  kiln_b_chunks_here = kiln_b_chunks && kiln_off_b % 8l == 0l;
}

// The 8 f16 elements of a 16-byte chunk, in address order (no loop: llvmpipe's loop limiter counts
// every iteration).
void kiln_unpack_chunk(uvec4 v, out f16vec2 h[4]) {
  h[0] = unpackFloat2x16(v.x);
  h[1] = unpackFloat2x16(v.y);
  h[2] = unpackFloat2x16(v.z);
  h[3] = unpackFloat2x16(v.w);
}

// Invocation tid's two chunks of a and of b for the step at k0 (kiln_tile_element's chunked order):
// each chunk wholly inside a chunked operand is one 16-byte load; the others element by element,
// zero outside the operand. (Loops rolled when emulated: KILN_CM_UNROLL; at most 34 iterations a
// step, with both operands element by element.)
void kiln_cm_fetch(int64_t k0) {
  const uint tid = gl_LocalInvocationIndex;
  KILN_CM_UNROLL for (uint j = 0u; j < 2u; ++j) {
    uint am, ak, bk, bn;
    kiln_tile_element(tid, 8u * j, am, ak, bk, bn);  // the chunks' first elements
    const int64_t gm = kiln_m0 + int64_t(am), gk = k0 + int64_t(ak);
    const int64_t am_step = kiln_a_m_inner ? 1l : 0l, bn_step = kiln_b_k_inner ? 0l : 1l;
    f16vec2 h[4];
    if (kiln_a_chunks_here && gm + 7l * am_step < kiln_p.m && gk + 7l * (1l - am_step) < kiln_p.k) {
      kiln_unpack_chunk(KilnChunkRef(kiln_p.a_ + uint64_t(kiln_off_a + gm * kiln_p.a_m + gk * kiln_p.a_k) * 2ul).v, h);
      kiln_ra[8u * j] = h[0].x, kiln_ra[8u * j + 1u] = h[0].y, kiln_ra[8u * j + 2u] = h[1].x, kiln_ra[8u * j + 3u] = h[1].y;
      kiln_ra[8u * j + 4u] = h[2].x, kiln_ra[8u * j + 5u] = h[2].y, kiln_ra[8u * j + 6u] = h[3].x, kiln_ra[8u * j + 7u] = h[3].y;
    } else {
      KILN_CM_UNROLL for (uint q = 0u; q < 8u; ++q) {
        const int64_t m = gm + int64_t(q) * am_step, k = gk + int64_t(q) * (1l - am_step);
        kiln_ra[8u * j + q] =
            m < kiln_p.m && k < kiln_p.k
                ? float16_t(kiln_load_a(kiln_p.a_ + uint64_t(kiln_off_a + m * kiln_p.a_m + k * kiln_p.a_k) * uint64_t(KILN_S0)))
                : float16_t(0.0);
      }
    }
    const int64_t hk = k0 + int64_t(bk), hn = kiln_n0 + int64_t(bn);
    if (kiln_b_chunks_here && hn + 7l * bn_step < kiln_p.n && hk + 7l * (1l - bn_step) < kiln_p.k) {
      kiln_unpack_chunk(KilnChunkRef(kiln_p.b_ + uint64_t(kiln_off_b + hk * kiln_p.b_k + hn * kiln_p.b_n) * 2ul).v, h);
      kiln_rb[8u * j] = h[0].x, kiln_rb[8u * j + 1u] = h[0].y, kiln_rb[8u * j + 2u] = h[1].x, kiln_rb[8u * j + 3u] = h[1].y;
      kiln_rb[8u * j + 4u] = h[2].x, kiln_rb[8u * j + 5u] = h[2].y, kiln_rb[8u * j + 6u] = h[3].x, kiln_rb[8u * j + 7u] = h[3].y;
    } else {
      KILN_CM_UNROLL for (uint q = 0u; q < 8u; ++q) {
        const int64_t k = hk + int64_t(q) * (1l - bn_step), n = hn + int64_t(q) * bn_step;
        kiln_rb[8u * j + q] =
            k < kiln_p.k && n < kiln_p.n
                ? float16_t(kiln_load_b(kiln_p.b_ + uint64_t(kiln_off_b + k * kiln_p.b_k + n * kiln_p.b_n) * uint64_t(KILN_S1)))
                : float16_t(0.0);
      }
    }
  }
}

void kiln_cm_put(uint r, int64_t on, float v) {
  const int64_t om = kiln_m0 + int64_t(r);
  const uint64_t e0 = kiln_p.ext[0] + uint64_t(kiln_off_e0 + om * kiln_p.ext_m[0] + on * kiln_p.ext_n[0]) * uint64_t(KILN_S2);
  const uint64_t e1 = kiln_p.ext[1] + uint64_t(kiln_off_e1 + om * kiln_p.ext_m[1] + on * kiln_p.ext_n[1]) * uint64_t(KILN_S3);
  kiln_put(kiln_p.out_ + uint64_t(kiln_off_o + om * kiln_p.n + on) * uint64_t(KILN_SOUT), e0, e1, v);
}
