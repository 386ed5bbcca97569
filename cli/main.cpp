// attnlens: command-line front end. Exit codes: 0 success (and --help/--version), 2 bad input or usage
// (one line "attnlens: error: ..." on stderr, no output file written), 1 internal error.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>

#include "cli/attention_commands.hpp"
#include "cli/text_commands.hpp"
#include "core/array.hpp"

#ifndef ATTNLENS_VERSION
#define ATTNLENS_VERSION "unknown"
#endif

namespace {

/// Collapses a message to one line (CLI11 messages may contain newlines).
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "attnlens " ATTNLENS_VERSION
      " - explain what a Vision Transformer looked at: rollout, exact attention flow, gradient rollout, Chefer "
      "relevance, attention distance and DINO head maps, from a model (safetensors) or a saved attention stack (.npy).",
      "attnlens"};
  app.set_version_flag("--version", std::string("attnlens ") + ATTNLENS_VERSION, "Print the version and exit");
  app.require_subcommand(1);
  attnlens::cli::Action action;
  attnlens::cli::add_attention_commands(app, action);
  attnlens::cli::add_demo_command(app, action);
  attnlens::cli::add_model_commands(app, action);
  attnlens::cli::add_explain_command(app, action);
  attnlens::cli::add_evaluate_command(app, action);
  attnlens::cli::add_tokenize_command(app, action);
  attnlens::cli::add_text_commands(app, action);

  // Set last: CLI11 copies a parent's footer into subcommands created after it.
  app.footer(
      "Subcommand 'attention <method>' methods:\n"
      "  raw           fused attention of one layer (mean/max/min over heads)\n"
      "  rollout       attention rollout: Abnar & Zuidema 2020 (default), jacobgil/vit-explain reference mode,\n"
      "                Chefer et al. baseline (spec section 1)\n"
      "  flow          attention flow, exact max-flow (Abnar & Zuidema 2020; spec 3.1)\n"
      "  flow-metzger  input-to-output flow after Metzger et al. 2022 (spec 3.2)\n"
      "  distance      mean attention distance per layer/head (Dosovitskiy et al.; spec 6)\n"
      "  heads         DINO per-head attention maps and threshold masks (spec 7)\n"
      "Model commands: predict (classify), explain (overlays, maps, CSV, JSON, HTML for every method), capture\n"
      "  (save a model's attention stack for the attention methods).\n"
      "Text: tokenize (BERT WordPiece tokens, ids and token types of a text or pair, as JSON).\n"
      "Examples: attnlens explain photo.jpg --model deit/ --method rollout,chefer -o out/\n"
      "          attnlens attention rollout attention.npy --query-row 0 --patches-only -o cls.npy\n"
      "Exit codes: 0 ok, 2 bad input or options (nothing written), 1 internal error.");

  try {
    app.parse(argc, argv);
    if (action) action();
    return 0;
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "attnlens: error: " << one_line(e.what()) << " (run with --help for usage)" << std::endl;
    return 2;
  } catch (const attnlens::InputError& e) {
    std::cerr << "attnlens: error: " << one_line(e.what()) << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "attnlens: internal error: " << one_line(e.what()) << std::endl;
    return 1;
  } catch (...) {
    std::cerr << "attnlens: internal error: unknown exception" << std::endl;
    return 1;
  }
}
