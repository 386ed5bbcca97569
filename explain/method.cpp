#include "explain/method.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <string>

namespace attnlens {

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"raw",    "rollout",  "grad-rollout", "flow", "flow-metzger",
                                                 "chefer", "grad-sam", "heads"};
  return names;
}

std::unique_ptr<ExplanationMethod> make_method(const std::string& name, const MethodSettings& s) {
  using Factory = std::unique_ptr<ExplanationMethod> (*)(const MethodSettings&);
  static const std::map<std::string, Factory> factories = {
      {"raw", make_raw},   {"rollout", make_rollout},           {"grad-rollout", make_grad_rollout},
      {"flow", make_flow}, {"flow-metzger", make_flow_metzger}, {"chefer", make_chefer},
      {"grad-sam", make_grad_sam}, {"heads", make_heads}};
  const auto it = factories.find(name);
  if (it == factories.end()) {
    std::string known;
    for (const auto& n : method_names()) known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown method '" + name + "' (known: " + known + ")");
  }
  check_query_row_supported(name, s.query_row);
  return it->second(s);
}

Array patch_map(const Array& matrix, int row, const TokenLayout& layout) {
  const std::int64_t n = matrix.shape.back();
  Array out({layout.grid_h, layout.grid_w});
  const double* r = matrix.data.data() + static_cast<size_t>(row) * n + layout.prefix;
  std::copy(r, r + layout.patches(), out.data.begin());
  return out;
}

Array column_max(const Array& matrix) {
  const std::int64_t n = matrix.shape.back(), rows = matrix.size() / n;
  Array out({n}, -std::numeric_limits<double>::infinity());
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < n; ++j) out.data[j] = std::max(out.data[j], matrix.data[i * n + j]);
  return out;
}

void check_query_row_supported(const std::string& method, int query_row) {
  if (query_row == kColumnMax && method != "raw" && method != "rollout" && method != "flow")
    throw InputError("method " + method + " explains one query row; the column maximum over rows is offered for "
                     "raw, rollout and flow only");
  if (query_row < kColumnMax) throw InputError("--query-row must be >= 0");
}

Array patch_map_of_vector(const Array& vector, const TokenLayout& layout) {
  Array out({layout.grid_h, layout.grid_w});
  std::copy(vector.data.begin() + layout.prefix, vector.data.begin() + layout.prefix + layout.patches(),
            out.data.begin());
  return out;
}

}  // namespace attnlens
