// Contractions on cooperative matrices: out[b, m, n] = sum_k a[b, m, k] * b[b, k, n], the tile
// product of glsl/coopmat.glsl (inlined before this file, after glsl/contract_params.glsl) over the
// batch x tiles of the request: a and b read through their strides, each staged along its
// contiguous axis (a along m when m is its unit-stride axis, b along k likewise), the epilogue's
// operands laid out over the output.

KilnContractParams kiln_p;
int64_t kiln_off_a, kiln_off_b, kiln_off_o, kiln_off_e0, kiln_off_e1;

int64_t kiln_cm_setup() {
  kiln_p = pc.params;
  kiln_cm_m = kiln_p.m, kiln_cm_n = kiln_p.n, kiln_cm_k = kiln_p.k;
  kiln_a_m_inner = kiln_p.a_k != 1l && kiln_p.a_m == 1l;
  kiln_b_k_inner = kiln_p.b_n != 1l && kiln_p.b_k == 1l;
  return kiln_p.batch * kiln_p.tiles_m * kiln_p.tiles_n;
}

void kiln_cm_tile(int64_t w) {
  const int64_t tiles = kiln_p.tiles_m * kiln_p.tiles_n, bi = w / tiles, t = w - bi * tiles;
  const int64_t tm = t / kiln_p.tiles_n, tn = t - tm * kiln_p.tiles_n;
  kiln_batch_offsets(kiln_p, bi, kiln_off_a, kiln_off_b, kiln_off_o, kiln_off_e0, kiln_off_e1);
  kiln_m0 = tm * int64_t(KILN_BM);
  kiln_n0 = tn * int64_t(KILN_BN);
}

void kiln_cm_fetch(int64_t k0) {
  KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
    uint am, ak, bk, bn;
    kiln_tile_element(gl_LocalInvocationIndex + 256u * i, am, ak, bk, bn);
    const int64_t gm = kiln_m0 + int64_t(am), gk = k0 + int64_t(ak);
    kiln_ra[i] = gm < kiln_p.m && gk < kiln_p.k
                     ? float16_t(kiln_load_a(kiln_p.a_ + uint64_t(kiln_off_a + gm * kiln_p.a_m + gk * kiln_p.a_k) *
                                                            uint64_t(KILN_S0)))
                     : float16_t(0.0);
    const int64_t hk = k0 + int64_t(bk), hn = kiln_n0 + int64_t(bn);
    kiln_rb[i] = hk < kiln_p.k && hn < kiln_p.n
                     ? float16_t(kiln_load_b(kiln_p.b_ + uint64_t(kiln_off_b + hk * kiln_p.b_k + hn * kiln_p.b_n) *
                                                            uint64_t(KILN_S1)))
                     : float16_t(0.0);
  }
}

void kiln_cm_put(uint r, int64_t on, float v) {
  const int64_t om = kiln_m0 + int64_t(r);
  const uint64_t e0 = kiln_p.ext[0] + uint64_t(kiln_off_e0 + om * kiln_p.ext_m[0] + on * kiln_p.ext_n[0]) * uint64_t(KILN_S2);
  const uint64_t e1 = kiln_p.ext[1] + uint64_t(kiln_off_e1 + om * kiln_p.ext_m[1] + on * kiln_p.ext_n[1]) * uint64_t(KILN_S3);
  kiln_put(kiln_p.out_ + uint64_t(kiln_off_o + om * kiln_p.n + on) * uint64_t(KILN_SOUT), e0, e1, v);
}
