#include "eval/evaluation_table.hpp"

#include <array>
#include <fstream>
#include <sstream>

#include "io/array_writer.hpp"
#include "io/csv_record.hpp"

namespace attnlens {

namespace {

const std::vector<std::string>& scalar_columns() {
  static const std::vector<std::string> c{"milliseconds", "spearman_blankout", "top_overlap_blankout",
                                          "deletion_auc", "insertion_auc",     "positive_auc",
                                          "negative_auc", "pointing_hit",      "mass_in_box",
                                          "saco",         "word_attack_auc"};
  return c;
}

// The scalar members in scalar_columns() order; const for reading, non-const for parsing.
template <typename Scores>
auto scalar_fields(Scores& m) {
  return std::array{&m.milliseconds, &m.spearman_blankout, &m.top_overlap_blankout, &m.deletion_auc, &m.insertion_auc,
                    &m.positive_auc, &m.negative_auc,      &m.pointing_hit,         &m.mass_in_box,
                    &m.saco,         &m.word_attack_auc};
}

void append_series(std::vector<std::string>& header, const char* prefix, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) header.push_back(prefix + std::to_string(i));
}

}  // namespace

std::string evaluation_csv_header(const std::vector<std::string>& row_names) {
  std::vector<std::string> h{"index", "id", "label", "predicted", "probability", "method"};
  for (const auto& c : scalar_columns()) h.push_back(c);
  append_series(h, "deletion_", curve_fractions().size());
  append_series(h, "insertion_", curve_fractions().size());
  append_series(h, "positive_", perturbation_fractions().size());
  append_series(h, "negative_", perturbation_fractions().size());
  for (const auto& r : row_names) h.push_back("spearman_vs_" + r);
  std::string line;
  for (const auto& f : h) line += (line.empty() ? "" : ",") + csv_field(f);
  return line + "\n";
}

std::string evaluation_csv_rows(const ImageScores& im) {
  std::ostringstream out;
  for (const MethodScores& m : im.methods) {
    out << im.index << "," << csv_field(im.id) << "," << im.label << "," << im.predicted << ","
        << format_csv_number(im.probability) << "," << csv_field(m.method);
    for (const double* v : scalar_fields(m)) out << "," << format_csv_number(*v);
    const auto series = [&](const std::vector<double>& values, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) out << "," << (i < values.size() ? format_csv_number(values[i]) : "");
    };
    series(m.deletion_curve, curve_fractions().size());
    series(m.insertion_curve, curve_fractions().size());
    series(m.positive_correct, perturbation_fractions().size());
    series(m.negative_correct, perturbation_fractions().size());
    series(m.spearman_vs, m.spearman_vs.size());
    out << "\n";
  }
  return out.str();
}

