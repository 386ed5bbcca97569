#include "models/clip.hpp"

#include <cmath>
#include <filesystem>
#include <limits>
#include <optional>

#include "io/bpe.hpp"
#include "io/model_config.hpp"
#include "models/image_family.hpp"

namespace attnlens {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Where the two towers' tensors are in each naming.
struct ClipNames {
  bool hf = false;
  std::string prefix;  // Hugging Face: before vision_model. (CLIPModel has none)

  std::string vision(const std::string& part) const { return prefix + (hf ? "vision_model." : "visual.") + part; }
  std::string text(const std::string& part) const { return prefix + (hf ? "text_model." : "") + part; }
  std::string vision_layers() const { return vision(hf ? "encoder.layers." : "transformer.resblocks."); }
  std::string text_layers() const { return text(hf ? "encoder.layers." : "transformer.resblocks."); }
};

// One pre-norm block under `p` (a layer's prefix) in either naming; width D, feed-forward F.
PreNormBlock read_block(const CheckpointTensors& w, bool hf, const std::string& p, std::int64_t D, std::int64_t F) {
  PreNormBlock k;
  const std::string ln1 = hf ? "layer_norm1." : "ln_1.", ln2 = hf ? "layer_norm2." : "ln_2.";
  k.norm1_w = w.get(p + ln1 + "weight", {D});
  k.norm1_b = w.get(p + ln1 + "bias", {D});
  if (hf) {  // q_proj, k_proj, v_proj stacked into open_clip's in_proj layout (Q rows first)
    k.qkv_w = torch::cat({w.get(p + "self_attn.q_proj.weight", {D, D}), w.get(p + "self_attn.k_proj.weight", {D, D}),
                          w.get(p + "self_attn.v_proj.weight", {D, D})});
    k.qkv_b = torch::cat({w.get(p + "self_attn.q_proj.bias", {D}), w.get(p + "self_attn.k_proj.bias", {D}),
                          w.get(p + "self_attn.v_proj.bias", {D})});
  } else {
    k.qkv_w = w.get(p + "attn.in_proj_weight", {3 * D, D});
    k.qkv_b = w.get(p + "attn.in_proj_bias", {3 * D});
  }
  const std::string out = hf ? "self_attn.out_proj." : "attn.out_proj.";
  k.proj_w = w.get(p + out + "weight", {D, D});
  k.proj_b = w.get(p + out + "bias", {D});
  k.norm2_w = w.get(p + ln2 + "weight", {D});
  k.norm2_b = w.get(p + ln2 + "bias", {D});
  const std::string fc1 = hf ? "mlp.fc1." : "mlp.c_fc.", fc2 = hf ? "mlp.fc2." : "mlp.c_proj.";
  k.fc1_w = w.get(p + fc1 + "weight", {F, D});
  k.fc1_b = w.get(p + fc1 + "bias", {F});
  k.fc2_w = w.get(p + fc2 + "weight", {D, F});
  k.fc2_b = w.get(p + fc2 + "bias", {D});
  return k;
}

// A sub-object of a config file ({} when absent); InputError when it is not an object.
json section(const json& j, const char* key, const char* legacy_key, const std::string& where) {
  for (const char* k : {key, legacy_key})
    if (k != nullptr && j.contains(k) && !j[k].is_null()) {
      if (!j[k].is_object()) throw InputError(where + ": '" + k + "' must be an object");
      return j[k];
    }
  return json::object();
}

// What a tower's config sets, and the checks of what it restates.
struct TowerSettings {
  int heads = 0;
  double eps = 1e-5;
  std::optional<FeedForward> activation;
};

}  // namespace

