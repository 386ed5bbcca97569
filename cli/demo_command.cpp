// `attnlens demo`: every attention-graph method on the bundled example stack, with ASCII heat maps and timings.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "cli/attention_commands.hpp"
#include "io/atomic_file.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;

constexpr const char* kExampleRelative = "data/example/attention.npy";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

/// Default input: $ATTNLENS_DATA (the .npy itself, or a data folder holding example/attention.npy), else
/// data/example/attention.npy under the current directory, else under the executable's parent's parent
/// (build-dir/attnlens -> source tree).
std::string resolve_default_input() {
  if (const char* env = std::getenv("ATTNLENS_DATA"); env != nullptr && *env != '\0') {
    const fs::path p(env);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (const fs::path& c : {p / "example" / "attention.npy", p / "attention.npy"}) {
        if (is_file(c)) return c.string();
      }
      throw InputError("ATTNLENS_DATA='" + p.string() + "' is a folder without example/attention.npy or attention.npy");
    }
    if (is_file(p)) return p.string();
    throw InputError("ATTNLENS_DATA='" + p.string() + "' does not exist");
  }
  std::vector<std::string> tried;
  const fs::path here(kExampleRelative);
  if (is_file(here)) return here.string();
  tried.push_back(fs::absolute(here).string());
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path candidate = exe.parent_path().parent_path() / kExampleRelative;
    if (is_file(candidate)) return candidate.string();
    tried.push_back(candidate.string());
  }
  std::string list;
  for (const auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  throw InputError("cannot find the example attention stack (tried " + list +
                   "); pass --input FILE.npy or set ATTNLENS_DATA");
}

std::string format_seconds(double s) {
  char buf[32];
  if (s < 1.0) {
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  }
  return buf;
}

/// Top-k patches of a per-patch vector (length = layout.patches()).
nlohmann::json top_patches(const double* values, const TokenLayout& layout, int k) {
  const int g = layout.patches();
  std::vector<int> idx(static_cast<std::size_t>(g));
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, g);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int a, int b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
  nlohmann::json out = nlohmann::json::array();
  for (int i = 0; i < k; ++i) {
    const int p = idx[static_cast<std::size_t>(i)];
    out.push_back({{"patch", p}, {"row", p / layout.grid_w}, {"col", p % layout.grid_w}, {"value", values[p]}});
  }
  return out;
}

/// Patch part of a key vector of length N (prefix dropped) or G (already patches only).
const double* patch_part(const Array& keys, const TokenLayout& layout) {
  const std::int64_t n = keys.shape.back();
  return keys.data.data() + (n == layout.patches() ? 0 : layout.prefix);
}

/// ASCII heat map of a patch vector on the grid: " .:-=+*#%@" by (value - min) / (max - min), each cell two
/// characters wide. Min-max rather than /max because flow values often differ by a few percent only (the printed
/// range says how much).
std::string heat_map(const double* values, const TokenLayout& layout) {
  static const std::string ramp = " .:-=+*#%@";
  const int g = layout.patches();
  double mx = 0.0, mn = g > 0 ? values[0] : 0.0;
  for (int i = 0; i < g; ++i) {
    mx = std::max(mx, values[i]);
    mn = std::min(mn, values[i]);
  }
  std::ostringstream s;
  const std::string border = "  +" + std::string(static_cast<std::size_t>(2 * layout.grid_w), '-') + "+\n";
  s << border;
  for (int r = 0; r < layout.grid_h; ++r) {
    s << "  |";
    for (int c = 0; c < layout.grid_w; ++c) {
      const double v = values[r * layout.grid_w + c];
      int level = 0;
      if (mx > mn) {
        level = static_cast<int>(std::floor((v - mn) / (mx - mn) * static_cast<double>(ramp.size())));
        level = std::clamp(level, 0, static_cast<int>(ramp.size()) - 1);
      }
      s << ramp[static_cast<std::size_t>(level)] << ramp[static_cast<std::size_t>(level)];
    }
    s << "|\n";
  }
  s << border;
  s << "  patch values from " << fmt_number(mn) << " to " << fmt_number(mx) << "\n";
  return s.str();
}

struct DemoState {
  std::string input;
  std::string output_dir = "out/demo";
  int threads = 0;
  bool quiet = false;
};

struct Output {
  std::string file;
  LabeledArray result;
};

struct Step {
  std::string name;         // key in summary.json
  std::string description;  // printed
  double seconds = 0.0;
  std::vector<Output> outputs;
  nlohmann::json summary = nlohmann::json::object();
};

