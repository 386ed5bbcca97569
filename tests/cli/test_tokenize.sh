#!/usr/bin/env bash
# End-to-end tests of `attnlens tokenize`: the JSON it prints for texts, pairs and --texts files, casing from flags
# and model folders, truncation, and bad input (exit 2, one "attnlens: error:" line, nothing on stdout).
# Run by CTest with ATTNLENS=<path to the binary>; uses /usr/bin/python3 to parse the JSON.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

# json NAME EXPECTED ARGS...: expects exit 0 and stdout to be exactly one JSON line equal to the Python literal
# expression EXPECTED (a dict, or a list of dicts for JSON Lines), keys in the documented order.
json() {
  local name=$1 expected=$2
  shift 2
  run "$@"
  if [ "$RC" -ne 0 ]; then
    fail "$name (exit $RC)" "$(cat "$T/stderr")"
    return
  fi
  if "$PY" - "$T/stdout" "$expected" >"$T/py.log" 2>&1 <<'EOF'; then
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().split("\n")
assert lines[-1] == "", "output does not end in a newline"
got = [json.loads(line) for line in lines[:-1]]
want = eval(sys.argv[2], {"__builtins__": {}})  # a literal from this script; [0] * 4 is allowed
want = want if isinstance(want, list) else [want]
assert got == want, f"got\n{got}\nexpected\n{want}"
keys = ["tokens", "ids", "token_type_ids", "attention_mask", "truncated"]
for g in got:
    assert list(g) == keys, f"keys {list(g)}"
EOF
    pass "$name"
  else
    fail "$name" "$(cat "$T/py.log")"
  fi
}

# err NAME MESSAGE ARGS...: expects exit 2, exactly one stderr line "attnlens: error: ..." containing MESSAGE, and
# nothing on stdout.
err() {
  local name=$1 message=$2
  shift 2
  run "$@"
  local problems=""
  [ "$RC" -eq 2 ] || problems+="exit code $RC, expected 2; "
  [ "$(wc -l <"$T/stderr")" -eq 1 ] || problems+="stderr has $(wc -l <"$T/stderr") lines; "
  head -n 1 "$T/stderr" | grep -q '^attnlens: error: ' || problems+="no 'attnlens: error:' line; "
  grep -qF -- "$message" "$T/stderr" || problems+="message lacks '$message'; "
  [ ! -s "$T/stdout" ] || problems+="stdout is not empty; "
  if [ -z "$problems" ]; then pass "$name"; else fail "$name: $problems" "$(cat "$T/stderr")"; fi
}

# ---------------------------------------------------------------------------------------------------------------
# Fixtures: a small vocabulary (ids in the comments) and model folders around it
# ---------------------------------------------------------------------------------------------------------------
# 0 [PAD] 1 [UNK] 2 [CLS] 3 [SEP] 4 [MASK] 5 the 6 cat 7 sat 8 on 9 mat 10 hello 11 un 12 ##aff 13 ##able 14 .
# 15 Héllo 16 World 17 naive 18 cafe
printf '%s\n' '[PAD]' '[UNK]' '[CLS]' '[SEP]' '[MASK]' the cat sat on mat hello un '##aff' '##able' . \
  'Héllo' World naive cafe >"$T/vocab.txt"
V=$T/vocab.txt
mkdir -p "$T/cased_model" "$T/both_configs" "$T/bad_config" "$T/no_vocab" "$T/plain_model"
cp "$V" "$T/cased_model/vocab.txt"
echo '{"model_type": "bert", "do_lower_case": false}' >"$T/cased_model/config.json"
cp "$V" "$T/both_configs/vocab.txt"
echo '{"do_lower_case": false}' >"$T/both_configs/tokenizer_config.json"
echo '{"do_lower_case": true}' >"$T/both_configs/config.json"
cp "$V" "$T/bad_config/vocab.txt"
echo '{"do_lower_case": fals' >"$T/bad_config/config.json"
cp "$V" "$T/plain_model/vocab.txt"
grep -v '^\[CLS\]$' "$V" >"$T/no_cls.txt"
printf 'the\nthe\n' >"$T/dup.txt"

