// Small helpers shared by the core test suites.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
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

}  // namespace attnlens::testing
