// vocab.txt (io/vocab): lines, UTF-8 checks, repeated tokens; then a tokenizer over the vocabulary read.
#include "io/vocab.hpp"
#include "io/wordpiece.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  const std::string path = fuzz::put_file("vocab.txt", fuzz::as_bytes(data, size));
  fuzz::only_input_errors([&] {
    Vocabulary v = Vocabulary::load(path);
    for (std::int64_t id = 0; id < v.size(); ++id)
      if (v.find(v.token(id)) != id) fuzz::invariant_failed("find(token(id)) != id");
    WordPieceTokenizer tok(std::move(v));
    const Encoding e = tok.encode("Hello, world! Naïve café [MASK] unaffable 東京", std::string_view("second text"));
    for (std::int64_t id : e.ids)
      if (id < 0 || id >= tok.vocabulary().size()) fuzz::invariant_failed("token id outside the vocabulary");
  });
  return 0;
}
