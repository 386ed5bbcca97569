// own_model: attnlens' explanation methods on a Transformer that attnlens knows nothing about. The model is the
// user's own LibTorch module; all attnlens needs is what it records: every layer's post-softmax attention
// [B, H, N, N] and, for the gradient methods, that attention's gradient with respect to the explained logit.
//
//   own_model OUT_DIR    writes attention.npy, attention_grad.npy [L,H,N,N] and {rollout,grad-rollout,chefer}.npy
#include <torch/torch.h>

#include <attnlens/core.hpp>
#include <attnlens/io.hpp>
#include <attnlens/models.hpp>  // image_layers: per-layer tensors -> one [L,H,N,N] Array
#include <cstdio>
#include <string>
#include <vector>

namespace {

// A pre-norm Transformer block, written the usual way; the only addition is keeping the attention probabilities.
struct BlockImpl : torch::nn::Module {
  BlockImpl(int dim, int heads)
      : heads(heads),
        norm1(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
        qkv(register_module("qkv", torch::nn::Linear(dim, 3 * dim))),
        proj(register_module("proj", torch::nn::Linear(dim, dim))),
        norm2(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
        fc1(register_module("fc1", torch::nn::Linear(dim, 4 * dim))),
        fc2(register_module("fc2", torch::nn::Linear(4 * dim, dim))) {}

  torch::Tensor forward(const torch::Tensor& x, std::vector<torch::Tensor>& attention) {
    const auto b = x.size(0), n = x.size(1), d = x.size(2);
    const auto parts = qkv(norm1(x)).reshape({b, n, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
    const auto q = parts[0], k = parts[1], v = parts[2];
    auto attn = torch::softmax(q.matmul(k.transpose(-2, -1)) / std::sqrt(static_cast<double>(d / heads)), -1);
    attn.retain_grad();  // its gradient is what grad-rollout and Chefer's relevance weigh the attention by
    attention.push_back(attn);
    const auto y = x + proj(attn.matmul(v).transpose(1, 2).reshape({b, n, d}));
    return y + fc2(torch::gelu(fc1(norm2(y))));
  }

  int heads;
  torch::nn::LayerNorm norm1;
  torch::nn::Linear qkv, proj;
  torch::nn::LayerNorm norm2;
  torch::nn::Linear fc1, fc2;
};
TORCH_MODULE(Block);

}  // namespace

int main(int argc, char** argv) {
  const std::string out = argc > 1 ? argv[1] : ".";
  constexpr int kLayers = 3, kHeads = 2, kDim = 16, kGrid = 4, kClasses = 5;
  torch::manual_seed(0);
  std::vector<Block> blocks;
  for (int l = 0; l < kLayers; ++l) blocks.emplace_back(kDim, kHeads);
  torch::nn::Linear head(kDim, kClasses);
  // A CLS token followed by a 4x4 grid of patch embeddings (whatever the user's tokenizer or patch embedding made).
  const torch::Tensor tokens = torch::randn({1, 1 + kGrid * kGrid, kDim});

  std::vector<torch::Tensor> attention;
  torch::Tensor x = tokens;
  for (auto& block : blocks) x = block->forward(x, attention);
  const torch::Tensor logits = head(x.select(1, 0));
  const std::int64_t target = logits[0].argmax().item<std::int64_t>();
  logits[0][target].backward();  // d(target logit)/dA for every layer
  std::vector<torch::Tensor> gradients;
  for (const auto& a : attention) gradients.push_back(a.grad());

  try {
    attnlens::AttentionRecord record;
    record.attention = attnlens::image_layers(attention, 0);  // [L,H,N,N] of image 0, as double
    record.attention_grad = attnlens::image_layers(gradients, 0);
    record.layout = attnlens::TokenLayout::resolve(1 + kGrid * kGrid, /*prefix=*/1);  // CLS + a 4x4 grid
    attnlens::write_array(out + "/attention.npy", record.attention, {"layer", "head", "query", "key"});
    attnlens::write_array(out + "/attention_grad.npy", record.attention_grad, {"layer", "head", "query", "key"});
    std::printf("explained class %lld\n", static_cast<long long>(target));
    for (const std::string name : {"rollout", "grad-rollout", "chefer"}) {
      const auto method = attnlens::make_method(name, attnlens::MethodSettings{});
      const attnlens::Array map = method->explain(record);  // [4, 4] over the patches
      attnlens::write_array(out + "/" + name + ".npy", map, {"row", "col"});
      std::printf("%-12s", name.c_str());
      for (double v : map.data) std::printf(" %.3f", v);
      std::printf("\n");
    }
  } catch (const attnlens::InputError& e) {
    std::fprintf(stderr, "own_model: %s\n", e.what());
    return 2;
  }
  return 0;
}
