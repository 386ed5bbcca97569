// The command line's own parsers for sizes, grids and lists: --grid (cli/common.hpp parse_grid), sizes and class
// folder numbers (io/image parse_decimal), --resize / --crop size strings, --interpolation, the --mean / --std
// comma lists, presets with an input size, --split. The first byte picks the parser; the rest is the option's text.
#include "cli/common.hpp"
#include "io/image.hpp"
#include "io/text_dataset.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  if (size < 1) return 0;
  const std::string text(fuzz::as_bytes(data + 1, size - 1));
  fuzz::only_input_errors([&] {
    switch (data[0] % 8) {
      case 0: {
        const auto [h, w] = cli::parse_grid(text);
        if (text.empty() ? (h != 0 || w != 0) : (h < 1 || w < 1)) fuzz::invariant_failed("parse_grid range");
        break;
      }
      case 1: {
        int v = -1;
        if (parse_decimal(text, v) && (v < 0 || std::to_string(v).size() > text.size()))
          fuzz::invariant_failed("parse_decimal value");
        break;
      }
      case 2:
      case 3: {
        Preprocess p;
        if (data[0] % 8 == 2)
          parse_resize(text, p);
        else
          parse_crop(text, p);
        for (int v : {p.resize_shorter, p.resize_height, p.resize_width, p.crop_height, p.crop_width})
          if (v < 0 || v > 65536) fuzz::invariant_failed("size out of [0, 65536]");
        break;
      }
      case 4:
        parse_interpolation(text);
        break;
      case 5: {
        const auto v = parse_channel_values(text, "--std", data[0] & 8);
        for (double x : v)
          if (!std::isfinite(x) || ((data[0] & 8) && !(x > 0))) fuzz::invariant_failed("channel value");
        break;
      }
      case 6: {
        // "<preset> <size>": the preset's geometry for any input size it accepts.
        const auto space = text.find(' ');
        int n = 224;
        if (space != std::string::npos && !parse_decimal(text.substr(space + 1), n)) return;
        const Preprocess p = preprocess_preset(text.substr(0, space), n);
        if (p.crop_height < 0 || p.resize_shorter < 0) fuzz::invariant_failed("preset sizes");
        break;
      }
      default:
        parse_text_split(text);
        break;
    }
  });
  return 0;
}
