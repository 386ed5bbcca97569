#include "core/stack_methods.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/distance.hpp"
#include "core/gradient_methods.hpp"
#include "core/heads.hpp"

namespace attnlens {

namespace {

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// The prefix must leave tokens after it; a grid, when one is given, must fit the tokens even where the method
/// does not use it (a wrong grid means the user misreads the stack).
void check_layout(const AttentionView& attention, const StackSettings& s) {
  if (s.prefix_tokens < 0 || s.prefix_tokens >= attention.tokens)
    throw InputError("--prefix-tokens " + std::to_string(s.prefix_tokens) +
                     " must be at least 0 and less than the N = " + std::to_string(attention.tokens) + " tokens");
  if (s.grid_h != 0 || s.grid_w != 0) stack_layout(attention.tokens, s);
}

/// Matrix `index` of a stack [K,N,N] -> [N,N].
Array take_matrix(const Array& stack, std::int64_t index) {
  const std::int64_t n = stack.shape[1], m = stack.shape[2];
  Array out({n, m});
  std::copy_n(stack.data.begin() + index * n * m, n * m, out.data.begin());
  return out;
}

/// The query row (when set), then the prefix columns, then the scale, for results whose last two dimensions are
/// (query, key).
void finish_matrix(LabeledArray& r, const StackSettings& s) {
  if (s.query_row) {
    r.array = select_row(r.array, *s.query_row);
    r.dims.erase(r.dims.end() - 2);  // drop "query"
  }
  if (s.patches_only) r.array = drop_prefix_columns(r.array, s.prefix_tokens);
  scale_rows(r.array, s.scale);
}

/// The prefix columns, then the scale, for results whose last dimension is key.
void finish_vector(LabeledArray& r, const StackSettings& s) {
  if (s.patches_only) r.array = drop_prefix_columns(r.array, s.prefix_tokens);
  scale_rows(r.array, s.scale);
}

void check_same_shape(const AttentionView& attention, const AttentionView& gradient) {
  if (attention.layers != gradient.layers || attention.heads != gradient.heads || attention.tokens != gradient.tokens)
    throw InputError("the gradient stack must have the attention's shape: attention [" +
                     std::to_string(attention.layers) + "," + std::to_string(attention.heads) + "," +
                     std::to_string(attention.tokens) + "," + std::to_string(attention.tokens) + "], gradient [" +
                     std::to_string(gradient.layers) + "," + std::to_string(gradient.heads) + "," +
                     std::to_string(gradient.tokens) + "," + std::to_string(gradient.tokens) + "]");
}

}  // namespace

Scale parse_scale(const std::string& name, const std::string& option) {
  if (name == "none") return Scale::None;
  if (name == "max") return Scale::Max;
  if (name == "minmax") return Scale::MinMax;
  if (name == "sum") return Scale::Sum;
  throw InputError(option + " must be none, max, minmax or sum, got '" + name + "'");
}

void scale_rows(Array& a, Scale scale) {
  if (scale == Scale::None || a.data.empty()) return;
  const std::int64_t cols = a.rank() == 0 ? 1 : a.shape.back();
  if (cols == 0) return;
  const std::int64_t rows = a.size() / cols;
  for (std::int64_t i = 0; i < rows; ++i) {
    double* x = a.data.data() + i * cols;
    const double mx = *std::max_element(x, x + cols);
    const double mn = *std::min_element(x, x + cols);
    double offset = 0.0, denom = 1.0;
    if (scale == Scale::Max) {
      denom = mx;
    } else if (scale == Scale::MinMax) {
      offset = mn;
      denom = mx - mn;
    } else {
      denom = 0.0;
      for (std::int64_t j = 0; j < cols; ++j) denom += x[j];
    }
    if (denom == 0.0 || !std::isfinite(denom)) continue;
    for (std::int64_t j = 0; j < cols; ++j) x[j] = (x[j] - offset) / denom;
  }
}

Array select_row(const Array& a, int row) {
  const int r = a.rank();
  const std::int64_t rows = a.shape[r - 2], cols = a.shape[r - 1];
  std::vector<std::int64_t> shape(a.shape.begin(), a.shape.end() - 2);
  shape.push_back(cols);
  Array out(shape);
  const std::int64_t mats = a.size() / (rows * cols);
  for (std::int64_t i = 0; i < mats; ++i) {
    std::copy_n(a.data.begin() + (i * rows + row) * cols, cols, out.data.begin() + i * cols);
  }
  return out;
}

Array drop_prefix_columns(const Array& a, int prefix) {
  if (prefix <= 0) return a;
  const std::int64_t cols = a.shape.back();
  const std::int64_t kept = std::max<std::int64_t>(0, cols - prefix);
  std::vector<std::int64_t> shape = a.shape;
  shape.back() = kept;
  Array out(shape);
  const std::int64_t rows = cols == 0 ? 0 : a.size() / cols;
  for (std::int64_t i = 0; i < rows; ++i) {
    std::copy_n(a.data.begin() + i * cols + (cols - kept), kept, out.data.begin() + i * kept);
  }
  return out;
}

std::string check_attention_stack(const AttentionView& attention, bool rank4, bool strict, const std::string& source) {
  const AttentionCheck check = check_attention(attention);
  if (check.max_row_sum_error <= kRowSumTolerance) return "";
  std::string where = "layer " + std::to_string(check.worst_layer);
  if (rank4) where += ", head " + std::to_string(check.worst_head);
  where += ", row " + std::to_string(check.worst_row);
  const std::string what =
      "rows of '" + source + "' do not sum to 1: max |row sum - 1| = " + number_text(check.max_row_sum_error) + " at " +
      where + " (tolerance " + number_text(kRowSumTolerance) + "); expected post-softmax attention";
  if (strict) throw InputError(what);
  return what;
}

TokenLayout stack_layout(int tokens, const StackSettings& settings) {
  return TokenLayout::resolve(tokens, settings.prefix_tokens, settings.grid_h, settings.grid_w);
}

void check_query_row(int row, int tokens, const std::string& option) {
  if (row < 0 || row >= tokens) {
    throw InputError(option + " " + std::to_string(row) + " is out of range: the input has " + std::to_string(tokens) +
                     " tokens (valid: 0.." + std::to_string(tokens - 1) + ")");
  }
}

int resolve_layer(int layer, int layers, const std::string& option) {
  const int resolved = layer < 0 ? layer + layers : layer;
  if (resolved < 0 || resolved >= layers) {
    throw InputError(option + " " + std::to_string(layer) + " is out of range for " + std::to_string(layers) +
                     " layers (valid: " + std::to_string(-layers) + ".." + std::to_string(layers - 1) + ")");
  }
  return resolved;
}

LabeledArray raw_attention(const AttentionView& v, const RawSettings& s) {
  check_layout(v, s);
  if (s.query_row) check_query_row(*s.query_row, v.tokens);
  const int layer = s.all_layers ? 0 : resolve_layer(s.layer, v.layers, "--layer");
  Array fused = fuse_heads(v, s.fusion);  // [L,N,N]
  LabeledArray r;
  if (s.all_layers) {
    r.array = std::move(fused);
    r.dims = {"layer", "query", "key"};
  } else {
    r.array = take_matrix(fused, layer);
    r.dims = {"query", "key"};
  }
  finish_matrix(r, s);
  return r;
}

LabeledArray attention_rollout(const AttentionView& v, const RolloutSettings& s) {
  if (!(s.discard_ratio >= 0.0 && s.discard_ratio < 1.0))
    throw InputError("--discard-ratio " + number_text(s.discard_ratio) + " is outside [0, 1)");
  if (s.start_layer < 0) throw InputError("--start-layer " + std::to_string(s.start_layer) + " must be >= 0");
  check_layout(v, s);
  if (s.query_row) check_query_row(*s.query_row, v.tokens);
  if (s.start_layer >= v.layers) {
    throw InputError("--start-layer " + std::to_string(s.start_layer) + " is out of range for " +
                     std::to_string(v.layers) + " layers (valid: 0.." + std::to_string(v.layers - 1) + ")");
  }
  RolloutOptions core;
  core.mode = s.mode;
  core.fusion = s.fusion;
  core.discard_ratio = s.discard_ratio;
  core.residual = s.residual;
  core.start_layer = s.start_layer;
  core.prefix_tokens = s.prefix_tokens;
  LabeledArray r;
  if (s.query_row && !s.all_layers) {
    // One row of the final product, propagated as a row vector: O(L N^2) instead of the O(L N^3) matrix chain
    // (equal up to floating-point summation order).
    r.array = rollout_row(v, core, *s.query_row);  // [N]
    r.dims = {"key"};
    finish_vector(r, s);
    return r;
  }
  Array joint = rollout(v, core);  // [L - s, N, N]
  if (s.all_layers) {
    r.array = std::move(joint);
    r.dims = {"layer", "query", "key"};
  } else {
    r.array = take_matrix(joint, joint.shape[0] - 1);
    r.dims = {"query", "key"};
  }
  finish_matrix(r, s);
  return r;
}

LabeledArray attention_flow(const AttentionView& v, const FlowSettings& s, const ProgressFn& progress,
                            const CancelFlag* cancel) {
  if (s.threads < 0) throw InputError("--threads " + std::to_string(s.threads) + " must be >= 0 (0 = all cores)");
  check_layout(v, s);
  const int row = s.query_row.value_or(0);
  check_query_row(row, v.tokens);
  const Array capacities = flow_capacities(v, s.residual);  // [L,N,N]
  LabeledArray r;
  if (!s.scope_all) {
    r.array = attention_flow_from(capacities, v.layers, row);  // [N]
    r.dims = {"key"};
    if (s.normalize) scale_rows(r.array, Scale::Sum);
    finish_vector(r, s);
    return r;
  }
  r.array = attention_flow_all(capacities, s.threads, progress, cancel);  // [L,N,N]
  r.dims = {"layer", "query", "key"};
  if (s.normalize) scale_rows(r.array, Scale::Sum);  // over all N values, before the prefix columns are dropped
  finish_matrix(r, s);
  return r;
}

LabeledArray attention_flow_metzger(const AttentionView& v, const MetzgerSettings& s) {
  check_layout(v, s);
  const int row = s.query_row.value_or(0);
  check_query_row(row, v.tokens);
  const Array capacities = flow_capacities(v, s.residual);
  LabeledArray r;
  r.array = metzger_flow(capacities, row, s.form);  // [N]
  r.dims = {"key"};
  finish_vector(r, s);
  return r;
}

LabeledArray attention_distance(const AttentionView& v, const DistanceSettings& s) {
  if (!(s.patch_size > 0.0) || !std::isfinite(s.patch_size))
    throw InputError("--patch-size " + number_text(s.patch_size) + " must be a positive number of pixels");
  DistanceOptions core;
  core.layout = stack_layout(v.tokens, s);
  core.patch_size = s.patch_size;
  core.renormalize = s.renormalize;
  LabeledArray r;
  r.array = mean_attention_distance(v, core);  // [L,H]
  r.dims = {"layer", "head"};
  return r;
}

HeadMaps attention_head_maps(const AttentionView& v, const HeadMapsSettings& s) {
  if (s.threshold && !(*s.threshold > 0.0 && *s.threshold <= 1.0))
    throw InputError("--threshold " + number_text(*s.threshold) + " is outside (0, 1]");
  const TokenLayout layout = stack_layout(v.tokens, s);
  const int row = s.query_row.value_or(0);
  check_query_row(row, v.tokens);
  const int layer = resolve_layer(s.layer, v.layers, "--layer");
  HeadMaps out;
  out.maps.array = head_maps(v, layer, row, layout);  // [H,gh,gw]
  out.maps.dims = {"head", "row", "col"};
  if (s.threshold) {
    out.masks.array = threshold_masks(out.maps.array, *s.threshold);
    out.masks.dims = {"head", "row", "col"};
  }
  return out;
}

LabeledArray attention_gradient_rollout(const AttentionView& attention, const AttentionView& gradient,
                                        const GradientRolloutSettings& s) {
  check_same_shape(attention, gradient);
  check_layout(attention, s);
  if (s.query_row) check_query_row(*s.query_row, attention.tokens);
  GradRolloutOptions core;
  core.mode = s.reference ? GradRolloutMode::VitExplainReference : GradRolloutMode::Fixed;
  core.discard_ratio = s.discard_ratio;
  core.prefix_tokens = s.prefix_tokens;
  LabeledArray r;
  r.array = grad_rollout(attention, gradient, core);  // [N,N]
  r.dims = {"query", "key"};
  finish_matrix(r, s);
  return r;
}

LabeledArray attention_chefer(const AttentionView& attention, const AttentionView& gradient, const CheferSettings& s) {
  check_same_shape(attention, gradient);
  check_layout(attention, s);
  if (s.query_row) check_query_row(*s.query_row, attention.tokens);
  if (s.start_layer < 0 || s.start_layer >= attention.layers)
    throw InputError("--start-layer " + std::to_string(s.start_layer) + " is out of range for " +
                     std::to_string(attention.layers) + " layers (valid: 0.." + std::to_string(attention.layers - 1) +
                     ")");
  LabeledArray r;
  r.array = chefer_relevance(attention, gradient, s.start_layer);  // [N,N]
  r.dims = {"query", "key"};
  finish_matrix(r, s);
  return r;
}

LabeledArray attention_grad_sam(const AttentionView& attention, const AttentionView& gradient,
                                const GradSamSettings& s) {
  check_same_shape(attention, gradient);
  check_layout(attention, s);
  LabeledArray r;
  r.array = grad_sam(attention, gradient, s.axis);  // [N]
  r.dims = {s.axis == GradSamAxis::Columns ? "key" : "query"};
  finish_vector(r, s);
  return r;
}

}  // namespace attnlens
