#include "io/run_parts.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "core/array.hpp"
#include "io/atomic_file.hpp"
#include "io/csv_record.hpp"

namespace attnlens {

namespace fs = std::filesystem;

namespace {

bool parse_positive(const std::string& s, int& value) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  value = std::stoi(s);
  return value > 0;
}

nlohmann::json read_identity(const fs::path& dir) {
  const fs::path file = dir / "run.json";
  std::ifstream in(file);
  if (!in) throw InputError(file.string() + ": missing; this part of the run cannot be checked or merged");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception&) {
    throw InputError(file.string() + ": unreadable (not JSON)");
  }
}

}  // namespace

WorkShare WorkShare::parse(const std::string& text) {
  const auto slash = text.find('/');
  WorkShare s;
  int k = 0, n = 0;
  if (slash == std::string::npos || !parse_positive(text.substr(0, slash), k) ||
      !parse_positive(text.substr(slash + 1), n) || k > n)
    throw InputError("--shard '" + text + "': expected K/N with 1 <= K <= N (e.g. 2/8: the second of 8 shares)");
  s.index = k - 1;
  s.count = n;
  return s;
}

std::string WorkShare::folder() const {
  return "shard-" + std::to_string(index + 1) + "-of-" + std::to_string(count);
}

std::string WorkShare::label() const { return std::to_string(index + 1) + " of " + std::to_string(count); }

std::vector<RunPart> find_run_parts(const std::string& out, const std::string& table_name) {
  std::vector<RunPart> parts;
  if (fs::exists(fs::path(out) / table_name)) parts.push_back({out, std::nullopt});
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return parts;
  static const std::regex name(R"(shard-(\d+)-of-(\d+))");
  std::vector<std::pair<WorkShare, std::string>> shards;
  for (const auto& entry : fs::directory_iterator(out)) {
    if (!entry.is_directory()) continue;
    const std::string base = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(base, m, name)) continue;
    int k = 0, n = 0;
    if (!parse_positive(m[1], k) || !parse_positive(m[2], n) || k > n)
      throw InputError(entry.path().string() + ": not a shard folder (shard-K-of-N with 1 <= K <= N)");
    shards.push_back({WorkShare{k - 1, n}, entry.path().string()});
  }
  std::sort(shards.begin(), shards.end(), [](const auto& a, const auto& b) {
    return a.first.count != b.first.count ? a.first.count < b.first.count : a.first.index < b.first.index;
  });
  for (const auto& [share, dir] : shards) parts.push_back({dir, share});
  return parts;
}

namespace {

void check_identity(const RunPart& part, const nlohmann::json& expected) {
  const nlohmann::json found = read_identity(part.dir);
  if (found != expected)
    throw InputError(part.dir + ": a part of another run (its run.json differs: " + found.dump() +
                     "); use the same options, another -o, or remove it");
}

}  // namespace

void check_run_identities(const std::vector<RunPart>& parts, const std::string& identity) {
  const nlohmann::json expected = nlohmann::json::parse(identity);
  for (const RunPart& part : parts)
    if (fs::exists(fs::path(part.dir) / "run.json")) check_identity(part, expected);
}

