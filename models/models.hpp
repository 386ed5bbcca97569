// attnlens::models, everything at once (installed as <attnlens/models.hpp>): ViT/DeiT/DINO, DeiT III, DINOv2, CLIP
// and BERT, DistilBERT, RoBERTa in LibTorch, loaded from safetensors with attention capture and their image inputs,
// text classifiers with their tokenizer, and the explanation methods that run a model again (AttAttr, blank-out,
// input x gradient). Needs LibTorch.
#pragma once

#include "explain/image_explainer.hpp"
#include "explain/model_method.hpp"
#include "explain/text_methods.hpp"
#include "models/arrays.hpp"
#include "models/bert.hpp"
#include "models/checkpoint.hpp"
#include "models/clip.hpp"
#include "models/deit3.hpp"
#include "models/dinov2.hpp"
#include "models/distilbert.hpp"
#include "models/image_classifier.hpp"
#include "models/roberta.hpp"
#include "models/text_classifier.hpp"
#include "models/text_model.hpp"
#include "models/vision_backbone.hpp"
#include "models/vit.hpp"
#include "models/vit_inputs.hpp"
