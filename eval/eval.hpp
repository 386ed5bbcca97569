// attnlens::eval, everything at once (installed as <attnlens/eval.hpp>): perturbations, masked FGSM, the image
// evaluation engine with its table and report, and the text applications (head pruning, attribution trees,
// triggers, the word attack), and the parts of a run split over processes. Needs LibTorch and OpenCV.
#pragma once

#include "eval/evaluation_report.hpp"
#include "eval/evaluation_table.hpp"
#include "eval/fgsm.hpp"
#include "eval/image_evaluation.hpp"
#include "eval/perturbation.hpp"
#include "eval/text_applications.hpp"
#include "eval/text_evaluation.hpp"