TableBlocks read_table_blocks(const std::string& path, const RunTable& table) {
  const std::string text = read_file(path);
  if (text.compare(0, table.header.size(), table.header) != 0)
    throw InputError(path + ": not this run's table (its header differs); resume with the same options, or start "
                            "a new run with another -o");
  TableBlocks out;
  out.blocks.assign(table.items, "");
  std::size_t pos = table.header.size(), block_start = pos, lines = 0, index = 0, line_no = 1;
  out.complete_bytes = pos;
  std::vector<std::string> fields;
  while (pos < text.size()) {
    ++line_no;
    const std::size_t record_start = pos;
    if (!next_csv_record(text, pos, fields)) break;  // a line cut short by the interruption
    const std::string where = path + " line " + std::to_string(line_no);
    // The index as the runs write it: unquoted decimal digits at the start of the line, no leading zero (strtod
    // would also take " 4", "+4", "04", "4.0", "4e0"; the CSV reader, "\"4\"" and "\"\"4").
    const std::string& f0 = fields[0];
    if (f0.empty() || f0.size() > 18 || f0.find_first_not_of("0123456789") != std::string::npos ||
        (f0.size() > 1 && f0[0] == '0') || text.compare(record_start, f0.size(), f0) != 0 ||
        std::stoull(f0) >= table.items)
      throw InputError(where + ": item index '" + f0 + "' is not one of the run's " + std::to_string(table.items) +
                       " items");
    const auto i = static_cast<std::size_t>(std::stoull(f0));
    if (lines == 0) {
      index = i;
    } else if (i != index) {
      throw InputError(where + ": item " + std::to_string(i) + " inside the block of item " + std::to_string(index));
    }
    if (++lines == table.rows_per_item) {
      if (out.blocks[index].empty()) out.blocks[index] = text.substr(block_start, pos - block_start);
      out.complete_bytes = block_start = pos;
      lines = 0;
    }
  }
  return out;
}

std::string RunRows::table_text(const RunTable& table) const {
  std::string s = table.header;
  for (const std::string& b : blocks) s += b;
  return s;
}

RunRows read_run_parts(const std::vector<RunPart>& parts, const RunTable& table, const std::string& identity) {
  const nlohmann::json expected = nlohmann::json::parse(identity);
  RunRows rows;
  rows.blocks.assign(table.items, "");
  for (const RunPart& part : parts) {
    const fs::path file = fs::path(part.dir) / table.name;
    if (!fs::exists(file)) continue;  // a shard that has not written its first row yet
    check_identity(part, expected);
    TableBlocks found = read_table_blocks(file.string(), table);
    for (std::size_t i = 0; i < table.items; ++i) {
      if (found.blocks[i].empty()) continue;
      if (part.share && !part.share->owns(table.unit_of(i)))
        throw InputError(file.string() + ": item " + std::to_string(i) + " does not belong to shard " +
                         part.share->label());
      if (rows.blocks[i].empty()) rows.blocks[i] = std::move(found.blocks[i]);  // an item already found stays
    }
  }
  for (std::size_t i = 0; i < table.items; ++i)
    if (rows.blocks[i].empty()) rows.missing.push_back(i);
  return rows;
}

std::string missing_items_message(const std::vector<std::size_t>& missing, const RunTable& table,
                                  const std::vector<RunPart>& parts, const std::string& out) {
  const std::size_t item_count = table.items;
  if (missing.empty()) return "";
  std::string msg = std::to_string(missing.size()) + " of " + std::to_string(item_count) + " items are missing (";
  for (std::size_t i = 0; i < missing.size() && i < 20; ++i) msg += (i ? ", " : "") + std::to_string(missing[i]);
  msg += missing.size() > 20 ? ", ...)" : ")";
  std::set<int> counts;
  std::set<std::pair<int, int>> present;
  for (const RunPart& p : parts)
    if (p.share) counts.insert(p.share->count), present.insert({p.share->count, p.share->index});
  for (int n : counts) {
    for (int k = 0; k < n; ++k) {
      const WorkShare s{k, n};
      const std::size_t lacking = static_cast<std::size_t>(
          std::count_if(missing.begin(), missing.end(), [&](std::size_t i) { return s.owns(table.unit_of(i)); }));
      if (lacking == 0) continue;
      const std::string dir = (fs::path(out) / s.folder()).string();
      msg += "; shard " + s.label() + " " +
             (present.count({n, k}) ? "lacks " + std::to_string(lacking) + " of its items (" + dir + ")"
                                    : "has no folder (" + dir + ")");
    }
  }
  return msg;
}

}  // namespace attnlens
