// Hugging Face safetensors files, read without LibTorch: the weights of the ViT/DeiT/DINO/BERT models.
//
// Layout: an 8-byte little-endian header size N, N bytes of JSON header, then the byte buffer. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte buffer) and may hold
// "__metadata__": {string: string}. Tensors are little-endian and C order. The reader decodes bytes explicitly, so it
// gives the same values on any host.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// One tensor of a safetensors file, as its header describes it.
struct TensorInfo {
  std::string name;
  /// The header's spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", ...
  std::string dtype;
  std::vector<std::int64_t> shape;
  /// Byte range [begin, end) within the byte buffer (not the file).
  std::uint64_t begin = 0;
  std::uint64_t end = 0;

  /// Number of elements (product of the extents; 1 for rank 0).
  std::int64_t numel() const;
};

/// A whole safetensors file in memory, validated when it is opened.
class SafetensorsFile {
 public:
  /// Reads `path` into memory (once) and validates it as from_bytes does.
  static SafetensorsFile open(const std::string& path);

  /// Validates `bytes` as a complete safetensors file, as the reference implementation (huggingface/safetensors)
  /// does, and keeps them. Throws InputError starting with `name_for_messages` (and naming the tensor, where one is
  /// at fault) for: fewer than 8 bytes; a header size over 100 MB or past the end; a header that does not start
  /// with '{', is not valid UTF-8 JSON, or repeats a name; a tensor entry without dtype/shape/data_offsets or with
  /// values of the wrong type; an unknown dtype; negative or overflowing shapes; begin > end; end past the buffer; a
  /// byte range that does not match shape x dtype; overlapping tensors; bytes of the buffer that belong to no tensor;
  /// metadata values that are not strings. Empty tensors (an extent 0, begin == end) are fine.
  static SafetensorsFile from_bytes(std::string bytes, const std::string& name_for_messages);

  /// Every tensor in byte-buffer order (ascending data_offsets, which is how the reference orders them; empty
  /// tensors at the same offset by name). Not necessarily the order of the header's keys.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  /// The tensor called `name`, or nullptr when there is none.
  const TensorInfo* find(const std::string& name) const;
  /// The tensor called `name`. Throws InputError "<file>: missing tensor '<name>'" when there is none.
  const TensorInfo& at(const std::string& name) const;
  /// The header's "__metadata__" (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The tensor's raw little-endian bytes (a view into this object).
  std::string_view bytes(const std::string& name) const;
  /// The values of an F32, F16, BF16 or F64 tensor as float, in C order; F16 and BF16 convert exactly (subnormals,
  /// infinities and NaN included), F64 rounds to nearest. Throws InputError for a missing tensor or another dtype.
  std::vector<float> to_float(const std::string& name) const;
  /// The values of an I64, I32, I16, I8, U32, U16, U8 or BOOL tensor (e.g. BERT's position_ids buffer), in C order.
  /// Throws InputError for a missing tensor or another dtype.
  std::vector<std::int64_t> to_int64(const std::string& name) const;

 private:
  std::string name_;
  std::string bytes_;
  std::size_t data_start_ = 0;  // offset of the byte buffer within bytes_
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

/// Serialises `tensors` as a safetensors file (to memory; see write_file_atomic for files): every tensor stored as
/// F32, in the given order, with `metadata` as "__metadata__" when it is not empty. The header is compact JSON padded
/// with spaces to a multiple of 8 bytes, as the reference writer does, so F32 data starts 8-byte aligned.
/// Throws std::invalid_argument for a repeated or reserved ("__metadata__") name, a name or metadata string that is
/// not UTF-8, or an array whose data does not match its shape; InputError for a finite value that would round to
/// infinity in float32.
std::string encode_safetensors(const std::vector<std::pair<std::string, Array>>& tensors,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace attnlens
ATTNLENS_API_END
