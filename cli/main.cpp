// attnlens: command-line front end. It links only the LibTorch-free layers (core, io): --help, --version and the
// attention, demo and tokenize commands start in milliseconds. A model command (explain, evaluate, ...) hands the
// whole command line over to the model-command plugin (cli/model_main.cpp), loaded with dlopen only then.
// Exit codes: 0 success (and --help/--version), 2 bad input or usage, 1 internal error (cli/run_app.hpp).
#include <dlfcn.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "attnlens/version.hpp"
#include "cli/attention_commands.hpp"
#include "cli/run_app.hpp"
#include "io/system.hpp"

#ifndef ATTNLENS_PLUGIN_RELATIVE
#define ATTNLENS_PLUGIN_RELATIVE "../lib/attnlens"
#endif
#ifndef ATTNLENS_HAS_MODELS
#define ATTNLENS_HAS_MODELS 1
#endif

namespace {

namespace fs = std::filesystem;

/// The commands the plugin runs, with the one-line summary the front end's --help lists. Their own options and
/// full descriptions live in the plugin (`attnlens explain --help` loads it).
struct ModelCommand {
  const char* name;
  const char* summary;
};
constexpr ModelCommand kModelCommands[] = {
    {"predict", "Classify images (ViT, DeiT, DINO, DeiT III, DINOv2, CLIP): top-k classes, logits, probabilities"},
    {"capture", "Save a model's attention (and its gradient) for one image as [L,H,N,N] .npy"},
    {"explain", "Explain images (overlays, maps, CSV, JSON, HTML for every method) or, with --text, texts"},
    {"heads", "Per-head attention maps of one layer with DINO's masks, as a PNG grid"},
    {"query", "Attention of one query patch over the image, per layer and head"},
    {"distance", "Mean attention distance per layer and head, averaged over images"},
    {"evaluate", "How faithful are the explanations? Blank-out, deletion/insertion, perturbation, localisation"},
    {"attack", "Attacks that test whether explanations point at what matters (fgsm on images, words on text)"},
    {"prune", "AttAttr head pruning of a text classifier: accuracy as heads are masked"},
    {"tree", "AttAttr attribution tree of one text (Graphviz DOT/SVG)"},
    {"triggers", "AttAttr adversarial triggers mined from training texts and inserted into held-out ones"},
    {"merge", "Joins the shards of an evaluation (--shard K/N runs) into the one process's outputs"},
};

bool is_model_command(const char* arg) {
  for (const ModelCommand& c : kModelCommands)
    if (std::strcmp(arg, c.name) == 0) return true;
  return false;
}

/// Loads the model-command plugin and runs the command line there. The plugin lies beside the executable in the
/// build tree and in LIBDIR/attnlens once installed.
int run_model_command(int argc, char** argv) {
  constexpr const char* kPlugin = "attnlens_model_commands.so";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path() / kPlugin);
    candidates.push_back((exe.parent_path() / ATTNLENS_PLUGIN_RELATIVE / kPlugin).lexically_normal());
  }
  for (const fs::path& path : candidates) {
    if (!fs::exists(path, ec)) continue;
    // LibTorch's OpenMP threads spin while they wait for one another. On a machine where another process keeps a
    // core busy, a spinning thread burns the time slice its partner needs, and a run with 2 threads was 3-15x
    // slower than with 1. Passive waiting costs little on an idle machine (bench/threads.py) and avoids that.
    // OpenMP reads the setting when it is loaded, i.e. with the plugin, so it is set here, unless the user did.
    setenv("OMP_WAIT_POLICY", "PASSIVE", /*overwrite=*/0);
    attnlens::keep_freed_memory();  // the tensors of every layer's pass reuse freed memory (io/system.hpp)
    void* plugin = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (plugin == nullptr) {
      std::cerr << "attnlens: error: cannot load the model commands from " << path.string() << ": " << dlerror()
                << std::endl;
      return 2;
    }
    using Entry = int (*)(int, char**);
    const auto entry = reinterpret_cast<Entry>(dlsym(plugin, "attnlens_run_model_command"));
    if (entry == nullptr) {
      std::cerr << "attnlens: error: " << path.string() << " is not an attnlens model-command plugin" << std::endl;
      return 2;
    }
    return entry(argc, argv);  // the plugin stays loaded until the process exits
  }
  std::string tried;
  for (const fs::path& p : candidates) tried += (tried.empty() ? "" : ", ") + p.string();
  std::cerr << "attnlens: error: '" << argv[1] << "' needs the model commands (" << kPlugin << "), not found (tried "
            << tried << ")"
            << (ATTNLENS_HAS_MODELS ? "" : "; this attnlens was built without LibTorch (-DATTNLENS_MODELS=OFF)")
            << std::endl;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && is_model_command(argv[1])) return run_model_command(argc, argv);

  CLI::App app{"attnlens " ATTNLENS_VERSION_STRING
               " - explains what a Transformer looked at when it made a decision, and measures how trustworthy the "
               "explanation is. Image classifiers (ViT, DeiT, DINO, DeiT III, DINOv2, CLIP) and text classifiers "
               "(BERT) from safetensors, or the saved attention stack of any model (.npy): raw attention, rollout, "
               "exact attention flow, "
               "gradient rollout, Chefer relevance, AttAttr, blank-out, head maps; evaluated by blank-out agreement, "
               "deletion/insertion, perturbation, localisation and attacks.",
               "attnlens"};
  // Whether evaluations can run over MPI ranks decides how a cluster job is launched (README: Large evaluations).
  app.set_version_flag("--version",
                       std::string("attnlens ") + ATTNLENS_VERSION_STRING +
                           (ATTNLENS_HAS_MPI ? " (with MPI: mpirun/srun run evaluations over ranks)"
                                             : " (without MPI: evaluations run in one process or as --shard K/N)"),
                       "Print the version and exit");
  app.require_subcommand(1);
  attnlens::cli::Action action;
  attnlens::cli::add_attention_commands(app, action);
  attnlens::cli::add_demo_command(app, action);
  attnlens::cli::add_tokenize_command(app, action);
  // Listed for --help only: main() hands these to the plugin before parsing.
  for (const ModelCommand& c : kModelCommands) app.add_subcommand(c.name, c.summary)->group("Model commands");

  // Set last: CLI11 copies a parent's footer into subcommands created after it.
  app.footer(
      "Subcommand 'attention <method>' methods (no model needed; any framework's attention stack):\n"
      "  raw           fused attention of one layer (mean/max/min over heads)\n"
      "  rollout       attention rollout: Abnar & Zuidema 2020 (default), jacobgil/vit-explain reference mode,\n"
      "                Chefer et al. baseline (spec section 1)\n"
      "  flow          attention flow, exact max-flow (Abnar & Zuidema 2020; spec 3.1)\n"
      "  flow-metzger  input-to-output flow after Metzger et al. 2022 (spec 3.2)\n"
      "  distance      mean attention distance per layer/head (Dosovitskiy et al.; spec 6)\n"
      "  heads         DINO per-head attention maps and threshold masks (spec 7)\n"
      "  grad-rollout  gradient rollout from the attention and its gradient (vit-explain; spec 2)\n"
      "  chefer        Chefer et al. 2021 relevance from the attention and its gradient (spec 4.1)\n"
      "Text: tokenize (BERT WordPiece tokens, ids and token types of a text or pair, as JSON).\n"
      "Examples: attnlens explain photo.jpg --model deit/ --method rollout,chefer -o out/\n"
      "          attnlens explain --model bert-sst2/ --text \"a gripping, funny film\" --method all -o out/\n"
      "          attnlens evaluate --data canvas --limit 100 -o out/eval\n"
      "          attnlens attention rollout attention.npy --query-row 0 --patches-only -o cls.npy\n"
      "Exit codes: 0 ok, 2 bad input or options (nothing written), 1 internal error.");
  return attnlens::cli::run_app(app, action, argc, argv);
}
