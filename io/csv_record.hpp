// The numbers of the CSV tables attnlens writes, and reading those tables back (RFC 4180 quoting, as csv_field writes
// it) one record at a time, so that a table which an interrupted run left with a half-written last line can still be
// read up to that line.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Reads the record that starts at `pos` into `fields` and moves `pos` past its newline. A quoted field may hold
/// commas, quotes (doubled) and newlines; '\r' outside quotes is dropped. False when the text ends before the
/// record's newline (a line cut short), `pos` then being the text's end.
bool next_csv_record(const std::string& text, std::size_t& pos, std::vector<std::string>& fields);

/// A number as the tables write it: 17 significant digits, which read back to the same double (so a merged or
/// resumed run sums exactly what one process sums); "" for NaN and infinities (a missing value).
std::string format_csv_number(double v);

/// A number field: NaN for an empty field (how the tables write a missing value); InputError naming `where` for
/// anything strtod does not consume entirely.
double parse_csv_number(const std::string& field, const std::string& where);

}  // namespace attnlens
ATTNLENS_API_END
