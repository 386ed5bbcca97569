// attnlens::io, everything at once (installed as <attnlens/io.hpp>): .npy and safetensors, result arrays as
// NPY/CSV/JSON, atomic writes, labelled text data, BERT vocabularies and WordPiece, byte-level BPE (RoBERTa, CLIP).
// No LibTorch, no OpenCV.
#pragma once

#include "io/array_writer.hpp"
#include "io/atomic_file.hpp"
#include "io/bpe.hpp"
#include "io/csv_record.hpp"
#include "io/json_input.hpp"
#include "io/model_config.hpp"
#include "io/npy.hpp"
#include "io/run_parts.hpp"
#include "io/safetensors.hpp"
#include "io/system.hpp"
#include "io/text_dataset.hpp"
#include "io/vocab.hpp"
#include "io/wordpiece.hpp"
