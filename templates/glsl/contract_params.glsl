// The contraction kernels' params block (368 bytes; codegen/families/contract.cpp declares the same
// layout as KilnContractParams), its device address the push constant, and the batch offsets:
// inlined before glsl/contract.glsl and glsl/contract_coopmat.glsl.
layout(buffer_reference, std430, buffer_reference_align = 8) readonly buffer KilnContractParams {
  uint64_t out_;
  uint64_t a_;
  uint64_t b_;
  int64_t m, n, k;
  int64_t batch;
  int64_t batch_rank;
  int64_t batch_shape[4];
  int64_t batch_strides[12];  // [a, b, out][dim], in elements
  int64_t a_m, a_k, b_k, b_n;
  int64_t tiles_m, tiles_n;
  uint64_t ext[2];             // the epilogue's operands (0: none), laid out over the result
  int64_t ext_batch_strides[8];  // [operand][dim]
  int64_t ext_m[2], ext_n[2];
  int64_t reserved[2];
};
layout(push_constant, std430) uniform KilnContractPush { KilnContractParams params; } pc;

// The offsets (elements) of batch |bi| in a, b, the output and the epilogue's operands.
void kiln_batch_offsets(KilnContractParams P, int64_t bi, out int64_t off_a, out int64_t off_b, out int64_t off_o,
                        out int64_t off_e0, out int64_t off_e1) {
  off_a = 0l, off_b = 0l, off_o = 0l, off_e0 = 0l, off_e1 = 0l;
  int64_t rem = bi;
  [[unroll]] for (int d = 3; d >= 0; --d) {
    if (int64_t(d) < P.batch_rank) {
      const int64_t s = P.batch_shape[d], q = rem / s, idx = rem - q * s;
      rem = q;
      off_a += idx * P.batch_strides[d];
      off_b += idx * P.batch_strides[4 + d];
      off_o += idx * P.batch_strides[8 + d];
      off_e0 += idx * P.ext_batch_strides[d];
      off_e1 += idx * P.ext_batch_strides[4 + d];
    }
  }
}
