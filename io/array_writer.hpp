// Writes result arrays as .npy (float64), .csv or .json, chosen from the output file's extension.
#pragma once

#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {


/// .npy: float64 C order. .csv: one line per index of the leading dimensions (index columns named by `dims`),
/// one column per element of the last dimension (header "<last dim>_0", ...); rank 0/1 give a single row.
/// .json: {"shape": [...], "dims": [...], "data": nested lists}. Numbers keep 17 significant digits.
/// Atomic (see atomic_file.hpp). Throws InputError for an unknown extension or a dims/rank mismatch.
void write_array(const std::string& path, const Array& array, const DimNames& dims);

/// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, quote or line break; else as is.
std::string csv_field(const std::string& text);

/// The same encodings into a string, for tests and for callers that bundle outputs.
std::string encode_array(const Array& array, const DimNames& dims, const std::string& extension);

}  // namespace attnlens
ATTNLENS_API_END
