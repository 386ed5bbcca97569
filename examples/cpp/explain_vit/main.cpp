// explain_vit: load an image Transformer of any family attnlens knows (ViT, DeiT, DINO, DeiT III, DINOv2, CLIP)
// from a folder with model.safetensors and its config files, and explain its decision on one image with attention rollout and Chefer et
// al.'s relevance: one forward and one backward pass serve both methods.
//
//   explain_vit MODEL_DIR IMAGE OUT_DIR    writes OUT_DIR/{rollout,chefer}.npy (patch maps) and .png (overlays)
#include <attnlens/io.hpp>
#include <attnlens/models.hpp>
#include <attnlens/viz.hpp>
#include <cstdio>
#include <memory>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: explain_vit MODEL_DIR IMAGE OUT_DIR\n");
    return 2;
  }
  const std::string model_dir = argv[1], image_path = argv[2], out = argv[3];
  try {
    const std::unique_ptr<attnlens::ImageClassifier> model = attnlens::load_image_classifier(model_dir);
    const attnlens::ImageModelConfig& config = model->config();
    // The image, resized and normalised as the model expects (config.json's preprocessing).
    const attnlens::ModelImage image =
        attnlens::load_model_image(image_path, attnlens::model_preprocess(config), config);

    attnlens::MethodSettings settings;  // defaults: the CLS token, mean fusion, Abnar rollout, start layer 0
    const attnlens::ImageExplainer explainer({"rollout", "chefer"}, settings);
    const attnlens::ImageCapture capture = explainer.capture(*model, image.tensor.unsqueeze(0));  // a batch of one
    const std::int64_t predicted = capture.logits[0].argmax().item<std::int64_t>();
    std::printf("%s: predicted %s\n", image_path.c_str(), attnlens::label_of(config, predicted).c_str());

    const auto maps = explainer.explain(*model, capture, image.tensor.unsqueeze(0), 0, predicted,
                                        attnlens::token_layout(config));
    for (const attnlens::MethodMap& m : maps) {  // m.map: [grid_h, grid_w], not rescaled
      attnlens::write_array(out + "/" + m.method + ".npy", m.map, {"row", "col"});
      // Chefer's relevance is shown min-max scaled in his colours, rollout / max as vit-explain shows it.
      const bool chefer = m.method == "chefer";
      const cv::Mat overlay = chefer
                                  ? attnlens::overlay_chefer(image.rgb, attnlens::scale_for_display(m.map, true))
                                  : attnlens::overlay_vit_explain(image.rgb, attnlens::scale_for_display(m.map, false));
      attnlens::write_png(out + "/" + m.method + ".png", overlay);
      std::printf("  %-8s map %s -> %s/%s.png\n", m.method.c_str(), m.map.shape_string().c_str(), out.c_str(),
                  m.method.c_str());
    }
  } catch (const attnlens::InputError& e) {
    std::fprintf(stderr, "explain_vit: %s\n", e.what());
    return 2;
  }
  return 0;
}
