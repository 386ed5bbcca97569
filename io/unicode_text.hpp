// Unicode helpers the tokenizers share (internal to attnlens_io, not installed): UTF-8 decoding with the checks the
// tokenizers promise, canonical normalisation, categories and the two lowercasings the Python references use.
#pragma once

#include <string>
#include <string_view>

namespace attnlens::unicode {

using CodePoints = std::u32string;

/// Decodes UTF-8 into code points; throws InputError "<what> is not valid UTF-8 (byte offset N)".
CodePoints decode(std::string_view text, const char* what);
void append_utf8(std::string& out, char32_t cp);
std::string encode(const CodePoints& cps);

/// Canonical normalisation (utf8proc): `compose` = NFC, otherwise NFD. `cps` must be well-formed (decoded).
CodePoints normalize(const CodePoints& cps, bool compose);

/// General categories, as utf8proc's Unicode version knows them.
bool is_letter(char32_t cp);  ///< L*
bool is_number(char32_t cp);  ///< N* (Nd, Nl, No)
bool is_nonspacing_mark(char32_t cp);  ///< Mn
bool is_space_separator(char32_t cp);  ///< Zs
bool is_line_or_paragraph_separator(char32_t cp);  ///< Zl, Zp
/// C*: Cc, Cf, Cs, Co and unassigned Cn.
bool is_other(char32_t cp);
/// P* (Pc, Pd, Ps, Pe, Pi, Pf, Po).
bool is_punctuation_category(char32_t cp);

/// Unicode's White_Space property: what `\s` matches in Python's `regex` module (U+0009-000D, 0020, 0085, 00A0,
/// 1680, 2000-200A, 2028, 2029, 202F, 205F, 3000).
bool is_white_space(char32_t cp);

/// Python's str.lower() of a whole string: the full lowercase mapping of each code point (U+0130 'İ' becomes
/// "i" U+0307; every other mapping is one code point) and the Final_Sigma rule (capital sigma becomes 'ς' when a
/// cased letter precedes it and none follows, case-ignorable characters skipped both ways: "ΟΔΟΣ" -> "οδος").
CodePoints python_lower(const CodePoints& text);
/// The full lowercase mapping of each code point on its own, without Final_Sigma ("ΟΔΟΣ" -> "οδοσ"): what Python
/// gives when it lowercases one character at a time, as Hugging Face's slow tokenizers do for do_lower_case.
CodePoints lower_each_character(const CodePoints& text);

}  // namespace attnlens::unicode
