// How every attnlens entry point (the front end in main.cpp and the model-command plugin in model_main.cpp) parses
// its command line, runs the chosen subcommand and maps failures to exit codes: 0 success (and --help/--version),
// 2 bad input or usage (one line "attnlens: error: ..." on stderr, no output file written), 1 internal error.
#pragma once

#include <CLI/CLI.hpp>
#include <exception>
#include <functional>
#include <iostream>
#include <string>

#include "core/array.hpp"

namespace attnlens::cli {

/// Collapses a message to one line (CLI11 messages may contain newlines).
inline std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

/// Thrown to end the process with `code` and no message of its own (another process of the job gave it).
struct QuietExit {
  int code = 2;
};

/// Parses argv with `app` (whose subcommand callbacks set `action`), then runs `action`.
inline int run_app(CLI::App& app, const std::function<void()>& action, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    if (action) action();
    return 0;
  } catch (const QuietExit& e) {
    return e.code;
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "attnlens: error: " << one_line(e.what()) << " (run with --help for usage)" << std::endl;
    return 2;
  } catch (const InputError& e) {
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

}  // namespace attnlens::cli
