// Output files appear complete or not at all: content goes to a temporary file in the target folder, then rename().
#pragma once

#include <string>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Writes `content` to `path` atomically; creates missing parent folders. Throws InputError when it cannot.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace attnlens
ATTNLENS_API_END
