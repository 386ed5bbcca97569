// AttAttr's adversarial triggers (Hao et al. 2021, spec section 5; YRdddream/attattr run_adver_connection.py and
// run_adver_evaluate.py): mine each example's strongest attribution pattern, keep the strong patterns, and insert a
// pattern's tokens into other inputs (a non-targeted attack). Plain arrays and token ids, no LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// One attribution entry: query token (row) -> key token (column) of a head's [N, N] attribution.
struct TokenPair {
  int query = 0;
  int key = 0;
};

/// One example's pattern: the two largest entries of its strongest head.
struct TriggerPattern {
  int layer = 0;  ///< where the chosen head matrix is
  int head = 0;
  TokenPair top[2];          ///< top-1, top-2 (row, column) in the example's tokens
  double value[2] = {0, 0};  ///< their attributions, value[0] >= value[1]
  double sum() const { return value[0] + value[1]; }
};

/// Mines one example's pattern from its attribution attr = [L, H, N, N] (cropped to the real tokens): per layer the
/// head holding the layer's largest entry (first head on ties); over layers the head matrix with the largest maximum
/// (strict >, so the earliest layer wins ties); its two largest entries. Throws InputError unless attr is
/// [L, H, N, N] with L, H >= 1, N >= 2 and finite values.
TriggerPattern mine_pattern(const Array& attr);

/// Indices into `patterns`, strongest (largest value sum) first, ties in input order, up to but excluding the first
/// pattern whose sum < threshold. `reference` reproduces run_adver_evaluate.py, which also drops the last pattern
/// when none falls below the threshold. Throws InputError for a non-finite value or threshold.
std::vector<std::size_t> select_patterns(const std::vector<TriggerPattern>& patterns, double threshold = 0.02,
                                         bool reference = false);

/// A token to insert, with where it sat in the example the pattern came from.
struct Trigger {
  std::int64_t token = 0;
  int source_position = 0;  ///< index in the source sequence
  int segment = 0;          ///< 0 = sentence A, 1 = sentence B
  double relative = 0.0;    ///< pos/(sep-1) in A, (pos-sep)/(len-2-sep) in B
};

/// The trigger tokens of `pattern`, taken from its source example `source_ids` = [CLS] A [SEP] (B [SEP]) whose first
/// [SEP] is at `source_sep`: the distinct positions of the top-1 pair, plus the top-2 pair when
/// value[1]/value[0] >= 0.2 or `all`, ascending, without the [CLS]/[SEP] positions (0, source_sep, last).
/// Throws InputError when source_sep or a pattern position is out of range.
std::vector<Trigger> trigger_tokens(const TriggerPattern& pattern, const std::vector<std::int64_t>& source_ids,
                                    int source_sep, bool all = false);

/// A BERT input [CLS] A [SEP] (B [SEP]) as token ids; `sep` = index of the first [SEP].
struct TokenSequence {
  std::vector<std::int64_t> ids;
  int sep = 0;
};

/// Inserts `triggers` into the target input (ids with its first [SEP] at target_sep; no B when target_sep is the
/// last index): in each segment, ascending, at round_half_even((len_seg + n_seg) * relative) of the growing list,
/// one further when equal to the previous insertion point, appended when past the end. B triggers are dropped for a
/// target without B. With max_tokens > 0 the result is truncated as the reference does (pairs: drop the last token
/// of the longer sentence, B on ties, until [CLS]+A+[SEP]+B+[SEP] fits; single: cut A). Throws InputError for a
/// target that is not [CLS] A [SEP] (B [SEP]) or a max_tokens too small for the special tokens.
TokenSequence insert_triggers(const std::vector<Trigger>& triggers, const std::vector<std::int64_t>& target_ids,
                              int target_sep, int max_tokens = 0);

/// round() of Python 3 on a double: to the nearest integer, halves to the even neighbour.
double round_half_even(double x);

}  // namespace attnlens
ATTNLENS_API_END
