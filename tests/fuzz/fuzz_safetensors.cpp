// safetensors files (io/safetensors): the 8-byte header size, the JSON header, offsets, and every tensor's data
// through the typed readers.
#include "io/safetensors.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  fuzz::only_input_errors([&] {
    const SafetensorsFile f = SafetensorsFile::from_bytes(std::string(fuzz::as_bytes(data, size)), "input.safetensors");
    for (const TensorInfo& t : f.tensors()) {
      if (f.bytes(t.name).size() != t.end - t.begin) fuzz::invariant_failed("bytes() size != data_offsets span");
      const std::string& d = t.dtype;
      if (d == "F32" || d == "F16" || d == "BF16" || d == "F64") {
        if (static_cast<std::int64_t>(f.to_float(t.name).size()) != t.numel()) fuzz::invariant_failed("to_float size");
      } else if (d == "I64" || d == "I32" || d == "I16" || d == "I8" || d == "U32" || d == "U16" || d == "U8" ||
                 d == "BOOL") {
        if (static_cast<std::int64_t>(f.to_int64(t.name).size()) != t.numel()) fuzz::invariant_failed("to_int64 size");
      }
    }
    for (const auto& entry : f.metadata()) (void)entry;
  });
  return 0;
}
