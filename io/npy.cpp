#include "io/npy.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <sys/stat.h>

namespace attnlens {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
// numpy refuses headers over 10000 bytes unless told otherwise (np.load's max_header_size); what np.save writes is
// far shorter. The same bound here keeps a corrupt length field from making us read and parse megabytes.
constexpr std::uint32_t kMaxHeaderLen = 10000;
// The parser recurses once per bracket; a valid header nests two deep (the dict, the shape tuple), and Python allows
// redundant parentheses around an int. Without a bound, 65,000 '(' overflow the stack.
constexpr int kMaxHeaderNesting = 32;
constexpr std::int64_t kMaxElements = std::int64_t{1} << 34;

bool host_is_little_endian() {
  const std::uint16_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Reads up to n bytes; short only at end of file. Read errors (e.g. the path is a directory) throw.
std::size_t read_some(std::FILE* f, void* dst, std::size_t n, const std::string& path) {
  const std::size_t got = std::fread(dst, 1, n, f);
  if (got < n && std::ferror(f)) throw InputError("cannot read " + path + ": " + std::strerror(errno));
  return got;
}

// A parsed Python literal from the header; `text` keeps the source spelling for messages.
struct Value {
  enum Kind { Str, Bool, None, Int, Tuple, List, Dict } kind = None;
  std::string text;
  std::string str;
  bool boolean = false;
  std::int64_t integer = 0;
  bool int_overflow = false;
  std::vector<Value> items;
};

// Just enough of Python's literal grammar for what numpy (any version) writes with repr(dict).
class HeaderParser {
 public:
  HeaderParser(const std::string& s, const std::string& path) : s_(s), path_(path) {}

  std::map<std::string, Value> parse() {
    skip_ws();
    Value d = value();
    if (d.kind != Value::Dict) fail("header is not a Python dict literal");
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the header dict");
    std::map<std::string, Value> out;
    for (std::size_t i = 0; i + 1 < d.items.size(); i += 2) {
      const Value& k = d.items[i];
      if (k.kind != Value::Str) fail("header key " + k.text + " is not a string");
      if (k.str != "descr" && k.str != "fortran_order" && k.str != "shape")
        fail("header has unexpected key '" + k.str + "'");
      if (!out.emplace(k.str, d.items[i + 1]).second) fail("header repeats key '" + k.str + "'");
    }
    for (const char* key : {"descr", "fortran_order", "shape"})
      if (!out.count(key)) fail(std::string("header has no '") + key + "' key");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw InputError(path_ + ": bad .npy header: " + what); }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool eat(char c) {
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  Value value() {
    skip_ws();
    if (pos_ >= s_.size()) fail("unexpected end of header");
    if (depth_ >= kMaxHeaderNesting) fail("nests deeper than " + std::to_string(kMaxHeaderNesting) + " brackets");
    ++depth_;
    Value v = value_here();
    --depth_;
    return v;
  }

  Value value_here() {
    const std::size_t start = pos_;
    Value v;
    const char c = s_[pos_];
    if (c == '\'' || c == '"') {
      v.kind = Value::Str;
      v.str = string_literal();
    } else if (c == '{') {
      v.kind = Value::Dict;
      ++pos_;
      while (!eat('}')) {
        v.items.push_back(value());
        if (!eat(':')) fail("expected ':' after a dict key");
        v.items.push_back(value());
        if (!eat(',')) {
          if (!eat('}')) fail("expected ',' or '}' in the dict");
          break;
        }
      }
    } else if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      bool comma = false;
      while (!eat(close)) {
        v.items.push_back(value());
        comma = eat(',');
        if (!comma) {
          if (!eat(close)) fail(std::string("expected ',' or '") + close + "'");
          break;
        }
      }
      // Python: "(3)" is the int 3, not a tuple; "(3,)" and "()" are tuples.
      if (c == '(' && v.items.size() == 1 && !comma) {
        Value inner = v.items[0];
        inner.text = s_.substr(start, pos_ - start);
        return inner;
      }
      v.kind = c == '(' ? Value::Tuple : Value::List;
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      v.kind = Value::Int;
      integer(v);
    } else {
      std::size_t end = pos_;
      while (end < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[end])) || s_[end] == '_')) ++end;
      const std::string word = s_.substr(pos_, end - pos_);
      if (word == "True" || word == "False") {
        v.kind = Value::Bool;
        v.boolean = word == "True";
      } else if (word == "None") {
        v.kind = Value::None;
      } else {
        fail("unexpected text '" + (word.empty() ? s_.substr(pos_, 1) : word) + "'");
      }
      pos_ = end;
    }
    v.text = s_.substr(start, pos_ - start);
    return v;
  }

  std::string string_literal() {
    const char quote = s_[pos_++];
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    ++pos_;
    return out;
  }

  void integer(Value& v) {
    bool negative = false;
    if (s_[pos_] == '-' || s_[pos_] == '+') negative = s_[pos_++] == '-';
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') fail("bad number");
    std::int64_t n = 0;
    while (pos_ < s_.size() && ((s_[pos_] >= '0' && s_[pos_] <= '9') || s_[pos_] == '_')) {
      if (s_[pos_] != '_') {
        const int d = s_[pos_] - '0';
        if (n > (INT64_MAX - d) / 10) v.int_overflow = true;
        else n = n * 10 + d;
      }
      ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'L' || s_[pos_] == 'l')) ++pos_;  // Python 2 long, old numpy
    if (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.'))
      fail("bad number");
    v.integer = negative ? -n : n;
  }

  const std::string& s_;
  const std::string& path_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

