// The model commands (LibTorch, OpenCV) as a plugin: the attnlens front end (main.cpp) loads this shared object
// only when one of them runs, so that --help, --version and the attention commands start without LibTorch.
#include <CLI/CLI.hpp>

#include "cli/attention_commands.hpp"
#include "cli/item_run.hpp"
#include "cli/run_app.hpp"
#include "cli/text_commands.hpp"

extern "C" __attribute__((visibility("default"))) int attnlens_run_model_command(int argc, char** argv) {
  CLI::App app{"attnlens " ATTNLENS_VERSION " model commands", "attnlens"};
  app.require_subcommand(1);
  attnlens::cli::Action action;
  attnlens::cli::add_model_commands(app, action);
  attnlens::cli::add_explain_command(app, action);
  attnlens::cli::add_evaluate_command(app, action);
  attnlens::cli::add_merge_command(app, action);
  attnlens::cli::add_text_commands(app, action);
  return attnlens::cli::run_app(app, action, argc, argv);
}
