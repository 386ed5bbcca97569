#include "io/csv_record.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "core/array.hpp"

namespace attnlens {

std::string format_csv_number(double v) {
  if (!std::isfinite(v)) return "";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool next_csv_record(const std::string& text, std::size_t& pos, std::vector<std::string>& fields) {
  fields.assign(1, "");
  bool quoted_field = false;
  while (pos < text.size()) {
    const char ch = text[pos++];
    if (quoted_field) {
      if (ch == '"') {
        if (pos < text.size() && text[pos] == '"') {
          fields.back() += '"';
          ++pos;
        } else {
          quoted_field = false;
        }
      } else {
        fields.back() += ch;
      }
    } else if (ch == '"') {
      quoted_field = true;
    } else if (ch == ',') {
      fields.emplace_back();
    } else if (ch == '\n') {
      return true;
    } else if (ch != '\r') {
      fields.back() += ch;
    }
  }
  return false;  // no newline: an unfinished record
}

double parse_csv_number(const std::string& s, const std::string& where) {
  if (s.empty()) return NAN;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || *end != '\0') throw InputError(where + ": '" + s + "' is not a number");
  return v;
}

}  // namespace attnlens
