// .npy files (io/npy): the header's Python literal, version fields, sizes against the file, the data.
#include <cstring>

#include "io/npy.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  const std::string path = fuzz::put_file("input.npy", fuzz::as_bytes(data, size));
  fuzz::only_input_errors([&] {
    const Array a = read_npy(path);
    if (static_cast<std::int64_t>(a.data.size()) != a.size()) fuzz::invariant_failed("data size != shape product");
    // What attnlens writes it reads back bit for bit.
    const std::string again = fuzz::put_file("again.npy", encode_npy(a));
    const Array b = read_npy(again);
    if (b.shape != a.shape || (!a.data.empty() && std::memcmp(a.data.data(), b.data.data(), 8 * a.data.size()) != 0))
      fuzz::invariant_failed("encode_npy/read_npy round trip changed the array");
  });
  return 0;
}
