// Labelled sentences for the text subcommands: the review sentences of the npm package sentiment@5.0.2
// (test/fixtures/{amazon,imdb,yelp}.json, fetched by tools/fetch_sentiment.sh) or a user's own TSV/JSON file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct TextExample {
  std::string text;
  int label = -1;          ///< gold class, -1 when unknown
  std::int64_t index = 0;  ///< position in the whole data set (before any split)
};

enum class TextSplit { All, Train, Test };

/// Reads `path`: a folder holding amazon.json, imdb.json and yelp.json (concatenated in that order), one such JSON
/// file ([{"text": ..., "class": 0|1}, ...]), a .tsv/.txt file of "label<TAB>text" lines (label may be empty), or a
/// .txt of plain lines (label -1). The split rule, shared with tools/text_data.py so any language reproduces it:
/// item i is held out (Test) iff i % 5 == 4. Blank texts count for the indices but are skipped (each sentiment
/// file ends with {"text": "", "class": null}); a null class reads as -1. InputError for a missing/unreadable file, invalid JSON or UTF-8-free
/// garbage, an empty set, or labels that are not integers.
std::vector<TextExample> load_text_dataset(const std::string& path, TextSplit split = TextSplit::All);

/// "all", "train", "test" -> TextSplit; InputError otherwise.
TextSplit parse_text_split(const std::string& name);

}  // namespace attnlens
ATTNLENS_API_END
