// Convolutions on cooperative matrices: the implicit GEMM of glsl/conv.glsl (per group, rows
// m = (image, output position), columns n = output channel, k = (input channel, kernel position),
// or (position, channel) with channels_last) as the tile product of glsl/coopmat.glsl (inlined
// before this file, after glsl/conv_params.glsl), grid-stride over groups x tiles. The a tile is
// gathered from the input windows as it is fetched: positions in the padding or between dilated
// input elements read 0. Rows and k are split in 32-bit arithmetic: the runtime sends only
// requests with M and K below 2^31 (conv_coopmat_fits in codegen/families/conv.cpp).

KilnConvParams kiln_p;
int64_t kiln_g;  // the tile's group
int kiln_rank;
bool kiln_channels_last;
uint kiln_cg, kiln_ksize[3];
// The tile's rows: row r's image at [4 r], its output position along spatial dimension j at
// [4 r + 1 + j] (written by invocations 0..127 in kiln_cm_tile).
shared int kiln_rows[KILN_BM * 4];

int64_t kiln_cm_setup() {
  kiln_p = pc.params;
  kiln_cm_m = kiln_p.m, kiln_cm_n = kiln_p.n, kiln_cm_k = kiln_p.k;
  kiln_rank = int(kiln_p.rank);
  kiln_channels_last = kiln_p.channels_last != 0l;
  kiln_cg = uint(kiln_p.cg);
  [[unroll]] for (int j = 0; j < 3; ++j) kiln_ksize[j] = j < kiln_rank ? uint(kiln_p.k_size[j]) : 1u;
  // a: neighbouring rows are neighbouring positions (NCHW) unless the channels are adjacent
  // (NHWC, k channels last); b: along k unless the kernel's output channels are (HWIO).
  kiln_a_m_inner = !kiln_channels_last;
  kiln_b_k_inner = kiln_p.kn_o != 1l;
  return kiln_p.groups * kiln_p.tiles_m * kiln_p.tiles_n;
}

void kiln_cm_tile(int64_t w) {
  const int64_t tiles = kiln_p.tiles_m * kiln_p.tiles_n, t = w - (w / tiles) * tiles;
  const int64_t tm = t / kiln_p.tiles_n, tn = t - tm * kiln_p.tiles_n;
  kiln_g = w / tiles;
  kiln_m0 = tm * int64_t(KILN_BM);
  kiln_n0 = tn * int64_t(KILN_BN);
  const uint r = gl_LocalInvocationIndex;
  if (r < uint(KILN_BM)) {
    const int64_t m = kiln_m0 + int64_t(r);
    uint rem = m < kiln_cm_m ? uint(m) : 0u;
    [[unroll]] for (int j = 2; j >= 0; --j) {
      uint o = 0u;
      if (j < kiln_rank) {
        const uint s = uint(kiln_p.out_size[j]), q = rem / s;
        o = rem - q * s;
        rem = q;
      }
      kiln_rows[4u * r + 1u + uint(j)] = int(o);
    }
    kiln_rows[4u * r] = int(rem);
  }
}

// kiln_split_k in 32 bits: k's channel (returned) and kernel position.
uint kiln_split_k32(uint k, out uint kj[3]) {
  uint ci = 0u;
  if (kiln_channels_last) {
    const uint q = k / kiln_cg;
    ci = k - q * kiln_cg;
    k = q;
  }
  [[unroll]] for (int j = 2; j >= 0; --j) {
    const uint q = k / kiln_ksize[j];
    kj[j] = k - q * kiln_ksize[j];
    k = q;
  }
  return kiln_channels_last ? ci : k;
}

// The input under row r of the tile at channel ci and kernel position kj (0 in the padding and in
// the holes of a dilated input).
float16_t kiln_conv_a(uint r, uint ci, uint kj[3]) {
  int64_t off = kiln_g * kiln_p.in_group + int64_t(kiln_rows[4u * r]) * kiln_p.in_n + int64_t(ci) * kiln_p.in_c;
  bool inside = true;
  [[unroll]] for (int j = 0; j < 3; ++j) {
    if (j < kiln_rank) {
      const int64_t q = int64_t(kiln_rows[4u * r + 1u + uint(j)]) * kiln_p.stride[j] - kiln_p.pad_lo[j] +
                        int64_t(kj[j]) * kiln_p.kdil[j];
      const int64_t d = kiln_p.idil[j], qi = d == 1l ? q : (q >= 0l ? q / d : -1l);
      inside = inside && q >= 0l && qi * d == q && qi < kiln_p.in_size[j];
      off += qi * kiln_p.in_sp[j];
    }
  }
  return inside ? float16_t(kiln_load_a(kiln_p.a_ + uint64_t(off) * uint64_t(KILN_S0))) : float16_t(0.0);
}

