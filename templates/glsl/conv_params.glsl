// The conv kernels' params block (528 bytes; codegen/families/conv.cpp declares the same layout as
// KilnConvParams), its device address the push constant, and the split of k: inlined before
// glsl/conv.glsl and glsl/conv_coopmat.glsl.
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KilnConvParams {
  uint64_t out_;
  uint64_t a_;  // the input
  uint64_t b_;  // the kernel
  uint64_t ext[2];
  int64_t groups, m, n, k;
  int64_t tiles_m, tiles_n;
  int64_t rank, batch, cg;
  int64_t out_size[3], k_size[3], in_size[3];
  int64_t stride[3], pad_lo[3], kdil[3], idil[3];
  int64_t in_group, in_n, in_c, in_sp[3];
  int64_t kn_group, kn_o, kn_c, kn_sp[3];
  int64_t out_group, out_n, out_o, out_sp[3];
  int64_t ext_group[2], ext_n[2], ext_o[2], ext_sp[6];  // ext_sp: [operand][dim]
  int64_t channels_last;  // k = (kernel position, input channel) instead of (input channel, position)
};
layout(push_constant, std430) uniform KilnConvPush { KilnConvParams params; } pc;

// k = (input channel, kernel position) — or (position, channel) with channels_last — split into
// its parts (the position's last spatial dimension fastest); returns the channel.
int64_t kiln_split_k(KilnConvParams P, int64_t k, out int64_t kj[3]) {
  int64_t ci = 0l;
  if (P.channels_last != 0l) {
    const int64_t q = k / P.cg;
    ci = k - q * P.cg;
    k = q;
  }
  [[unroll]] for (int j = 2; j >= 0; --j) {
    kj[j] = 0l;
    if (int64_t(j) < P.rank) {
      const int64_t q = k / P.k_size[j];
      kj[j] = k - q * P.k_size[j];
      k = q;
    }
  }
  return P.channels_last != 0l ? ci : k;
}
