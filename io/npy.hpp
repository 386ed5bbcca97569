// NumPy .npy files: the exchange format for attention stacks and results.
#pragma once

#include <string>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Reads a version 1/2/3 .npy holding little- or big-endian float32 or float64 in C order; values become double.
/// Throws InputError naming the file for: missing/unreadable file, bad magic or header, unsupported dtype,
/// fortran_order, truncated data, trailing garbage, absurd shapes.
Array read_npy(const std::string& path);

/// Serialises `array` as a version 1.0 little-endian float64 C-order .npy (to memory; see write_array for files).
std::string encode_npy(const Array& array);

}  // namespace attnlens
ATTNLENS_API_END