ClipModel ClipModel::load(const CheckpointTensors& w, const ImageModelOptions& options) {
  const std::string& file = w.file_name();
  const fs::path folder = model_folder(file);
  ClipModel m;
  ClipConfig& c = m.config_;
  c.family = "clip";
  ClipNames names;
  const std::string hf_marker = "vision_model.embeddings.patch_embedding.weight";
  if (const std::string hf = w.find_suffix(hf_marker); !hf.empty()) {
    names.hf = true;
    names.prefix = hf.substr(0, hf.size() - hf_marker.size());
  }
  c.naming = names.hf ? "hf" : "open_clip";
  c.preprocess = "clip";
  c.mean = {0.48145466, 0.4578275, 0.40821073};
  c.std = {0.26862954, 0.26130258, 0.27577711};

  // ---- shapes ----
  const std::string conv = names.hf ? names.vision("embeddings.patch_embedding.weight") : names.vision("conv1.weight");
  const auto patch_shape = w.shape_of(conv);
  if (patch_shape.size() != 4 || patch_shape[2] != patch_shape[3])
    throw InputError(file + ": the patch embedding must be a square convolution [D,C,p,p]");
  c.embed_dim = static_cast<int>(patch_shape[0]);
  c.in_chans = static_cast<int>(patch_shape[1]);
  c.patch_size = static_cast<int>(patch_shape[2]);
  c.depth = w.count_indexed(names.vision_layers());
  if (c.depth == 0) throw InputError(file + ": no image transformer blocks found (" + names.vision_layers() + "N.*)");
  const std::string pos_name =
      names.hf ? names.vision("embeddings.position_embedding.weight") : names.vision("positional_embedding");
  const int side = square_grid_side(w.shape_of(pos_name), 1, file, pos_name);
  c.image_height = c.image_width = side * c.patch_size;
  const std::string fc1_name = names.vision_layers() + "0." + (names.hf ? "mlp.fc1.weight" : "mlp.c_fc.weight");
  const std::int64_t vision_mlp = w.shape_of(fc1_name)[0];
  const std::string proj_name = names.hf ? names.prefix + "visual_projection.weight" : names.vision("proj");
  const auto proj_shape = w.shape_of(proj_name);
  if (proj_shape.size() != 2) throw InputError(file + ": " + proj_name + " must be a matrix");
  c.projection_dim = static_cast<int>(names.hf ? proj_shape[0] : proj_shape[1]);

  const std::string token_name =
      names.hf ? names.text("embeddings.token_embedding.weight") : names.text("token_embedding.weight");
  c.has_text_tower = w.has(token_name);
  std::int64_t text_mlp = 0;
  if (c.has_text_tower) {
    const auto tok = w.shape_of(token_name);
    c.vocab_size = static_cast<int>(tok.at(0));
    c.text_width = static_cast<int>(tok.at(1));
    const std::string tpos =
        names.hf ? names.text("embeddings.position_embedding.weight") : names.text("positional_embedding");
    c.context_length = static_cast<int>(w.shape_of(tpos).at(0));
    c.text_depth = w.count_indexed(names.text_layers());
    if (c.text_depth == 0) throw InputError(file + ": no text transformer blocks found (" + names.text_layers() + "N.*)");
    text_mlp = w.shape_of(names.text_layers() + "0." + (names.hf ? "mlp.fc1.weight" : "mlp.c_fc.weight"))[0];
  }

  // ---- config: activation, heads, eps; and the checks of what it restates ----
  TowerSettings vision, text;
  vision.heads = c.embed_dim / 64;
  text.heads = c.text_width / 64;
  if (names.hf) {
    const std::string config_path = (folder / "config.json").string();
    const auto j = read_config_json(config_path);
    if (!j)
      throw InputError(file + ": Hugging Face CLIP weights need their config.json beside them (hidden_act tells "
                              "QuickGELU from GELU)");
    check_config_matches(*j, "projection_dim", c.projection_dim, config_path);
    const std::pair<const char*, TowerSettings*> towers[] = {{"vision_config", &vision}, {"text_config", &text}};
    for (const auto& [key, tower] : towers) {
      const std::string where = config_path + " " + key;
      const json t = section(*j, key, key == std::string("vision_config") ? "vision_config_dict" : "text_config_dict",
                             config_path);
      std::string act = "quick_gelu";  // CLIPVisionConfig's and CLIPTextConfig's default
      read_config_key(t, "hidden_act", act, where);
      tower->activation = activation_named(act, where);
      read_config_key(t, "num_attention_heads", tower->heads, where);
      read_config_key(t, "layer_norm_eps", tower->eps, where);
      if (!(tower->eps > 0)) throw InputError(where + ": 'layer_norm_eps' must be a positive number");
      const bool image = tower == &vision;
      if (!image && !c.has_text_tower) continue;
      check_config_matches(t, "hidden_size", image ? c.embed_dim : c.text_width, where);
      check_config_matches(t, "num_hidden_layers", image ? c.depth : c.text_depth, where);
      check_config_matches(t, "intermediate_size", static_cast<int>(image ? vision_mlp : text_mlp), where);
      if (image) {
        check_config_matches(t, "patch_size", c.patch_size, where);
        check_config_matches(t, "image_size", c.image_height, where);
        check_config_matches(t, "num_channels", c.in_chans, where);
      } else {
        check_config_matches(t, "vocab_size", c.vocab_size, where);
        check_config_matches(t, "max_position_embeddings", c.context_length, where);
      }
    }
  } else {
    const std::string config_path = (folder / "open_clip_config.json").string();
    const auto j = read_config_json(config_path);
    if (!j)
      throw InputError(file + ": open_clip/OpenAI CLIP weights need open_clip_config.json beside them: its "
                              "model_cfg.quick_gelu tells QuickGELU from GELU (OpenAI's own weights use QuickGELU: "
                              "{\"model_cfg\": {\"quick_gelu\": true}})");
    const json model_cfg = section(*j, "model_cfg", nullptr, config_path);
    const std::string where = config_path + " model_cfg";
    bool quick_gelu = false;  // open_clip's CLIP default
    read_config_key(model_cfg, "quick_gelu", quick_gelu, where);
    vision.activation = text.activation = quick_gelu ? FeedForward::QuickGelu : FeedForward::Gelu;
    check_config_matches(model_cfg, "embed_dim", c.projection_dim, where);
    const json vcfg = section(model_cfg, "vision_cfg", nullptr, where), tcfg = section(model_cfg, "text_cfg", nullptr, where);
    const std::string vwhere = where + ".vision_cfg", twhere = where + ".text_cfg";
    int head_width = 64;
    read_config_key(vcfg, "head_width", head_width, vwhere);
    if (head_width <= 0 || c.embed_dim % head_width != 0)
      throw InputError(vwhere + ": head_width " + std::to_string(head_width) + " does not divide the width " +
                       std::to_string(c.embed_dim));
    vision.heads = c.embed_dim / head_width;
    read_config_key(tcfg, "heads", text.heads, twhere);
    check_config_matches(vcfg, "width", c.embed_dim, vwhere);
    check_config_matches(vcfg, "layers", c.depth, vwhere);
    check_config_matches(vcfg, "patch_size", c.patch_size, vwhere);
    if (vcfg.contains("image_size") && vcfg["image_size"].is_number_integer())
      check_config_matches(vcfg, "image_size", c.image_height, vwhere);
    if (c.has_text_tower) {
      check_config_matches(tcfg, "width", c.text_width, twhere);
      check_config_matches(tcfg, "layers", c.text_depth, twhere);
      check_config_matches(tcfg, "vocab_size", c.vocab_size, twhere);
      check_config_matches(tcfg, "context_length", c.context_length, twhere);
    }
  }
  c.num_heads = vision.heads;
  c.layer_norm_eps = vision.eps;
  c.image_activation = *vision.activation;
  c.text_activation = *text.activation;
  c.text_heads = text.heads;
  check_heads_and_labels(c, file, "");
  if (c.has_text_tower && (c.text_heads <= 0 || c.text_width % c.text_heads != 0))
    throw InputError(file + ": " + std::to_string(c.text_heads) + " text attention heads do not divide the text " +
                     "width " + std::to_string(c.text_width));

  // ---- image tower ----
  const std::int64_t D = c.embed_dim, E = c.projection_dim;
  VisionBackbone& b = m.image_;
  b.patch_size = c.patch_size;
  b.patch_w = w.get(conv, {D, c.in_chans, c.patch_size, c.patch_size});  // no bias
  const std::string cls_name = names.hf ? names.vision("embeddings.class_embedding") : names.vision("class_embedding");
  b.cls_token = w.get(cls_name, {D}).reshape({1, 1, D});
  b.pos_embed = w.get(pos_name, {1 + static_cast<std::int64_t>(side) * side, D}).unsqueeze(0);
  b.pos_prefix = 1;
  const std::string pre = names.hf ? names.vision("pre_layrnorm.") : names.vision("ln_pre.");
  b.pre_norm_w = w.get(pre + "weight", {D});
  b.pre_norm_b = w.get(pre + "bias", {D});
  b.encoder.num_heads = c.num_heads;
  b.encoder.layer_norm_eps = vision.eps;
  b.encoder.feed_forward = c.image_activation;
  for (int i = 0; i < c.depth; ++i)
    b.encoder.blocks.push_back(read_block(w, names.hf, names.vision_layers() + std::to_string(i) + ".", D, vision_mlp));
  // ln_post (HF post_layernorm) normalises the CLS token; the backbone's final norm does it on every token.
  const std::string post = names.hf ? names.vision("post_layernorm.") : names.vision("ln_post.");
  b.norm_w = w.get(post + "weight", {D});
  b.norm_b = w.get(post + "bias", {D});
  // open_clip applies proj as x @ proj [D, E]; Hugging Face's Linear weight is its transpose [E, D].
  m.image_projection_ = names.hf ? w.get(proj_name, {E, D}).t().contiguous() : w.get(proj_name, {D, E});

  // ---- text tower and the prompts ----
  if (c.has_text_tower) {
    const std::int64_t W = c.text_width;
    m.token_embedding_ = w.get(token_name, {c.vocab_size, W});
    m.text_positions_ =
        w.get(names.hf ? names.text("embeddings.position_embedding.weight") : names.text("positional_embedding"),
              {c.context_length, W});
    m.text_.num_heads = c.text_heads;
    m.text_.layer_norm_eps = text.eps;
    m.text_.feed_forward = c.text_activation;
    for (int i = 0; i < c.text_depth; ++i)
      m.text_.blocks.push_back(read_block(w, names.hf, names.text_layers() + std::to_string(i) + ".", W, text_mlp));
    const std::string fin = names.hf ? names.text("final_layer_norm.") : names.text("ln_final.");
    m.final_norm_w_ = w.get(fin + "weight", {W});
    m.final_norm_b_ = w.get(fin + "bias", {W});
    m.text_projection_ = names.hf ? w.get(names.prefix + "text_projection.weight", {E, W}).t().contiguous()
                                  : w.get("text_projection", {W, E});
    c.logit_scale = std::exp(w.get(names.prefix + "logit_scale", {}).item<double>());
  }
  if (!options.prompts.empty()) {
    if (!c.has_text_tower)
      throw InputError(file + ": --labels needs CLIP's text tower, and these weights have only the image tower");
    BpeOptions bpe;
    bpe.flavor = BpeOptions::Flavor::Clip;
    bpe.max_length = c.context_length;
    bpe.pad_to_max_length = true;
    const ByteLevelBpeTokenizer tokenizer =
        ByteLevelBpeTokenizer::load((folder / "vocab.json").string(), (folder / "merges.txt").string(), bpe);
    if (tokenizer.vocabulary().size() != c.vocab_size)
      throw InputError((folder / "vocab.json").string() + ": " + std::to_string(tokenizer.vocabulary().size()) +
                       " tokens, but the text tower embeds " + std::to_string(c.vocab_size));
    std::vector<std::int64_t> ids;
    for (const auto& prompt : options.prompts) {
      const Encoding e = tokenizer.encode(prompt);
      ids.insert(ids.end(), e.ids.begin(), e.ids.end());
    }
    const auto n = static_cast<std::int64_t>(options.prompts.size());
    const torch::Tensor batch = torch::tensor(ids, torch::kInt64).reshape({n, c.context_length});
    torch::NoGradGuard no_grad;
    const torch::Tensor f = m.text_features(batch, tokenizer.eos_id());
    m.prompt_embeddings_ = f / f.norm(2, -1, true);
    c.labels = options.prompts;
    c.num_classes = static_cast<int>(n);
  } else {
    c.num_classes = 0;
  }
  // Hugging Face's interpolate_pos_encoding: bicubic to the new size, no antialiasing (open_clip has none).
  resize_to_image_size(options.image_size, options.position_resize.value_or(PositionResize::Bicubic), c, b);

  move_to_device(options.device, b,
                 {&m.image_projection_, &m.token_embedding_, &m.text_positions_, &m.final_norm_w_, &m.final_norm_b_,
                  &m.text_projection_, &m.prompt_embeddings_});
  m.text_.to(options.device);
  m.device_ = options.device;
  return m;
}