ONES6='[1, 1, 1, 1, 1, 1]'
ZEROS6='[0, 0, 0, 0, 0, 0]'

# ---------------------------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------------------------
json "single text" \
  "{'tokens': ['[CLS]', 'the', 'cat', 'sat', '.', '[SEP]'], 'ids': [2, 5, 6, 7, 14, 3],
    'token_type_ids': $ZEROS6, 'attention_mask': $ONES6, 'truncated': False}" \
  tokenize --vocab "$V" "The cat sat."
json "pair: token types 1 after the first [SEP]" \
  "{'tokens': ['[CLS]', 'the', 'cat', '[SEP]', 'on', 'the', 'mat', '[SEP]'], 'ids': [2, 5, 6, 3, 8, 5, 9, 3],
    'token_type_ids': [0, 0, 0, 0, 1, 1, 1, 1], 'attention_mask': [1] * 8, 'truncated': False}" \
  tokenize --vocab "$V" "the cat" "on the mat"
json "WordPiece continuation and unknown words" \
  "{'tokens': ['[CLS]', 'un', '##aff', '##able', '[UNK]', '[SEP]'], 'ids': [2, 11, 12, 13, 1, 3],
    'token_type_ids': $ZEROS6, 'attention_mask': $ONES6, 'truncated': False}" \
  tokenize --vocab "$V" "unaffable dog"
json "uncased by default: accents stripped" \
  "{'tokens': ['[CLS]', 'hello', '[UNK]', 'naive', 'cafe', '[SEP]'], 'ids': [2, 10, 1, 17, 18, 3],
    'token_type_ids': $ZEROS6, 'attention_mask': $ONES6, 'truncated': False}" \
  tokenize --vocab "$V" "Héllo World naïve café"
json "--cased keeps case and accents" \
  "{'tokens': ['[CLS]', 'Héllo', 'World', '[SEP]'], 'ids': [2, 15, 16, 3],
    'token_type_ids': [0] * 4, 'attention_mask': [1] * 4, 'truncated': False}" \
  tokenize --vocab "$V" --cased "Héllo World"
if grep -q 'Héllo' "$T/stdout"; then pass "UTF-8 printed as is (not \\u escapes)"; else fail "UTF-8 printed as is" "$(cat "$T/stdout")"; fi
json "model folder: config.json do_lower_case false means cased" \
  "{'tokens': ['[CLS]', 'Héllo', 'World', '[SEP]'], 'ids': [2, 15, 16, 3],
    'token_type_ids': [0] * 4, 'attention_mask': [1] * 4, 'truncated': False}" \
  tokenize --vocab "$T/cased_model" "Héllo World"
json "model folder: --lowercase overrides the config" \
  "{'tokens': ['[CLS]', 'hello', '[UNK]', '[SEP]'], 'ids': [2, 10, 1, 3],
    'token_type_ids': [0] * 4, 'attention_mask': [1] * 4, 'truncated': False}" \
  tokenize --vocab "$T/cased_model" --lowercase "Héllo World"
json "model folder: tokenizer_config.json wins over config.json" \
  "{'tokens': ['[CLS]', 'Héllo', '[SEP]'], 'ids': [2, 15, 3], 'token_type_ids': [0] * 3,
    'attention_mask': [1] * 3, 'truncated': False}" \
  tokenize --vocab "$T/both_configs" "Héllo"
json "model folder without configs: uncased" \
  "{'tokens': ['[CLS]', 'hello', '[SEP]'], 'ids': [2, 10, 3], 'token_type_ids': [0] * 3,
    'attention_mask': [1] * 3, 'truncated': False}" \
  tokenize --vocab "$T/plain_model" "Héllo"
json "special token in text" \
  "{'tokens': ['[CLS]', 'the', '[MASK]', 'sat', '[SEP]'], 'ids': [2, 5, 4, 7, 3], 'token_type_ids': [0] * 5,
    'attention_mask': [1] * 5, 'truncated': False}" \
  tokenize --vocab "$V" "the [MASK] sat"
