// The check of the tensor-core kernels run on host threads (test_cuda_blocks_host.cpp: mma.sync,
// test_cuda_wgmma_host.cpp: wgmma): out[batch, m, n] (f32) against long double sums of the 16-bit
// operands, optionally y * 0.5 + bias[n] - res[batch, m, n], within the tensor cores' bound (a
// rounding per 16 products: K-scaled). |a|(bi, i, kk) and |b|(kk, j) give the operands' values.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

namespace kiln {

inline void expect_tensor_core_sums(std::int64_t batch, std::int64_t m, std::int64_t n, std::int64_t k,
                                    const std::function<long double(std::int64_t, std::int64_t, std::int64_t)>& a,
                                    const std::function<long double(std::int64_t, std::int64_t)>& b, bool epilogue,
                                    const std::vector<float>& bias, const std::vector<float>& res,
                                    const std::vector<float>& out) {
  int bad = 0;
  for (std::int64_t bi = 0; bi < batch; ++bi)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n && bad < 5; ++j) {
        long double s = 0, mag = 0;
        for (std::int64_t kk = 0; kk < k; ++kk) {
          const long double x = a(bi, i, kk), y = b(kk, j);
          s += x * y;
          mag += std::fabs(x * y);
        }
        const std::size_t o = std::size_t((bi * m + i) * n + j);
        const double want = epilogue ? double(s) * 0.5 + bias[std::size_t(j)] - res[o] : double(s);
        const double tol = double(k / 16 + 2) * 0x1p-24 * double(mag) + 4e-6 * std::fabs(want) + 1e-6;
        if (!(std::fabs(out[o] - want) <= tol)) {
          ++bad;
          ADD_FAILURE() << "out[" << bi << "," << i << "," << j << "] = " << out[o] << ", want " << want;
        }
      }
}

}  // namespace kiln
