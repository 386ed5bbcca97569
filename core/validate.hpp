// Checks an attention stack before any method runs, so bad input fails with a clear message instead of a bad number.
#pragma once

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct AttentionCheck {
  double max_row_sum_error = 0.0;  ///< max over all rows of |sum(row) - 1|
  int worst_layer = 0, worst_head = 0, worst_row = 0;
};

/// Throws InputError when any value is NaN/Inf or negative (message names layer, head, row, column).
/// Returns how far rows are from summing to 1; the caller decides whether that is a warning or an error.
AttentionCheck check_attention(const AttentionView& attention);

/// Tolerance above which rows "far from summing to 1" are reported (float32 softmax output is within ~1e-5).
inline constexpr double kRowSumTolerance = 1e-3;

}  // namespace attnlens
ATTNLENS_API_END
