// `attnlens attention <method>` subcommands, and the registration of the other subcommands main.cpp offers.
//
// Each subcommand is thin: parse -> check output path(s) -> load + validate INPUT -> call one function of
// core/stack_methods.hpp (which checks the options, selects the row and shapes the result) -> write atomically ->
// report.
#pragma once

#include <functional>
#include <string>

#include "cli/common.hpp"

namespace CLI {
class App;
}

namespace attnlens::cli {

/// What a parsed subcommand will run once parsing succeeded (set by the subcommand's callback).
using Action = std::function<void()>;

/// Registers `attention` and its method subcommands on `app`; the chosen one stores its work in `action`.
void add_attention_commands(CLI::App& app, Action& action);

/// Registers `demo` (cli/demo_command.cpp).
void add_demo_command(CLI::App& app, Action& action);

/// Registers `predict` and `capture` (cli/model_commands.cpp) and `explain` (cli/explain_command.cpp). Declared here
/// so that main.cpp needs no LibTorch header.
void add_model_commands(CLI::App& app, Action& action);
void add_explain_command(CLI::App& app, Action& action);

/// Registers `evaluate` (cli/evaluate_command.cpp): faithfulness metrics over an image data set.
void add_evaluate_command(CLI::App& app, Action& action);
/// Registers `fgsm` under the `attack` group (cli/attack_fgsm_command.cpp).
void add_attack_fgsm_command(CLI::App& attack, Action& action);

/// Registers `tokenize` (cli/tokenize_command.cpp): BERT WordPiece encodings as JSON.
void add_tokenize_command(CLI::App& app, Action& action);

}  // namespace attnlens::cli