struct Dtype {
  int size = 0;  // 4 or 8
  bool little = true;
};

Dtype parse_descr(const Value& descr, const std::string& path) {
  const auto unsupported = [&]() {
    return InputError(path + ": unsupported dtype " + descr.text + "; attnlens reads float32 or float64");
  };
  if (descr.kind != Value::Str) throw unsupported();
  std::string d = descr.str;
  Dtype t;
  t.little = host_is_little_endian();
  // '|' means "byte order not applicable" and is only valid for 1-byte types, none of which we read.
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '=')) {
    if (d[0] != '=') t.little = d[0] == '<';
    d.erase(0, 1);
  }
  if (d == "f4") t.size = 4;
  else if (d == "f8") t.size = 8;
  else throw unsupported();
  return t;
}

std::string tuple_text(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

/// Decodes `count` float32 (size 4) or float64 (size 8) values from `src` into doubles, byte-swapping when the file's
/// byte order is not the host's. The common case (no swap) is a plain loop the compiler vectorises.
void decode_values(const unsigned char* src, std::size_t count, int size, bool swap, double* dst) {
  if (!swap && size == 4) {
    for (std::size_t i = 0; i < count; ++i) {
      float v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = v;
    }
    return;
  }
  if (!swap) {
    std::memcpy(dst, src, count * 8);
    return;
  }
  for (std::size_t i = 0; i < count; ++i) {
    unsigned char b[8];
    for (int k = 0; k < size; ++k) b[k] = src[i * size + size - 1 - k];
    if (size == 4) {
      float v;
      std::memcpy(&v, b, 4);
      dst[i] = v;
    } else {
      std::memcpy(&dst[i], b, 8);
    }
  }
}

}  // namespace