json "--max-length truncates a single text from the end" \
  "{'tokens': ['[CLS]', 'the', 'cat', '[SEP]'], 'ids': [2, 5, 6, 3], 'token_type_ids': [0] * 4,
    'attention_mask': [1] * 4, 'truncated': True}" \
  tokenize --vocab "$V" --max-length 4 "the cat sat on the mat"
json "--max-length truncates the longer of a pair (B on a tie)" \
  "{'tokens': ['[CLS]', 'the', 'cat', '[SEP]', 'on', 'the', '[SEP]'], 'ids': [2, 5, 6, 3, 8, 5, 3],
    'token_type_ids': [0, 0, 0, 0, 1, 1, 1], 'attention_mask': [1] * 7, 'truncated': True}" \
  tokenize --vocab "$V" --max-length 7 "the cat sat" "on the mat"
json "empty text encodes to [CLS] [SEP]" \
  "{'tokens': ['[CLS]', '[SEP]'], 'ids': [2, 3], 'token_type_ids': [0, 0], 'attention_mask': [1, 1],
    'truncated': False}" \
  tokenize --vocab "$V" ""

printf 'the cat\r\n\nHello.\n' >"$T/texts.txt"
json "--texts: JSON Lines, one object per line, empty line included, CRLF tolerated" \
  "[{'tokens': ['[CLS]', 'the', 'cat', '[SEP]'], 'ids': [2, 5, 6, 3], 'token_type_ids': [0] * 4,
     'attention_mask': [1] * 4, 'truncated': False},
    {'tokens': ['[CLS]', '[SEP]'], 'ids': [2, 3], 'token_type_ids': [0, 0], 'attention_mask': [1, 1],
     'truncated': False},
    {'tokens': ['[CLS]', 'hello', '.', '[SEP]'], 'ids': [2, 10, 14, 3], 'token_type_ids': [0] * 4,
     'attention_mask': [1] * 4, 'truncated': False}]" \
  tokenize --vocab "$V" --texts "$T/texts.txt"

run --help
if [ "$RC" -eq 0 ] && grep -q 'tokenize' "$T/stdout"; then pass "--help lists tokenize"; else fail "--help lists tokenize (exit $RC)"; fi
run tokenize --help
if [ "$RC" -eq 0 ] && grep -q -- '--texts' "$T/stdout"; then pass "tokenize --help"; else fail "tokenize --help (exit $RC)"; fi

# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------
err "missing vocabulary file" "no such file" tokenize --vocab "$T/absent.txt" "the cat"
err "folder without vocab.txt" "has no vocab.txt" tokenize --vocab "$T/no_vocab" "the cat"
err "vocabulary without [CLS]" "has no [CLS] token" tokenize --vocab "$T/no_cls.txt" "the cat"
err "duplicate vocabulary line" "line 2: duplicate token 'the'" tokenize --vocab "$T/dup.txt" "the"
err "invalid UTF-8 text" "text is not valid UTF-8 (byte offset 2)" tokenize --vocab "$V" "$(printf 'ab\xc3')"
err "invalid UTF-8 second text" "second text is not valid UTF-8 (byte offset 0)" \
  tokenize --vocab "$V" "the" "$(printf '\x80')"
printf 'the cat\nbad \xff\n' >"$T/bad_texts.txt"
err "invalid UTF-8 line in --texts (nothing printed)" "line 2: text is not valid UTF-8 (byte offset 4)" \
  tokenize --vocab "$V" --texts "$T/bad_texts.txt"
err "missing --texts file" "cannot read" tokenize --vocab "$V" --texts "$T/absent_texts.txt"
err "bad config.json" "invalid JSON" tokenize --vocab "$T/bad_config" "the"
err "--lowercase with --cased" "excludes" tokenize --vocab "$V" --lowercase --cased "the"
err "--max-length 1" "--max-length 1" tokenize --vocab "$V" --max-length 1 "the"
err "pair with --max-length 2" "too small for a pair" tokenize --vocab "$V" --max-length 2 "a" "b"
err "no text" "nothing to tokenize" tokenize --vocab "$V"
err "text and --texts" "not both" tokenize --vocab "$V" --texts "$T/texts.txt" "the"
err "three texts" "" tokenize --vocab "$V" a b c
err "missing --vocab" "--vocab" tokenize "the cat"

finish
