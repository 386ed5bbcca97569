// String helpers for tests that check generated markup (SVG, HTML, DOT).
#pragma once

#include <cstddef>
#include <string>

namespace attnlens::test {

/// Occurrences of `needle` in `haystack`, overlapping ones included.
inline std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace attnlens::test
