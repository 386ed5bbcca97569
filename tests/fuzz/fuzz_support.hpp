// Shared by the libFuzzer harnesses: the one exception type that is not a finding, and scratch files so that the
// readers' own file entry points (stat, fopen, gzopen) run exactly as they do on a user's file.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "core/array.hpp"

namespace attnlens::fuzz {

/// Runs `body`; attnlens::InputError (bad input, reported to the user) is the intended outcome for most inputs and
/// is swallowed. Anything else escapes, and libFuzzer reports it as a crash (an uncaught exception aborts).
template <typename Body>
void only_input_errors(Body&& body) {
  try {
    body();
  } catch (const InputError&) {
  }
}

/// A folder of this process's own, on tmpfs when there is one (every input is written to a file), removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    const auto d = base / ("attnlens-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(scratch_dir(), ignored);
    });
    return d;
  }();
  return dir;
}

/// Writes `bytes` to scratch_dir()/relative (creating folders) and returns the path.
inline std::string put_file(const std::string& relative, std::string_view bytes) {
  const auto path = scratch_dir() / relative;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

/// The fuzzer's input as bytes.
inline std::string_view as_bytes(const std::uint8_t* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

/// A finding that is not a crash by itself (a broken invariant): abort so libFuzzer records the input.
[[noreturn]] inline void invariant_failed(const char* what) {
  std::fprintf(stderr, "attnlens fuzz: invariant failed: %s\n", what);
  std::abort();
}

}  // namespace attnlens::fuzz
