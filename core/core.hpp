// attnlens::core, everything at once (installed as <attnlens/core.hpp>): attention stacks as plain arrays, the
// attention-graph methods (rollout, exact attention flow, gradient rollout, Chefer relevance, distance, head maps),
// the explanation-method interface and the faithfulness metrics. No LibTorch, no OpenCV, no I/O.
#pragma once

#include "core/array.hpp"           // Array, AttentionView, TokenLayout, InputError
#include "core/attention_flow.hpp"  // exact attention flow (spec 3)
#include "core/attribution_tree.hpp"
#include "core/distance.hpp"
#include "core/fusion.hpp"
#include "core/gradient_methods.hpp"  // gradient rollout, Chefer relevance (spec 2, 4.1)
#include "core/heads.hpp"
#include "core/layered_flow.hpp"
#include "core/rollout.hpp"
#include "core/stack_methods.hpp"  // every method on a whole stack, as `attnlens attention` runs it
#include "core/triggers.hpp"
#include "core/validate.hpp"
#include "eval/metrics.hpp"    // Spearman, top-k overlap, AUCs, localisation
#include "explain/method.hpp"  // ExplanationMethod, make_method(): one explanation from one AttentionRecord
