// Output files appear complete or not at all: content goes to a temporary file in the target folder, then rename().
// And the one way to read a file back whole.
#pragma once

#include <string>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Writes `content` to `path` atomically; creates missing parent folders. Throws InputError when it cannot.
void write_file_atomic(const std::string& path, const std::string& content);

/// The whole content of `path`, as bytes. Throws InputError when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace attnlens
ATTNLENS_API_END
