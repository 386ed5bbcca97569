// Small helpers shared by the core test suites.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <utility>
#include <vector>

#include "core/array.hpp"

namespace attnlens::testing {

/// An Array of `shape` holding `data` (the sizes must agree).
inline Array make(std::vector<std::int64_t> shape, std::vector<double> data) {
  Array a(std::move(shape));
  EXPECT_EQ(a.data.size(), data.size());
  a.data = std::move(data);
  return a;
}

/// Element-wise EXPECT_NEAR with the failing element's index.
inline void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

/// [L,H,N,N] attention whose rows are softmaxes of logits uniform in [-3, 3], drawn from `rng` row by row.
inline Array random_softmax_stack(int L, int H, int N, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> logit(-3.0, 3.0);
  Array a({L, H, N, N});
  for (int r = 0; r < L * H * N; ++r) {
    double* row = a.data.data() + static_cast<std::size_t>(r) * N;
    double sum = 0.0;
    for (int j = 0; j < N; ++j) sum += row[j] = std::exp(logit(rng));
    for (int j = 0; j < N; ++j) row[j] /= sum;
  }
  return a;
}

}  // namespace attnlens::testing