void run_demo(const DemoState& st) {
  const std::string input = st.input.empty() ? resolve_default_input() : st.input;
  if (st.threads < 0) throw InputError("--threads " + std::to_string(st.threads) + " must be >= 0 (0 = all cores)");
  const LoadedStack stack = load_stack(input, false);
  StackSettings cls;  // CLS row, explicitly selected; 1 prefix token and a square grid
  cls.query_row = 0;
  const TokenLayout layout = stack_layout(stack.view.tokens, cls);
  if (!st.quiet) {
    std::cout << "attnlens demo on " << input << " " << stack.array.shape_string() << ": " << stack.view.layers
              << " layers, " << stack.view.heads << " heads, " << stack.view.tokens << " tokens = " << layout.prefix
              << " prefix + " << layout.grid_h << "x" << layout.grid_w << " patches\n\n";
  }

  std::vector<Step> steps;
  auto timed = [&](const std::string& name, const std::string& description, const std::function<void(Step&)>& f) {
    Step s;
    s.name = name;
    s.description = description;
    const auto t0 = std::chrono::steady_clock::now();
    f(s);
    s.seconds = seconds_since(t0);
    s.summary["seconds"] = s.seconds;
    s.summary["description"] = description;
    steps.push_back(std::move(s));
  };
  auto key_vector_summary = [&](Step& s, const Array& keys) {
    s.summary["top5_patches"] = top_patches(patch_part(keys, layout), layout, 5);
  };

  timed("raw", "raw attention, last layer, head mean, CLS row", [&](Step& s) {
    RawSettings o;
    static_cast<StackSettings&>(o) = cls;
    s.outputs.push_back({"raw_cls.npy", raw_attention(stack.view, o)});
    key_vector_summary(s, s.outputs[0].result.array);
  });
  timed("rollout_abnar", "rollout (Abnar & Zuidema), CLS row", [&](Step& s) {
    RolloutSettings o;
    static_cast<StackSettings&>(o) = cls;
    s.outputs.push_back({"rollout_abnar_cls.npy", attention_rollout(stack.view, o)});
    key_vector_summary(s, s.outputs[0].result.array);
  });
  timed("rollout_vit_explain", "rollout (vit-explain reference: max fusion, discard 0.9), CLS row, patches, / max",
        [&](Step& s) {
          RolloutSettings o;
          static_cast<StackSettings&>(o) = cls;
          o.mode = RolloutMode::VitExplainReference;
          o.fusion = HeadFusion::Max;
          o.discard_ratio = 0.9;
          o.scale = Scale::Max;
          o.patches_only = true;
          s.outputs.push_back({"rollout_vit_explain_cls.npy", attention_rollout(stack.view, o)});
          key_vector_summary(s, s.outputs[0].result.array);
        });
  timed("flow_cls", "attention flow from CLS at the last layer, normalised", [&](Step& s) {
    FlowSettings o;
    static_cast<StackSettings&>(o) = cls;
    o.normalize = true;
    s.outputs.push_back({"flow_cls.npy", attention_flow(stack.view, o)});
    key_vector_summary(s, s.outputs[0].result.array);
  });
  timed("flow_all", "attention flow from every node, normalised", [&](Step& s) {
    FlowSettings o;  // full matrices: no query row
    o.normalize = true;
    o.scope_all = true;
    o.threads = st.threads;
    ProgressBar bar("flow", "sources", !st.quiet);
    ProgressFn progress;
    if (bar.enabled()) progress = [&bar](long long done, long long total) { bar.update(done, total); };
    s.outputs.push_back({"flow_all.npy", attention_flow(stack.view, o, progress)});
    bar.finish();
    const Array& a = s.outputs[0].result.array;  // [L,N,N]; summary: CLS row of the last layer
    const std::int64_t n = a.shape[2];
    const double* last_cls = a.data.data() + (a.shape[0] - 1) * n * n;
    s.summary["top5_patches"] = top_patches(last_cls + layout.prefix, layout, 5);
    s.summary["top5_of"] = "last layer, CLS row";
  });
  timed("flow_metzger", "input-to-output flow (Metzger et al.), per token, to CLS", [&](Step& s) {
    MetzgerSettings o;
    static_cast<StackSettings&>(o) = cls;
    s.outputs.push_back({"flow_metzger.npy", attention_flow_metzger(stack.view, o)});
    key_vector_summary(s, s.outputs[0].result.array);
  });
  constexpr double kPatchSize = 8.0;
  timed("distance", "mean attention distance (patch size 8 px)", [&](Step& s) {
    DistanceSettings o;
    o.patch_size = kPatchSize;
    s.outputs.push_back({"distance.npy", attention_distance(stack.view, o)});
    const Array& d = s.outputs[0].result.array;  // [L,H]
    std::vector<double> per_layer;
    for (std::int64_t l = 0; l < d.shape[0]; ++l) {
      double sum = 0.0;
      for (std::int64_t h = 0; h < d.shape[1]; ++h) sum += d.data[static_cast<std::size_t>(l * d.shape[1] + h)];
      per_layer.push_back(sum / static_cast<double>(d.shape[1]));
    }
    s.summary["mean_distance_per_layer_px"] = per_layer;
  });
  timed("heads", "DINO head maps, last layer, CLS row, masks at threshold 0.6", [&](Step& s) {
    HeadMapsSettings o;
    static_cast<StackSettings&>(o) = cls;
    o.threshold = 0.6;
    HeadMaps r = attention_head_maps(stack.view, o);
    const Array& maps = r.maps.array;  // [H,gh,gw]
    nlohmann::json per_head = nlohmann::json::array();
    for (std::int64_t h = 0; h < maps.shape[0]; ++h) {
      per_head.push_back(top_patches(maps.data.data() + h * layout.patches(), layout, 5));
    }
    s.summary["top5_patches_per_head"] = per_head;
    s.outputs.push_back({"heads.npy", std::move(r.maps)});
    s.outputs.push_back({"heads_masks.npy", std::move(r.masks)});
  });

  // Write everything only after every method succeeded.
  const fs::path dir(st.output_dir);
  nlohmann::json summary;
  summary["input"] = input;
  summary["input_shape"] = stack.array.shape;
  summary["layout"] = {{"prefix_tokens", layout.prefix}, {"grid", {layout.grid_h, layout.grid_w}}};
  summary["methods"] = nlohmann::json::object();
  for (Step& s : steps) {
    nlohmann::json files = nlohmann::json::array();
    for (const Output& o : s.outputs) {
      write_array((dir / o.file).string(), o.result.array, o.result.dims);
      files.push_back({{"file", o.file}, {"shape", o.result.array.shape}, {"dims", o.result.dims}});
    }
    s.summary["outputs"] = files;
    summary["methods"][s.name] = s.summary;
  }
  write_file_atomic((dir / "summary.json").string(), summary.dump(2) + "\n");

  if (st.quiet) {
    std::cout << "outputs written to " << dir.string() << std::endl;
    return;
  }
  auto find = [&](const std::string& name) -> const Step& {
    return *std::find_if(steps.begin(), steps.end(), [&](const Step& s) { return s.name == name; });
  };
  const Array& rollout_cls = find("rollout_abnar").outputs[0].result.array;
  const Array& flow_cls = find("flow_cls").outputs[0].result.array;
  std::cout << "rollout (Abnar & Zuidema), CLS row over the " << layout.grid_h << "x" << layout.grid_w
            << " patch grid (\" .:-=+*#%@\" from min to max):\n"
            << heat_map(patch_part(rollout_cls, layout), layout) << "\n";
  std::cout << "attention flow from CLS at the last layer, normalised, same characters:\n"
            << heat_map(patch_part(flow_cls, layout), layout) << "\n";

  std::cout << std::left << std::setw(82) << "method" << std::setw(12) << "time"
            << "output\n";
  for (const Step& s : steps) {
    std::string outs;
    for (const Output& o : s.outputs) outs += (outs.empty() ? "" : ", ") + o.file + " " + o.result.array.shape_string();
    std::cout << std::left << std::setw(82) << s.description << std::setw(12) << format_seconds(s.seconds) << outs
              << "\n";
  }
  std::cout << "\n";
  print_distance_table(find("distance").outputs[0].result.array, kPatchSize);
  std::cout << "\noutputs written to " << dir.string() << std::endl;
}

}  // namespace

