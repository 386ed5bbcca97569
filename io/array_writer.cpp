#include "io/array_writer.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "io/csv_record.hpp"
#include "io/npy.hpp"

namespace attnlens {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string encode_csv(const Array& a, const DimNames& dims) {
  std::string out;
  if (a.rank() == 0) return "value\n" + format_csv_number(a.data.at(0)) + "\n";

  const std::size_t lead = a.shape.size() - 1;
  const std::int64_t cols = a.shape.back();
  std::string header;
  for (std::size_t d = 0; d < lead; ++d) header += (d ? "," : "") + csv_field(dims[d]);
  for (std::int64_t j = 0; j < cols; ++j)
    header += (header.empty() && j == 0 ? "" : ",") + csv_field(dims.back() + "_" + std::to_string(j));
  out += header + "\n";

  std::int64_t rows = 1;
  for (std::size_t d = 0; d < lead; ++d) rows *= a.shape[d];
  std::vector<std::int64_t> index(lead, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    std::string line;
    for (std::size_t d = 0; d < lead; ++d) line += (d ? "," : "") + std::to_string(index[d]);
    const double* row = a.data.data() + r * cols;
    for (std::int64_t j = 0; j < cols; ++j) line += (lead == 0 && j == 0 ? "" : ",") + format_csv_number(row[j]);
    out += line + "\n";
    for (std::size_t d = lead; d-- > 0;) {  // odometer over the leading dimensions
      if (++index[d] < a.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// Nested lists for dimension `d` starting at flat offset `offset`; `stride` = elements per index of `d`.
nlohmann::ordered_json nest(const Array& a, std::size_t d, std::int64_t offset) {
  if (d == a.shape.size()) return a.data[static_cast<std::size_t>(offset)];
  std::int64_t stride = 1;
  for (std::size_t k = d + 1; k < a.shape.size(); ++k) stride *= a.shape[k];
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (std::int64_t i = 0; i < a.shape[d]; ++i) list.push_back(nest(a, d + 1, offset + i * stride));
  return list;
}

std::string encode_json(const Array& a, const DimNames& dims) {
  nlohmann::ordered_json j;
  j["shape"] = a.shape;
  j["dims"] = dims;
  j["data"] = nest(a, 0, 0);
  return j.dump() + "\n";
}

std::string encode(const Array& array, const DimNames& dims, const std::string& extension, const std::string& label) {
  std::string ext = lower(extension);
  if (!ext.empty() && ext[0] != '.') ext = "." + ext;
  if (ext != ".npy" && ext != ".csv" && ext != ".json")
    throw InputError(label + (extension.empty() ? std::string("no file extension")
                                                : "unknown output format '" + extension + "'") +
                     "; use .npy, .csv or .json");
  if (static_cast<int>(dims.size()) != array.rank())
    throw InputError(label + std::to_string(dims.size()) + " dimension names for an array of shape " +
                     array.shape_string() + " (rank " + std::to_string(array.rank()) + ")");
  if (array.shape.size() && *std::min_element(array.shape.begin(), array.shape.end()) < 0)
    throw InputError(label + "negative extent in shape " + array.shape_string());
  if (static_cast<std::int64_t>(array.data.size()) != array.size())
    throw InputError(label + "array holds " + std::to_string(array.data.size()) + " values but shape " +
                     array.shape_string() + " needs " + std::to_string(array.size()));
  if (ext == ".npy") return encode_npy(array);
  if (ext == ".csv") return encode_csv(array, dims);
  return encode_json(array, dims);
}

}  // namespace

std::string encode_array(const Array& array, const DimNames& dims, const std::string& extension) {
  return encode(array, dims, extension, "");
}

void write_array(const std::string& path, const Array& array, const DimNames& dims) {
  write_file_atomic(path, encode(array, dims, std::filesystem::path(path).extension().string(), path + ": "));
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string q = "\"";
  for (char ch : text) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

}  // namespace attnlens