torch::Tensor ClipModel::text_features(const torch::Tensor& ids, std::int64_t eot_id) const {
  const ClipConfig& c = config_;
  if (!c.has_text_tower) throw InputError("these CLIP weights have no text tower");
  if (ids.dim() != 2 || ids.size(1) < 1 || ids.size(1) > c.context_length)
    throw InputError("token ids must be [T, L] with L <= " + std::to_string(c.context_length));
  const auto cpu_ids = ids.to(torch::kCPU).to(torch::kInt64).contiguous();
  if (cpu_ids.min().item<std::int64_t>() < 0 || cpu_ids.max().item<std::int64_t>() >= c.vocab_size)
    throw InputError("token ids must be in [0, " + std::to_string(c.vocab_size) + ")");
  const std::int64_t T = ids.size(0), L = ids.size(1), W = c.text_width;
  // The end-of-text token of each row: its first occurrence (where argmax(ids) lands for CLIP's vocabulary).
  std::vector<std::int64_t> eot;
  const auto* p = cpu_ids.data_ptr<std::int64_t>();
  for (std::int64_t t = 0; t < T; ++t) {
    std::int64_t at = -1;
    for (std::int64_t i = 0; i < L && at < 0; ++i)
      if (p[t * L + i] == eot_id) at = i;
    if (at < 0) throw InputError("token ids row " + std::to_string(t) + " has no end-of-text token");
    eot.push_back(at);
  }
  const auto dev_ids = cpu_ids.to(device_);
  auto x = token_embedding_.index_select(0, dev_ids.flatten()).reshape({T, L, W}) + text_positions_.narrow(0, 0, L);
  const auto mask =
      torch::full({L, L}, -std::numeric_limits<float>::infinity(), x.options()).triu(1);  // no attending ahead
  x = text_.run(x, mask, nullptr, {});
  x = torch::layer_norm(x, {W}, final_norm_w_, final_norm_b_, text_.layer_norm_eps);
  const auto rows = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(device_));
  const auto cols = torch::tensor(eot, torch::kInt64).to(device_);
  return x.index({rows, cols}).matmul(text_projection_);
}

torch::Tensor ClipModel::project_image(const torch::Tensor& images, ImageCapture* capture,
                                       const ForwardRules& rules) const {
  check_input(images);
  return image_.tokens(images, capture, rules).select(1, 0).matmul(image_projection_);
}

torch::Tensor ClipModel::image_features(const torch::Tensor& images) const {
  torch::NoGradGuard no_grad;
  return project_image(images.to(device_), nullptr, {});
}

torch::Tensor ClipModel::run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const {
  const auto f = project_image(images, capture, rules);
  if (config_.num_classes == 0) return f;
  // exp(logit_scale) * cos(image, prompt), as CLIP's logits_per_image.
  return config_.logit_scale * rules.normalize(f).matmul(prompt_embeddings_.t());
}

}  // namespace attnlens