void add_demo_command(CLI::App& app, Action& action) {
  auto st = std::make_shared<DemoState>();
  CLI::App* sub = app.add_subcommand(
      "demo",
      "Run every attention method on the bundled synthetic example stack (data/example/attention.npy, [6,4,50,50]: "
      "6 layers, 4 heads, CLS + 7x7 patches of 8 px): raw, rollout (Abnar; vit-explain reference), flow (CLS; all "
      "nodes), flow-metzger, distance, heads. Writes .npy outputs and summary.json (top-5 patches, timings), prints "
      "ASCII heat maps and timings");
  sub->add_option("-i,--input", st->input,
                  "Attention stack to use instead of the example (default: $ATTNLENS_DATA — the .npy or a data "
                  "folder with example/attention.npy — else data/example/attention.npy in the current directory, "
                  "else next to the executable's source tree); must have 1 prefix token and a square grid")
      ->type_name("INPUT.npy");
  sub->add_option("-o,--output", st->output_dir, "Output folder (default out/demo; created if missing)")
      ->type_name("DIR");
  sub->add_option("--threads", st->threads, "Threads for the all-nodes flow (default 0 = all cores)");
  sub->add_flag("-q,--quiet", st->quiet, "Print only the final 'outputs written to' line (and warnings)");
  sub->callback([st, &action] { action = [st] { run_demo(*st); }; });
}

}  // namespace attnlens::cli
