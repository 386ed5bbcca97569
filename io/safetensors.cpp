#include "io/safetensors.hpp"

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

#include "io/json_input.hpp"

namespace attnlens {

namespace {

using nlohmann::json;

// The reference rejects larger headers, so nothing valid is lost and a corrupt size cannot make us parse gigabytes.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
// A valid header nests three deep (header, tensor entry, shape); kMaxJsonDepth (io/json_input.hpp) only stops
// pathological nesting early.

struct DtypeSpec {
  const char* name;
  int bits;
};

// Every dtype the reference knows; the sub-byte ones only ever validate when their bit count fills whole bytes.
constexpr DtypeSpec kDtypes[] = {
    {"BOOL", 8},    {"F4", 4},       {"F6_E2M3", 6},  {"F6_E3M2", 6}, {"U8", 8},   {"I8", 8},  {"F8_E5M2", 8},
    {"F8_E4M3", 8}, {"F8_E8M0", 8},  {"I16", 16},     {"U16", 16},    {"F16", 16}, {"BF16", 16}, {"I32", 32},
    {"U32", 32},    {"F32", 32},     {"C64", 64},     {"F64", 64},    {"I64", 64}, {"U64", 64},
};

const DtypeSpec* find_dtype(const std::string& name) {
  for (const DtypeSpec& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

std::uint64_t load_le(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

float float_from_bits(std::uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// IEEE binary16 -> binary32 is exact: every half value, NaN payloads included, has a float spelling.
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  const std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return float_from_bits(sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24, which float holds exactly (as a normal number).
  const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  return sign ? -magnitude : magnitude;
}

// IEEE round-to-nearest, spelled out beyond float's range, where a plain cast is undefined behaviour in C++.
float double_to_float(double d) {
  // Halfway between FLT_MAX and 2^128; ties go to 2^128 (the even one), i.e. to infinity.
  static const double overflow_at = std::ldexp(1.0, 128) - std::ldexp(1.0, 103);
  if (std::isfinite(d) && std::fabs(d) > FLT_MAX) {
    const float magnitude = std::fabs(d) >= overflow_at ? std::numeric_limits<float>::infinity() : FLT_MAX;
    return d < 0 ? -magnitude : magnitude;
  }
  return static_cast<float>(d);
}

std::string offsets_text(const TensorInfo& t) {
  return "[" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// One header entry -> TensorInfo, checking everything that concerns this tensor alone.
TensorInfo parse_entry(const std::string& name, const json& entry, std::uint64_t buffer_size,
                       const std::string& file) {
  const std::string where = file + ": tensor '" + name + "': ";
  if (!entry.is_object()) throw InputError(where + "header entry is " + json_brief(entry) + ", not an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key)) throw InputError(where + "header entry has no \"" + key + "\"");

  TensorInfo t;
  t.name = name;
  const json& dtype = entry["dtype"];
  if (!dtype.is_string()) throw InputError(where + "dtype " + json_brief(dtype) + " is not a string");
  t.dtype = dtype.get<std::string>();
  const DtypeSpec* spec = find_dtype(t.dtype);
  if (!spec) throw InputError(where + "unknown dtype \"" + t.dtype + "\"");

  const json& shape = entry["shape"];
  if (!shape.is_array()) throw InputError(where + "shape " + json_brief(shape) + " is not a list of integers");
  std::uint64_t count = 1;
  bool overflow = false, empty = false;
  for (const json& e : shape) {
    if (e.is_number_integer() && !e.is_number_unsigned())
      throw InputError(where + "shape " + json_brief(shape) + " has a negative extent");
    if (!e.is_number_unsigned()) throw InputError(where + "shape " + json_brief(shape) + " is not a list of integers");
    const std::uint64_t extent = e.get<std::uint64_t>();
    if (extent > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      throw InputError(where + "shape " + json_brief(shape) + " has an extent too large to address");
    t.shape.push_back(static_cast<std::int64_t>(extent));
    // Keep going after an overflow: a later extent 0 makes the tensor empty, which the reference accepts too.
    if (extent == 0) empty = true;
    else if (count > std::numeric_limits<std::uint64_t>::max() / extent) overflow = true;
    else count *= extent;
  }
  if (empty) {
    overflow = false;
    count = 0;
  }
  const std::uint64_t bits = static_cast<std::uint64_t>(spec->bits);
  if (overflow || count > std::numeric_limits<std::uint64_t>::max() / bits)
    throw InputError(where + "shape " + json_brief(shape) + " of " + t.dtype + " overflows 64-bit byte counts");
  if (count * bits % 8 != 0)
    throw InputError(where + "shape " + json_brief(shape) + " of " + t.dtype + " does not fill whole bytes");
  const std::uint64_t nbytes = count * bits / 8;

  const json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    throw InputError(where + "data_offsets " + json_brief(offsets) + " is not a pair of non-negative integers");
  t.begin = offsets[0].get<std::uint64_t>();
  t.end = offsets[1].get<std::uint64_t>();
  if (t.begin > t.end) throw InputError(where + "data_offsets " + offsets_text(t) + " begin after they end");
  if (t.end > buffer_size)
    throw InputError(where + "data_offsets " + offsets_text(t) + " end beyond the " + std::to_string(buffer_size) +
                     "-byte data buffer (truncated file?)");
  if (t.end - t.begin != nbytes)
    throw InputError(where + "data_offsets " + offsets_text(t) + " span " + std::to_string(t.end - t.begin) +
                     " bytes, but " + t.dtype + " shape " + shape_text(t.shape) + " needs " + std::to_string(nbytes));
  return t;
}

std::map<std::string, std::string> parse_metadata(const json& m, const std::string& file) {
  std::map<std::string, std::string> out;
  if (m.is_null()) return out;  // the reference reads null as "no metadata"
  if (!m.is_object()) throw InputError(file + ": __metadata__ is " + json_brief(m) + ", not an object of strings");
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!it.value().is_string())
      throw InputError(file + ": __metadata__ value for '" + it.key() + "' is " + json_brief(it.value()) +
                       ", not a string");
    out.emplace(it.key(), it.value().get<std::string>());
  }
  return out;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string read_whole_file(const std::string& path) {
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw InputError("cannot open " + path + ": " + std::strerror(errno));
  std::string bytes;
  // Weights run to hundreds of MB: size the buffer once instead of doubling (and copying) it while reading.
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (!ec && size < std::numeric_limits<std::size_t>::max() / 2) bytes.reserve(static_cast<std::size_t>(size));
  char chunk[1 << 16];
  for (;;) {
    const std::size_t got = std::fread(chunk, 1, sizeof chunk, f.get());
    bytes.append(chunk, got);
    if (got < sizeof chunk) break;
  }
  // Reading a directory "opens" fine and fails here with EISDIR.
  if (std::ferror(f.get())) throw InputError("cannot read " + path + ": " + std::strerror(errno));
  return bytes;
}

}  // namespace

std::int64_t TensorInfo::numel() const {
  // An empty tensor's other extents may be anything the file says; only non-empty ones are bounded by the buffer.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  std::int64_t n = 1;
  for (std::int64_t e : shape) n *= e;
  return n;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) { return from_bytes(read_whole_file(path), path); }

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, const std::string& name_for_messages) {
  const std::string& file = name_for_messages;
  if (bytes.size() < 8)
    throw InputError(file + ": not a safetensors file: " + std::to_string(bytes.size()) +
                     " bytes, fewer than the 8-byte header size");
  const std::uint64_t header_size = load_le(bytes.data(), 8);
  if (header_size > kMaxHeaderBytes)
    throw InputError(file + ": header size " + std::to_string(header_size) + " exceeds the " +
                     std::to_string(kMaxHeaderBytes) + "-byte limit (not a safetensors file?)");
  if (header_size > bytes.size() - 8)
    throw InputError(file + ": header size " + std::to_string(header_size) + " runs past the end of the " +
                     std::to_string(bytes.size()) + "-byte file");
  const std::size_t data_start = 8 + static_cast<std::size_t>(header_size);
  const std::uint64_t buffer_size = bytes.size() - data_start;

  const char* header_begin = bytes.data() + 8;
  const char* header_end = bytes.data() + data_start;
  if (header_size == 0 || *header_begin != '{')
    throw InputError(file + ": header is not a JSON object (it does not start with '{')");

  // nlohmann's lexer takes a NUL for the end of input, so "{}\0junk" would pass; JSON text never holds a raw NUL.
  if (std::memchr(header_begin, '\0', header_end - header_begin))
    throw InputError(file + ": header is not valid JSON: it contains a NUL byte");
  // nlohmann keeps the last of repeated keys; the callback sees every key, so a repeat is an error, not a silent pick.
  std::set<std::string> seen;
  json header;
  try {
    header = json::parse(header_begin, header_end, [&](int depth, json::parse_event_t event, json& value) {
      if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
          depth >= kMaxJsonDepth)
        throw InputError(file + ": header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      if (event == json::parse_event_t::key && depth == 1 && !seen.insert(value.get<std::string>()).second)
        throw InputError(file + ": header names '" + value.get<std::string>() + "' twice");
      return true;
    });
  } catch (const json::exception& e) {
    throw InputError(file + ": header is not valid JSON: " + one_short_line(e.what()));
  }
  if (!header.is_object()) throw InputError(file + ": header is not a JSON object");

  SafetensorsFile out;
  out.name_ = file;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") out.metadata_ = parse_metadata(it.value(), file);
    else out.tensors_.push_back(parse_entry(it.key(), it.value(), buffer_size, file));
  }

  std::sort(out.tensors_.begin(), out.tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });
  // Sorted by offset, the tensors must tile the buffer: each starts where the previous one ends, the last ends at
  // the end of the file. Bytes outside any tensor are rejected by the reference, so they are here.
  std::uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : out.tensors_) {
    if (t.begin < covered)
      throw InputError(file + ": tensor '" + t.name + "' (data_offsets " + offsets_text(t) + ") overlaps tensor '" +
                       previous->name + "' (data_offsets " + offsets_text(*previous) + ")");
    if (t.begin > covered)
      throw InputError(file + ": bytes " + std::to_string(covered) + ".." + std::to_string(t.begin) +
                       " of the data buffer belong to no tensor (a hole before tensor '" + t.name + "')");
    covered = t.end;
    previous = &t;
  }
  if (covered != buffer_size)
    throw InputError(file + ": bytes " + std::to_string(covered) + ".." + std::to_string(buffer_size) +
                     " of the data buffer belong to no tensor (unused bytes at the end)");

  for (std::size_t i = 0; i < out.tensors_.size(); ++i) out.index_.emplace(out.tensors_[i].name, i);
  out.data_start_ = data_start;
  out.bytes_ = std::move(bytes);
  return out;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (!t) throw InputError(name_ + ": missing tensor '" + name + "'");
  return *t;
}

std::string_view SafetensorsFile::bytes(const std::string& name) const {
  const TensorInfo& t = at(name);
  return std::string_view(bytes_).substr(data_start_ + t.begin, t.end - t.begin);
}

std::vector<float> SafetensorsFile::to_float(const std::string& name) const {
  const TensorInfo& t = at(name);
  const std::string_view raw = bytes(name);
  const char* p = raw.data();
  std::vector<float> out;
  if (t.dtype == "F32") {
    out.resize(raw.size() / 4);
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = float_from_bits(static_cast<std::uint32_t>(load_le(p + 4 * i, 4)));
  } else if (t.dtype == "F16") {
    out.resize(raw.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = half_to_float(static_cast<std::uint16_t>(load_le(p + 2 * i, 2)));
  } else if (t.dtype == "BF16") {
    out.resize(raw.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i)
      out[i] = float_from_bits(static_cast<std::uint32_t>(load_le(p + 2 * i, 2)) << 16);
  } else if (t.dtype == "F64") {
    out.resize(raw.size() / 8);
    for (std::size_t i = 0; i < out.size(); ++i) {
      const std::uint64_t bits = load_le(p + 8 * i, 8);
      double d;
      std::memcpy(&d, &bits, 8);
      out[i] = double_to_float(d);
    }
  } else {
    throw InputError(name_ + ": tensor '" + name + "' has dtype " + t.dtype +
                     "; only F32, F16, BF16 and F64 convert to float");
  }
  return out;
}

std::vector<std::int64_t> SafetensorsFile::to_int64(const std::string& name) const {
  const TensorInfo& t = at(name);
  struct IntType {
    const char* name;
    int width;
    bool is_signed;
  };
  static constexpr IntType kInts[] = {{"I64", 8, true},  {"I32", 4, true},  {"I16", 2, true}, {"I8", 1, true},
                                      {"U32", 4, false}, {"U16", 2, false}, {"U8", 1, false}, {"BOOL", 1, false}};
  const IntType* type = nullptr;
  for (const IntType& k : kInts)
    if (t.dtype == k.name) type = &k;
  if (!type)
    throw InputError(name_ + ": tensor '" + name + "' has dtype " + t.dtype +
                     "; only I64, I32, I16, I8, U32, U16, U8 and BOOL convert to int64");
  const int width = type->width;
  const bool is_signed = type->is_signed;
  const std::string_view raw = bytes(name);
  std::vector<std::int64_t> out(raw.size() / static_cast<std::size_t>(width));
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint64_t u = load_le(raw.data() + i * width, width);
    // Sign-extend by hand; memcpy then reinterprets the two's complement bits without implementation-defined casts.
    if (is_signed && width < 8 && (u >> (8 * width - 1)) != 0) u |= ~std::uint64_t{0} << (8 * width);
    std::memcpy(&out[i], &u, 8);
  }
  return out;
}

std::string encode_safetensors(const std::vector<std::pair<std::string, Array>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  const auto quoted = [](const std::string& s, const char* what) {
    try {
      return json(s).dump();
    } catch (const json::exception&) {
      throw std::invalid_argument(std::string("encode_safetensors: ") + what + " is not valid UTF-8");
    }
  };

  // Compact JSON in the reference writer's layout: "__metadata__" first, then dtype, shape, data_offsets.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      header += (first ? "" : ",") + quoted(key, "a metadata key") + ":" + quoted(value, "a metadata value");
      first = false;
    }
    header += "}";
  }
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const auto& [name, array] : tensors) {
    if (name == "__metadata__")
      throw std::invalid_argument("encode_safetensors: '__metadata__' is reserved and cannot name a tensor");
    if (!names.insert(name).second)
      throw std::invalid_argument("encode_safetensors: tensor name '" + name + "' appears twice");
    for (std::int64_t e : array.shape)
      if (e < 0)
        throw std::invalid_argument("encode_safetensors: tensor '" + name + "' has negative shape " +
                                    array.shape_string());
    if (static_cast<std::int64_t>(array.data.size()) != array.size())
      throw std::invalid_argument("encode_safetensors: tensor '" + name + "' holds " +
                                  std::to_string(array.data.size()) + " values but shape " + array.shape_string() +
                                  " needs " + std::to_string(array.size()));
    const std::uint64_t end = offset + 4 * static_cast<std::uint64_t>(array.data.size());
    if (header.size() > 1) header += ",";
    header += quoted(name, "a tensor name") + ":{\"dtype\":\"F32\",\"shape\":[";
    for (std::size_t i = 0; i < array.shape.size(); ++i) header += (i ? "," : "") + std::to_string(array.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(end) + "]}";
    offset = end;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + header.size() + offset);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<std::uint64_t>(header.size()) >> (8 * i)) & 0xff);
  out += header;
  for (const auto& [name, array] : tensors) {
    for (std::size_t i = 0; i < array.data.size(); ++i) {
      const double v = array.data[i];
      const float f = double_to_float(v);
      if (std::isfinite(v) && std::isinf(f))
        throw InputError("cannot store tensor '" + name + "' as F32: value " + json(v).dump() + " at index " +
                         std::to_string(i) + " is beyond the float32 range");
      std::uint32_t bits;
      std::memcpy(&bits, &f, 4);
      for (int k = 0; k < 4; ++k) out += static_cast<char>((bits >> (8 * k)) & 0xff);
    }
  }
  return out;
}

}  // namespace attnlens
