#include "explain/model_method.hpp"

#include <algorithm>
#include <map>

namespace attnlens {

void ModelExplanationMethod::check(const ImageModelConfig& config) const {
  if (config.num_classes == 0)
    throw InputError("method " + name() + " explains a class; this model is a backbone without classes");
}

std::vector<double> ModelExplanationMethod::explain_text(const TextClassifier&, const TextBatch&,
                                                         std::int64_t) const {
  throw InputError("method " + name() + " explains images only");
}

const std::vector<std::string>& model_method_names() {
  static const std::vector<std::string> names = {"agcam",   "bi-attn", "bi-attn-token", "atman",
                                                "attnlrp", "cp-lrp",  "chefer-lrp"};
  return names;
}

bool is_model_method(const std::string& name) {
  const auto& n = model_method_names();
  return std::find(n.begin(), n.end(), name) != n.end();
}

const std::vector<std::string>& image_method_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> all = method_names();
    all.insert(all.end(), model_method_names().begin(), model_method_names().end());
    return all;
  }();
  return names;
}

std::vector<std::string> image_method_names(const ImageModelConfig& config) {
  std::vector<std::string> names;
  for (const auto& n : image_method_names())
    if (!is_model_method(n) || make_model_method(n, MethodSettings{})->applies_to(config)) names.push_back(n);
  return names;
}

std::unique_ptr<ModelExplanationMethod> make_model_method(const std::string& name, const MethodSettings& s) {
  using Factory = std::unique_ptr<ModelExplanationMethod> (*)(const MethodSettings&);
  static const std::map<std::string, Factory> factories = {
      {"agcam", make_agcam}, {"bi-attn", make_bi_attn},   {"bi-attn-token", make_bi_attn_token},
      {"atman", make_atman}, {"attnlrp", make_attnlrp}, {"cp-lrp", make_cp_lrp},
      {"chefer-lrp", make_chefer_lrp}};
  const auto it = factories.find(name);
  if (it == factories.end()) {
    std::string known;
    for (const auto& n : image_method_names()) known += (known.empty() ? "" : ", ") + n;
    throw InputError("unknown method '" + name + "' (known: " + known + ")");
  }
  check_query_row_supported(name, s.query_row);
  if (s.batch < 1) throw InputError("the method batch must be >= 1");
  return it->second(s);
}

}  // namespace attnlens
