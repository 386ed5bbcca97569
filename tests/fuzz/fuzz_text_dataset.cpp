// Labelled text data sets (io/text_dataset): the sentiment JSON lists and TSV/plain lines. The first byte picks the
// format and the split.
#include "io/text_dataset.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 1) return 0;
  const std::string_view body = fuzz::as_bytes(data + 1, size - 1);
  const std::string path = fuzz::put_file((data[0] & 1) ? "texts.tsv" : "texts.json", body);
  const TextSplit split = (data[0] >> 1) % 3 == 0   ? TextSplit::All
                          : (data[0] >> 1) % 3 == 1 ? TextSplit::Train
                                                    : TextSplit::Test;
  fuzz::only_input_errors([&] {
    for (const TextExample& e : load_text_dataset(path, split)) {
      if (e.label < -1) fuzz::invariant_failed("a label below -1");
      if (e.index < 0) fuzz::invariant_failed("a negative index");
    }
  });
  return 0;
}
