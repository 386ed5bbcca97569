#include "core/validate.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace attnlens {

namespace {

std::string where(int layer, int head, int row, int col) {
  return "layer " + std::to_string(layer) + ", head " + std::to_string(head) + ", row " + std::to_string(row) +
         ", column " + std::to_string(col);
}

}  // namespace

AttentionCheck check_attention(const AttentionView& attention) {
  AttentionCheck check;
  const int n = attention.tokens;
  for (int l = 0; l < attention.layers; ++l) {
    for (int h = 0; h < attention.heads; ++h) {
      const double* m = attention.matrix(l, h);
      for (int i = 0; i < n; ++i) {
        const double* row = m + static_cast<std::size_t>(i) * n;
        double sum = 0.0;
        for (int j = 0; j < n; ++j) {
          const double v = row[j];
          if (std::isnan(v)) throw InputError("attention contains NaN at " + where(l, h, i, j));
          if (std::isinf(v))
            throw InputError(std::string("attention contains ") + (v > 0 ? "+Inf" : "-Inf") + " at " +
                             where(l, h, i, j));
          if (v < 0) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.6g", v);
            throw InputError(std::string("attention contains a negative value (") + buf + ") at " +
                             where(l, h, i, j) + "; pass post-softmax attention probabilities");
          }
          sum += v;
        }
        const double err = std::fabs(sum - 1.0);
        if (err > check.max_row_sum_error) {
          check.max_row_sum_error = err;
          check.worst_layer = l;
          check.worst_head = h;
          check.worst_row = i;
        }
      }
    }
  }
  return check;
}

}  // namespace attnlens
