// The attention-graph methods of core/stack_methods.hpp for Python: the same settings structs and functions that
// `attnlens attention <method>` runs, so that both give the same numbers and the same error messages. Each binding
// returns (result, warning): the warning is the row-sum message of check_attention_stack ("" when the rows are
// fine), which the Python layer turns into warnings.warn. The GIL is released while a method computes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include "cli/common.hpp"  // parse_grid: the CLI's --grid parser and its message
#include "core/stack_methods.hpp"
#include "python/src/arrays.hpp"
#include "python/src/bindings.hpp"

namespace attnlens::python {

namespace {

/// Settings every method shares, from the Python keywords (grid as "HxW" or "" for the default square grid).
struct Common {
  int prefix_tokens = 1;
  std::string grid;
  std::optional<int> query_row;
  bool patches_only = false;
  std::string scale = "none";
  bool strict = false;
};

void apply(const Common& c, StackSettings& s) {
  s.prefix_tokens = c.prefix_tokens;
  std::tie(s.grid_h, s.grid_w) = cli::parse_grid(c.grid);
  s.query_row = c.query_row;
  s.patches_only = c.patches_only;
  s.scale = parse_scale(c.scale);
}

HeadFusion parse_fusion(const std::string& s) {
  if (s == "mean") return HeadFusion::Mean;
  if (s == "max") return HeadFusion::Max;
  if (s == "min") return HeadFusion::Min;
  throw InputError("--fusion must be mean, max or min, got '" + s + "'");
}

Residual parse_residual(const std::string& s) {
  if (s == "half") return Residual::Half;
  if (s == "none") return Residual::None;
  throw InputError("--residual must be half or none, got '" + s + "'");
}

RolloutMode parse_mode(const std::string& s) {
  if (s == "abnar") return RolloutMode::Abnar;
  if (s == "vit-explain-reference") return RolloutMode::VitExplainReference;
  if (s == "chefer") return RolloutMode::Chefer;
  throw InputError("--mode must be abnar, vit-explain-reference or chefer, got '" + s + "'");
}

/// Reads and checks the attention stack as the CLI's load_stack does (shape, NaN/Inf, negative values, row sums).
std::string load_attention(py::array a, bool strict, StackInput& in) {
  read_stack(std::move(a), "attention", in);
  const bool rank4 = in.shape.size() == 4;
  py::gil_scoped_release nogil;
  return check_attention_stack(in.view, rank4, strict, "attention");
}

/// Reads a gradient stack as the CLI's load_gradients does: any sign, no row sums, but finite.
void load_gradient(py::array a, const std::string& name, StackInput& in) {
  read_stack(std::move(a), name, in);
  const double* p = in.view.data;
  const std::size_t n = static_cast<std::size_t>(in.view.layers) * in.view.heads * in.view.tokens * in.view.tokens;
  bool finite = true;
  {
    py::gil_scoped_release nogil;
    for (std::size_t i = 0; i < n && finite; ++i) finite = std::isfinite(p[i]);
  }
  if (!finite) throw InputError("'" + name + "' holds NaN or Inf");
}

using Result = std::pair<py::array, std::string>;

template <typename Method>
LabeledArray compute(Method&& method) {
  py::gil_scoped_release nogil;
  return method();
}

Result raw(py::array attention, int layer, const std::string& fusion, bool all_layers, const Common& c) {
  RawSettings s;
  apply(c, s);
  s.fusion = parse_fusion(fusion);
  s.layer = layer;
  s.all_layers = all_layers;
  StackInput in;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  LabeledArray r = compute([&] { return raw_attention(in.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

Result rollout(py::array attention, const std::string& fusion, double discard_ratio, const std::string& residual,
               const std::string& mode, int start_layer, bool all_layers, const Common& c) {
  RolloutSettings s;
  apply(c, s);
  s.fusion = parse_fusion(fusion);
  s.discard_ratio = discard_ratio;
  s.residual = parse_residual(residual);
  s.mode = parse_mode(mode);
  s.start_layer = start_layer;
  s.all_layers = all_layers;
  StackInput in;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  LabeledArray r = compute([&] { return attention_rollout(in.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

Result flow(py::array attention, const std::string& scope, bool normalize, const std::string& residual, int threads,
            const Common& c) {
  FlowSettings s;
  apply(c, s);
  if (scope != "cls" && scope != "all") throw InputError("--scope must be cls or all, got '" + scope + "'");
  s.scope_all = scope == "all";
  s.normalize = normalize;
  s.residual = parse_residual(residual);
  s.threads = threads;
  StackInput in;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  LabeledArray r;
  if (s.scope_all) {
    // L*N max-flow sources: long enough that Ctrl-C must work (the worker stops at its next source).
    r = run_interruptible([&](const CancelFlag* cancel) { return attention_flow(in.view, s, {}, cancel); });
  } else {
    r = compute([&] { return attention_flow(in.view, s); });
  }
  return {to_numpy(std::move(r.array)), warning};
}

Result flow_metzger(py::array attention, const std::string& form, const std::string& residual, const Common& c) {
  MetzgerSettings s;
  apply(c, s);
  if (form == "per-token")
    s.form = MetzgerForm::PerToken;
  else if (form == "shapley")
    s.form = MetzgerForm::Shapley;
  else
    throw InputError("--form must be per-token or shapley, got '" + form + "'");
  s.residual = parse_residual(residual);
  StackInput in;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  LabeledArray r = compute([&] { return attention_flow_metzger(in.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

Result distance(py::array attention, double patch_size, bool renormalize, const Common& c) {
  DistanceSettings s;
  apply(c, s);
  s.patch_size = patch_size;
  s.renormalize = renormalize;
  StackInput in;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  LabeledArray r = compute([&] { return attention_distance(in.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

std::tuple<py::array, py::object, std::string> heads(py::array attention, int layer, std::optional<double> threshold,
                                                     const Common& c) {
  HeadMapsSettings s;
  apply(c, s);
  s.layer = layer;
  s.threshold = threshold;
  StackInput in;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  HeadMaps r;
  {
    py::gil_scoped_release nogil;
    r = attention_head_maps(in.view, s);
  }
  py::object masks = py::none();
  if (threshold) masks = to_numpy(std::move(r.masks.array));
  return {to_numpy(std::move(r.maps.array)), masks, warning};
}

Result gradient_rollout(py::array attention, py::array gradient, const std::string& gradient_name, double discard_ratio,
                        bool reference, const Common& c) {
  GradientRolloutSettings s;
  apply(c, s);
  s.discard_ratio = discard_ratio;
  s.reference = reference;
  StackInput in, grad;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  load_gradient(std::move(gradient), gradient_name, grad);
  LabeledArray r = compute([&] { return attention_gradient_rollout(in.view, grad.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

Result chefer(py::array attention, py::array gradient, int start_layer, const Common& c) {
  CheferSettings s;
  apply(c, s);
  s.start_layer = start_layer;
  StackInput in, grad;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  load_gradient(std::move(gradient), "attention_grad", grad);
  LabeledArray r = compute([&] { return attention_chefer(in.view, grad.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

Result grad_sam(py::array attention, py::array gradient, const std::string& axis, const Common& c) {
  GradSamSettings s;
  apply(c, s);
  s.axis = parse_grad_sam_axis(axis);
  StackInput in, grad;
  std::string warning = load_attention(std::move(attention), c.strict, in);
  load_gradient(std::move(gradient), "attention_grad", grad);
  LabeledArray r = compute([&] { return attention_grad_sam(in.view, grad.view, s); });
  return {to_numpy(std::move(r.array)), warning};
}

/// Seconds per repeat of what `attnlens attention flow` computes once the file's values are in memory, timed in C++:
/// a float32 stack's conversion to double (as read_npy converts), the stack check and the method. The baseline of
/// bench/bench_python.py's overhead ratio.
std::vector<double> time_flow(py::array attention, const std::string& scope, int threads, int repeats) {
  check_float_array(attention, "attention");
  const std::vector<std::int64_t> shape(attention.shape(), attention.shape() + attention.ndim());
  const bool single = attention.dtype().itemsize() == 4;
  const void* data = attention.data();
  const auto n = static_cast<std::size_t>(attention.size());
  FlowSettings s;
  s.scope_all = scope == "all";
  s.threads = threads;
  std::vector<double> seconds;
  py::gil_scoped_release nogil;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<double> converted;
    const double* values = static_cast<const double*>(data);
    if (single) {
      const auto* f = static_cast<const float*>(data);
      converted.assign(f, f + n);
      values = converted.data();
    }
    const AttentionView view = AttentionView::of(values, shape);
    check_attention_stack(view, shape.size() == 4, false, "attention");
    LabeledArray r = attention_flow(view, s);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return seconds;
}

Common make_common(int prefix_tokens, const std::string& grid, std::optional<int> query_row, bool patches_only,
                   const std::string& scale, bool strict) {
  return Common{prefix_tokens, grid, query_row, patches_only, scale, strict};
}

}  // namespace

void bind_stack_methods(py::module_& m) {
  // Every binding takes the shared settings as keywords after its own; the Python layer documents them.
  m.def(
      "raw",
      [](py::array a, int layer, const std::string& fusion, bool all_layers, int prefix_tokens, const std::string& grid,
         std::optional<int> query_row, bool patches_only, const std::string& scale, bool strict) {
        return raw(std::move(a), layer, fusion, all_layers,
                   make_common(prefix_tokens, grid, query_row, patches_only, scale, strict));
      },
      py::arg("attention"), py::kw_only(), py::arg("layer") = -1, py::arg("fusion") = "mean",
      py::arg("all_layers") = false, py::arg("prefix_tokens") = 1, py::arg("grid") = "",
      py::arg("query_row") = py::none(), py::arg("patches_only") = false, py::arg("scale") = "none",
      py::arg("strict") = false, "core attention_stack raw_attention: (result, warning)");
  m.def(
      "rollout",
      [](py::array a, const std::string& fusion, double discard_ratio, const std::string& residual,
         const std::string& mode, int start_layer, bool all_layers, int prefix_tokens, const std::string& grid,
         std::optional<int> query_row, bool patches_only, const std::string& scale, bool strict) {
        return rollout(std::move(a), fusion, discard_ratio, residual, mode, start_layer, all_layers,
                       make_common(prefix_tokens, grid, query_row, patches_only, scale, strict));
      },
      py::arg("attention"), py::kw_only(), py::arg("fusion") = "mean", py::arg("discard_ratio") = 0.0,
      py::arg("residual") = "half", py::arg("mode") = "abnar", py::arg("start_layer") = 0,
      py::arg("all_layers") = false, py::arg("prefix_tokens") = 1, py::arg("grid") = "",
      py::arg("query_row") = py::none(), py::arg("patches_only") = false, py::arg("scale") = "none",
      py::arg("strict") = false, "core attention_rollout: (result, warning)");
  m.def(
      "attention_flow",
      [](py::array a, const std::string& scope, bool normalize, const std::string& residual, int threads,
         int prefix_tokens, const std::string& grid, std::optional<int> query_row, bool patches_only,
         const std::string& scale, bool strict) {
        return flow(std::move(a), scope, normalize, residual, threads,
                    make_common(prefix_tokens, grid, query_row, patches_only, scale, strict));
      },
      py::arg("attention"), py::kw_only(), py::arg("scope") = "cls", py::arg("normalize") = false,
      py::arg("residual") = "half", py::arg("threads") = 1, py::arg("prefix_tokens") = 1, py::arg("grid") = "",
      py::arg("query_row") = py::none(), py::arg("patches_only") = false, py::arg("scale") = "none",
      py::arg("strict") = false, "core attention_flow: (result, warning); Ctrl-C stops scope 'all'");
  m.def(
      "flow_metzger",
      [](py::array a, const std::string& form, const std::string& residual, int prefix_tokens, const std::string& grid,
         std::optional<int> query_row, bool patches_only, const std::string& scale, bool strict) {
        return flow_metzger(std::move(a), form, residual,
                            make_common(prefix_tokens, grid, query_row, patches_only, scale, strict));
      },
      py::arg("attention"), py::kw_only(), py::arg("form") = "per-token", py::arg("residual") = "half",
      py::arg("prefix_tokens") = 1, py::arg("grid") = "", py::arg("query_row") = py::none(),
      py::arg("patches_only") = false, py::arg("scale") = "none", py::arg("strict") = false,
      "core attention_flow_metzger: (result, warning)");
  m.def(
      "mean_attention_distance",
      [](py::array a, double patch_size, bool renormalize, int prefix_tokens, const std::string& grid, bool strict) {
        return distance(std::move(a), patch_size, renormalize,
                        make_common(prefix_tokens, grid, std::nullopt, false, "none", strict));
      },
      py::arg("attention"), py::kw_only(), py::arg("patch_size"), py::arg("renormalize") = false,
      py::arg("prefix_tokens") = 1, py::arg("grid") = "", py::arg("strict") = false,
      "core attention_distance: (result, warning)");
  m.def(
      "head_maps",
      [](py::array a, int layer, std::optional<double> threshold, int prefix_tokens, const std::string& grid,
         std::optional<int> query_row, bool strict) {
        return heads(std::move(a), layer, threshold,
                     make_common(prefix_tokens, grid, query_row, false, "none", strict));
      },
      py::arg("attention"), py::kw_only(), py::arg("layer") = -1, py::arg("threshold") = py::none(),
      py::arg("prefix_tokens") = 1, py::arg("grid") = "", py::arg("query_row") = py::none(), py::arg("strict") = false,
      "core attention_head_maps: (maps, masks or None, warning)");
  m.def(
      "gradient_rollout",
      [](py::array a, py::array g, const std::string& gradient_name, double discard_ratio, bool reference,
         int prefix_tokens, const std::string& grid, std::optional<int> query_row, bool patches_only,
         const std::string& scale, bool strict) {
        return gradient_rollout(std::move(a), std::move(g), gradient_name, discard_ratio, reference,
                                make_common(prefix_tokens, grid, query_row, patches_only, scale, strict));
      },
      py::arg("attention"), py::arg("gradient"), py::kw_only(), py::arg("gradient_name") = "attention_grad",
      py::arg("discard_ratio") = 0.9, py::arg("reference") = false, py::arg("prefix_tokens") = 1, py::arg("grid") = "",
      py::arg("query_row") = py::none(), py::arg("patches_only") = false, py::arg("scale") = "none",
      py::arg("strict") = false, "core attention_gradient_rollout: (result, warning)");
  m.def(
      "chefer",
      [](py::array a, py::array g, int start_layer, int prefix_tokens, const std::string& grid,
         std::optional<int> query_row, bool patches_only, const std::string& scale, bool strict) {
        return chefer(std::move(a), std::move(g), start_layer,
                      make_common(prefix_tokens, grid, query_row, patches_only, scale, strict));
      },
      py::arg("attention"), py::arg("gradient"), py::kw_only(), py::arg("start_layer") = 0,
      py::arg("prefix_tokens") = 1, py::arg("grid") = "", py::arg("query_row") = py::none(),
      py::arg("patches_only") = false, py::arg("scale") = "none", py::arg("strict") = false,
      "core attention_chefer: (result, warning)");
  m.def(
      "grad_sam",
      [](py::array a, py::array g, const std::string& axis, int prefix_tokens, const std::string& grid,
         bool patches_only, const std::string& scale, bool strict) {
        return grad_sam(std::move(a), std::move(g), axis,
                        make_common(prefix_tokens, grid, std::nullopt, patches_only, scale, strict));
      },
      py::arg("attention"), py::arg("gradient"), py::kw_only(), py::arg("axis") = "columns",
      py::arg("prefix_tokens") = 1, py::arg("grid") = "",
      py::arg("patches_only") = false, py::arg("scale") = "none", py::arg("strict") = false,
      "core attention_grad_sam: (result, warning)");
  m.def("_time_flow", &time_flow, py::arg("attention"), py::arg("scope") = "cls", py::arg("threads") = 1,
        py::arg("repeats") = 1,
        "Seconds per repeat of (float32 -> double,) check_attention_stack and attention_flow, timed in C++ "
        "(for bench/bench_python.py)");
}

}  // namespace attnlens::python