// The group's kernel at output channel n, channel ci, position kj.
float16_t kiln_conv_b(uint ci, uint kj[3], int64_t n) {
  int64_t off = kiln_g * kiln_p.kn_group + n * kiln_p.kn_o + int64_t(ci) * kiln_p.kn_c;
  [[unroll]] for (int j = 0; j < 3; ++j) off += int64_t(kj[j]) * kiln_p.kn_sp[j];  // (0 past the rank)
  return float16_t(kiln_load_b(kiln_p.b_ + uint64_t(off) * uint64_t(KILN_S1)));
}

// kiln_tile_element's order: along m, invocation tid keeps row tid % 128 and takes k = tid / 128 + 2 i;
// along k, it keeps k = tid % 32 (split once) and takes rows tid / 32 + 8 i (b likewise).
void kiln_cm_fetch(int64_t k0) {
  const uint tid = gl_LocalInvocationIndex;
  uint kj[3];
  if (kiln_a_m_inner) {
    const uint r = tid % uint(KILN_BM);
    const bool row = kiln_m0 + int64_t(r) < kiln_cm_m;
    KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
      const int64_t k = k0 + int64_t(tid / uint(KILN_BM) + 2u * i);
      kiln_ra[i] = float16_t(0.0);
      if (row && k < kiln_cm_k) {
        const uint ci = kiln_split_k32(uint(k), kj);
        kiln_ra[i] = kiln_conv_a(r, ci, kj);
      }
    }
  } else {
    const int64_t k = k0 + int64_t(tid % uint(KILN_BK));
    const uint ci = kiln_split_k32(k < kiln_cm_k ? uint(k) : 0u, kj);
    KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
      const uint r = tid / uint(KILN_BK) + 8u * i;
      kiln_ra[i] = kiln_m0 + int64_t(r) < kiln_cm_m && k < kiln_cm_k ? kiln_conv_a(r, ci, kj) : float16_t(0.0);
    }
  }
  if (kiln_b_k_inner) {
    const int64_t k = k0 + int64_t(tid % uint(KILN_BK));
    const uint ci = kiln_split_k32(k < kiln_cm_k ? uint(k) : 0u, kj);
    KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
      const int64_t n = kiln_n0 + int64_t(tid / uint(KILN_BK) + 8u * i);
      kiln_rb[i] = n < kiln_cm_n && k < kiln_cm_k ? kiln_conv_b(ci, kj, n) : float16_t(0.0);
    }
  } else {
    const int64_t n = kiln_n0 + int64_t(tid % uint(KILN_BN));
    KILN_CM_UNROLL for (uint i = 0u; i < 16u; ++i) {
      const int64_t k = k0 + int64_t(tid / uint(KILN_BN) + 2u * i);
      kiln_rb[i] = float16_t(0.0);
      if (n < kiln_cm_n && k < kiln_cm_k) {
        const uint ci = kiln_split_k32(uint(k), kj);
        kiln_rb[i] = kiln_conv_b(ci, kj, n);
      }
    }
  }
}

void kiln_cm_put(uint r, int64_t on, float v) {
  const int64_t image = int64_t(kiln_rows[4u * r]);
  int64_t o = kiln_g * kiln_p.out_group + image * kiln_p.out_n + on * kiln_p.out_o;
  int64_t e0 = kiln_g * kiln_p.ext_group[0] + image * kiln_p.ext_n[0] + on * kiln_p.ext_o[0];
  int64_t e1 = kiln_g * kiln_p.ext_group[1] + image * kiln_p.ext_n[1] + on * kiln_p.ext_o[1];
  [[unroll]] for (int j = 0; j < 3; ++j) {
    if (j < kiln_rank) {
      const int64_t p = int64_t(kiln_rows[4u * r + 1u + uint(j)]);
      o += p * kiln_p.out_sp[j];
      e0 += p * kiln_p.ext_sp[j];
      e1 += p * kiln_p.ext_sp[3 + j];
    }
  }
  kiln_put(kiln_p.out_ + uint64_t(o) * uint64_t(KILN_SOUT), kiln_p.ext[0] + uint64_t(e0) * uint64_t(KILN_S2),
           kiln_p.ext[1] + uint64_t(e1) * uint64_t(KILN_S3), v);
}