Array read_npy(const std::string& path) {
  errno = 0;
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw InputError("cannot open " + path + ": " + std::strerror(errno));

  unsigned char pre[12];
  const std::size_t got = read_some(f.get(), pre, 10, path);
  const std::size_t magic_seen = std::min(got, kMagicLen);
  if (std::memcmp(pre, kMagic, magic_seen) != 0 || got == 0)
    throw InputError(path + ": not a .npy file (it does not start with \\x93NUMPY)");
  const auto truncated_header = [&](std::size_t want, std::size_t have) {
    return InputError(path + ": truncated .npy header: expected " + std::to_string(want) + " bytes, file has " +
                      std::to_string(have));
  };
  if (got < 10) throw truncated_header(10, got);

  const int major = pre[6], minor = pre[7];
  if (major < 1 || major > 3 || minor != 0)
    throw InputError(path + ": unsupported .npy format version " + std::to_string(major) + "." +
                     std::to_string(minor) + " (attnlens reads 1.0, 2.0 and 3.0)");
  std::size_t prefix_len = 10;
  std::uint32_t header_len = pre[8] | (pre[9] << 8);
  if (major >= 2) {
    prefix_len = 12;
    const std::size_t more = read_some(f.get(), pre + 10, 2, path);
    if (more < 2) throw truncated_header(12, 10 + more);
    header_len |= static_cast<std::uint32_t>(pre[10]) << 16 | static_cast<std::uint32_t>(pre[11]) << 24;
  }
  if (header_len > kMaxHeaderLen)
    throw InputError(path + ": .npy header length " + std::to_string(header_len) + " exceeds the limit of " +
                     std::to_string(kMaxHeaderLen) + " bytes (numpy's own default limit)");

  std::string header(header_len, '\0');
  const std::size_t hgot = read_some(f.get(), &header[0], header_len, path);
  if (hgot < header_len) throw truncated_header(prefix_len + header_len, prefix_len + hgot);
  if (header.find('\0') != std::string::npos) throw InputError(path + ": bad .npy header: contains a NUL byte");

  const auto fields = HeaderParser(header, path).parse();
  const Value& fortran = fields.at("fortran_order");
  if (fortran.kind != Value::Bool)
    throw InputError(path + ": bad .npy header: fortran_order is " + fortran.text + ", not True or False");
  const Value& shape_v = fields.at("shape");
  if (shape_v.kind != Value::Tuple)
    throw InputError(path + ": bad .npy header: shape " + shape_v.text + " is not a tuple of integers");
  std::vector<std::int64_t> shape;
  std::int64_t count = 1;
  for (const Value& e : shape_v.items) {
    if (e.kind != Value::Int || e.integer < 0)
      throw InputError(path + ": bad .npy header: shape " + shape_v.text + " is not a tuple of non-negative integers");
    if (e.int_overflow || e.integer > kMaxElements)
      throw InputError(path + ": shape " + shape_v.text + " is absurdly large");
    shape.push_back(e.integer);
  }
  for (std::int64_t e : shape) {
    // Each extent is <= 2^34, so only the running product needs an overflow guard.
    if (e != 0 && count > kMaxElements / e)
      throw InputError(path + ": shape " + shape_v.text + " is absurdly large (over 2^34 elements)");
    count *= e;
  }
  const Dtype dtype = parse_descr(fields.at("descr"), path);
  if (fortran.boolean)
    throw InputError(path + ": array is stored in Fortran (column-major) order (fortran_order: True); "
                     "attnlens reads C order: save np.ascontiguousarray(a) instead");

  const std::size_t nbytes = static_cast<std::size_t>(count) * dtype.size;
  const std::string type_name = dtype.size == 4 ? "float32" : "float64";
  const auto truncated_data = [&](std::size_t have) {
    return InputError(path + ": truncated data: shape " + tuple_text(shape) + " of " + type_name + " needs " +
                      std::to_string(nbytes) + " bytes, file has " + std::to_string(have));
  };
  // A corrupt header can claim gigabytes; for regular files, check the size before allocating.
  bool sized = false;
  struct stat st {};
  if (::fstat(::fileno(f.get()), &st) == 0 && S_ISREG(st.st_mode)) {
    const long here = std::ftell(f.get());
    if (here >= 0 && st.st_size >= here) {
      if (static_cast<std::uint64_t>(st.st_size - here) < nbytes)
        throw truncated_data(static_cast<std::size_t>(st.st_size - here));
      sized = true;
    }
  }
  const bool swap = dtype.little != host_is_little_endian();
  Array out;
  std::size_t dgot = 0;
  if (sized) {
    // The file holds the data: decode it as it is read, through a buffer of at most 4 MB, so that a large stack is
    // never in memory twice (raw bytes and doubles) and the output is the only large allocation.
    out = Array(shape);
    std::vector<unsigned char> chunk(std::min<std::size_t>(nbytes, std::size_t{4} << 20));
    while (dgot < nbytes) {
      const std::size_t want = std::min(chunk.size(), nbytes - dgot);
      const std::size_t n = read_some(f.get(), chunk.data(), want, path);
      if (n % dtype.size != 0 || n < want) {  // the file shrank after fstat; never a partial value
        dgot += n;
        break;
      }
      decode_values(chunk.data(), n / dtype.size, dtype.size, swap, out.data.data() + dgot / dtype.size);
      dgot += n;
    }
    if (dgot < nbytes) throw truncated_data(dgot);
  } else {
    // A pipe has no size to check: grow the buffer only as data arrives, so a header's claim alone allocates
    // nothing.
    std::vector<unsigned char> raw;
    while (dgot < nbytes) {
      raw.resize(dgot + std::min<std::size_t>(nbytes - dgot, std::max<std::size_t>(dgot, 1 << 20)));
      const std::size_t n = read_some(f.get(), raw.data() + dgot, raw.size() - dgot, path);
      dgot += n;
      if (dgot < raw.size()) break;
    }
    if (dgot < nbytes) throw truncated_data(dgot);
    out = Array(shape);
    decode_values(raw.data(), static_cast<std::size_t>(count), dtype.size, swap, out.data.data());
  }
  {
    std::size_t extra = 0;
    unsigned char sink[4096];
    for (std::size_t n; (n = read_some(f.get(), sink, sizeof sink, path)) > 0;) extra += n;
    if (extra)
      throw InputError(path + ": " + std::to_string(extra) + " unexpected trailing bytes after the " +
                       std::to_string(nbytes) + " bytes of data for shape " + tuple_text(shape));
  }
  return out;
}

std::string encode_npy(const Array& array) {
  if (static_cast<std::int64_t>(array.data.size()) != array.size())
    throw std::invalid_argument("encode_npy: array holds " + std::to_string(array.data.size()) +
                                " values but shape " + array.shape_string() + " needs " +
                                std::to_string(array.size()));
  // Byte-for-byte what numpy's np.save writes, spare space for in-place growth of the first axis included.
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + tuple_text(array.shape) + ", }";
  if (!array.shape.empty()) header.append(21 - std::to_string(array.shape[0]).size(), ' ');
  const std::size_t unpadded = kMagicLen + 4 + header.size() + 1;
  header.append(64 - unpadded % 64, ' ');  // numpy pads a full 64 when already aligned
  header += '\n';

  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const std::size_t start = out.size();
  out.resize(start + array.data.size() * 8);
  const bool swap = !host_is_little_endian();
  for (std::size_t i = 0; i < array.data.size(); ++i) {
    unsigned char b[8];
    std::memcpy(b, &array.data[i], 8);
    if (swap)
      for (int k = 0; k < 4; ++k) std::swap(b[k], b[7 - k]);
    std::memcpy(&out[start + i * 8], b, 8);
  }
  return out;
}

}  // namespace attnlens
