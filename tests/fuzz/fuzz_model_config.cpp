// config.json beside a model (io/model_config): the JSON itself, typed keys, labels / id2label, and the keys of each
// model family (ViT/DeiT/DINO and BERT), as models/vit.cpp and models/bert.cpp read them.
#include "io/model_config.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace attnlens;
  const std::string path = fuzz::put_file("model/config.json", fuzz::as_bytes(data, size));
  fuzz::only_input_errors([&] {
    const auto j = read_config_json(path);
    if (!j) fuzz::invariant_failed("an existing config.json read as absent");
    fuzz::only_input_errors([&] {
      VitConfigKeys vit;
      read_vit_config_keys(*j, vit, path);
      if (vit.num_heads < 0 || !(vit.layer_norm_eps > 0)) fuzz::invariant_failed("ViT keys out of range");
      if (!vit.mean.empty() && vit.mean.size() != 3) fuzz::invariant_failed("ViT mean not 3 values");
    });
    fuzz::only_input_errors([&] {
      BertConfigKeys bert;
      bert.vocab_size = 30522;
      bert.hidden_size = 768;
      bert.num_layers = 12;
      read_bert_config_keys(*j, bert, path);
      if (bert.num_heads < 0 || !(bert.layer_norm_eps > 0)) fuzz::invariant_failed("BERT keys out of range");
    });
  });
  return 0;
}