std::vector<ImageScores> parse_evaluation_csv(const std::string& text, const std::vector<std::string>& row_names,
                                              const std::string& source) {
  const std::string header = evaluation_csv_header(row_names);
  if (text.compare(0, header.size(), header) != 0)
    throw InputError(source + ": written with other methods or baselines");
  const std::size_t rows_per_image = row_names.size();
  const std::size_t fixed = 6 + scalar_columns().size();
  const std::size_t columns =
      fixed + 2 * curve_fractions().size() + 2 * perturbation_fractions().size() + row_names.size();
  std::vector<ImageScores> images;
  std::size_t pos = header.size(), line_no = 1;
  std::vector<std::string> f;
  ImageScores current;
  while (pos < text.size()) {
    ++line_no;
    const std::string where = source + " line " + std::to_string(line_no);
    if (!next_csv_record(text, pos, f)) throw InputError(where + ": cut short (no line end)");
    if (f.size() != columns) throw InputError(where + ": expected " + std::to_string(columns) + " fields");
    MethodScores m;
    m.method = f[5];
    if (current.methods.empty()) {
      current.index = static_cast<std::size_t>(parse_csv_number(f[0], where));
      current.id = f[1];
      current.label = static_cast<int>(parse_csv_number(f[2], where));
      current.predicted = static_cast<std::int64_t>(parse_csv_number(f[3], where));
      current.probability = parse_csv_number(f[4], where);
    }
    if (m.method != row_names[current.methods.size()])
      throw InputError(where + ": method '" + m.method + "' where '" + row_names[current.methods.size()] +
                       "' was expected");
    std::size_t col = 6;
    for (double* v : scalar_fields(m)) *v = parse_csv_number(f[col++], where);
    const auto series = [&](std::vector<double>& values, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i, ++col)
        if (!f[col].empty()) values.push_back(parse_csv_number(f[col], where));
    };
    series(m.deletion_curve, curve_fractions().size());
    series(m.insertion_curve, curve_fractions().size());
    series(m.positive_correct, perturbation_fractions().size());
    series(m.negative_correct, perturbation_fractions().size());
    for (std::size_t i = 0; i < row_names.size(); ++i) m.spearman_vs.push_back(parse_csv_number(f[col++], where));
    current.methods.push_back(std::move(m));
    if (current.methods.size() == rows_per_image) {
      images.push_back(std::move(current));
      current = ImageScores();
    }
  }
  if (!current.methods.empty()) throw InputError(source + ": the last image has fewer rows than methods");
  return images;
}

const std::vector<std::string>& summary_scalar_names() { return scalar_columns(); }

EvaluationSummary summarise(const std::vector<ImageScores>& images, const std::vector<std::string>& row_names) {
  EvaluationSummary s;
  s.row_names = row_names;
  s.images = images.size();
  std::size_t labelled = 0, correct = 0;
  for (const auto& im : images)
    if (im.label >= 0) ++labelled, correct += im.predicted == im.label ? 1 : 0;
  if (labelled > 0) s.accuracy = static_cast<double>(correct) / static_cast<double>(labelled);
  for (std::size_t r = 0; r < row_names.size(); ++r) {
    RowSummary row;
    row.method = row_names[r];
    const auto mean_series = [&](auto member, std::size_t n) {
      std::vector<double> sum(n, 0.0);
      std::size_t count = 0;
      for (const auto& im : images) {
        const std::vector<double>& v = im.methods[r].*member;
        if (v.size() != n) continue;
        for (std::size_t i = 0; i < n; ++i) sum[i] += v[i];
        ++count;
      }
      if (count == 0) return std::vector<double>{};
      for (double& x : sum) x /= static_cast<double>(count);
      return sum;
    };
    for (std::size_t k = 0; k < scalar_columns().size(); ++k) {
      std::vector<double> values;
      for (const auto& im : images) values.push_back(*scalar_fields(im.methods[r])[k]);
      row.scalars[scalar_columns()[k]] = mean_std(values);
    }
    row.deletion_curve = mean_series(&MethodScores::deletion_curve, curve_fractions().size());
    row.insertion_curve = mean_series(&MethodScores::insertion_curve, curve_fractions().size());
    row.positive_accuracy = mean_series(&MethodScores::positive_correct, perturbation_fractions().size());
    row.negative_accuracy = mean_series(&MethodScores::negative_correct, perturbation_fractions().size());
    row.spearman_vs = mean_series(&MethodScores::spearman_vs, row_names.size());
    s.rows.push_back(std::move(row));
  }
  return s;
}

std::string summary_csv(const EvaluationSummary& s) {
  std::string out = "method";
  for (const auto& n : summary_scalar_names()) out += "," + n + "_mean," + n + "_std," + n + "_count";
  out += "\n";
  for (const auto& row : s.rows) {
    out += csv_field(row.method);
    for (const auto& n : summary_scalar_names()) {
      const MeanStd& m = row.scalars.at(n);
      out += "," + format_csv_number(m.mean) + "," + format_csv_number(m.std) + "," + std::to_string(m.count);
    }
    out += "\n";
  }
  return out;
}

}  // namespace attnlens
