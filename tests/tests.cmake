# The tests that need the LibTorch/OpenCV build: viz and image GoogleTests, the CLI end to end, and the cross-checks
# against independent implementations (networkx, torchvision, PyTorch, scipy, headless Chromium). Included from the
# top-level CMakeLists.txt (ATTNLENS_BUILD_TESTS and ATTNLENS_MODELS), so paths are relative to the source root.

add_executable(viz_image_tests
  tests/test_main.cpp
  tests/viz/test_colormap_overlay.cpp
  tests/viz/test_svg_html.cpp
  tests/viz/test_text_highlight.cpp
  tests/io/test_image.cpp
  tests/io/test_datasets.cpp
)
target_link_libraries(viz_image_tests PRIVATE attnlens_viz GTest::gtest ZLIB::ZLIB)  # zlib: the tests write .gz IDX
target_compile_definitions(viz_image_tests PRIVATE ATTNLENS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(viz_image_tests DISCOVERY_TIMEOUT 60)

# The relevance rules and the methods that run the model again, on hand-built tensors and the bundled model.
add_executable(model_tests
  tests/test_main.cpp
  tests/models/test_forward_rules.cpp
  tests/models/test_chefer_lrp.cpp
)
target_link_libraries(model_tests PRIVATE attnlens_eval GTest::gtest)
target_compile_definitions(model_tests PRIVATE ATTNLENS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
gtest_discover_tests(model_tests DISCOVERY_TIMEOUT 60)

# End-to-end tests of the executable: exit codes, outputs, no half-written files.
add_test(NAME cli_end_to_end
  COMMAND ${CMAKE_COMMAND} -E env ATTNLENS=$<TARGET_FILE:attnlens>
          bash ${PROJECT_SOURCE_DIR}/tests/cli/test_cli.sh)
set_tests_properties(cli_end_to_end PROPERTIES TIMEOUT 300)
# `attnlens tokenize`: BERT WordPiece encodings as JSON, casing from a model folder, errors.
add_test(NAME cli_tokenize
  COMMAND ${CMAKE_COMMAND} -E env ATTNLENS=$<TARGET_FILE:attnlens>
          bash ${PROJECT_SOURCE_DIR}/tests/cli/test_tokenize.sh)
set_tests_properties(cli_tokenize PROPERTIES TIMEOUT 120)
# explain/capture/predict on the bundled model, and their agreement with the attention subcommands.
add_test(NAME explain_end_to_end
  COMMAND ${CMAKE_COMMAND} -E env ATTNLENS=$<TARGET_FILE:attnlens> ATTNLENS_SOURCE=${PROJECT_SOURCE_DIR}
          bash ${PROJECT_SOURCE_DIR}/tests/cli/test_explain.sh)
set_tests_properties(explain_end_to_end PROPERTIES TIMEOUT 300)

# Cross-check exact flow against networkx (an independent implementation), when available.
find_program(DEBIAN_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(DEBIAN_PYTHON)
  # attnlens' attention gradients vs PyTorch autograd and finite differences, on the bundled model.
  add_test(NAME gradients_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/gradients_vs_pytorch.py $<TARGET_FILE:attnlens>
            ${PROJECT_SOURCE_DIR})
  set_tests_properties(gradients_vs_pytorch PROPERTIES TIMEOUT 300)
  # grad-sam, agcam, bi-attn, bi-attn-token, atman, attnlrp and cp-lrp against PyTorch implementations written from
  # the spec (autograd with the modified backward rules), on the bundled model.
  add_test(NAME relevance_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/relevance_vs_pytorch.py $<TARGET_FILE:attnlens>
            ${PROJECT_SOURCE_DIR})
  set_tests_properties(relevance_vs_pytorch PROPERTIES TIMEOUT 300)
  # The same methods on text (BERT, DistilBERT, the bundled sentiment BERT), against PyTorch written from the spec.
  add_test(NAME text_relevance_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/text_relevance_vs_pytorch.py $<TARGET_FILE:attnlens>
            ${PROJECT_SOURCE_DIR})
  set_tests_properties(text_relevance_vs_pytorch PROPERTIES TIMEOUT 300)
  # chefer-lrp's closed-form rules against the autograd z-rules of the reference (spec 15.2), every variant, on the
  # bundled model, a random ViT and a random DeiT III.
  add_test(NAME chefer_lrp_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/chefer_lrp_vs_pytorch.py $<TARGET_FILE:attnlens>
            ${PROJECT_SOURCE_DIR})
  set_tests_properties(chefer_lrp_vs_pytorch PROPERTIES TIMEOUT 300)
  # chefer-lrp on text (spec 15.7): the BERT reference's rules as autograd z-rules, on a random BERT, the bundled
  # sentiment-bert and a random DistilBERT.
  add_test(NAME chefer_lrp_text_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/chefer_lrp_text_vs_pytorch.py $<TARGET_FILE:attnlens>
            ${PROJECT_SOURCE_DIR})
  set_tests_properties(chefer_lrp_text_vs_pytorch PROPERTIES TIMEOUT 300)
  add_test(NAME flow_vs_networkx
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/flow_vs_networkx.py $<TARGET_FILE:attnlens>)
  set_tests_properties(flow_vs_networkx PROPERTIES TIMEOUT 300)
  # The LibTorch ViT against torchvision's VisionTransformer (random weights; timm, HF and DINO names; distilled).
  add_test(NAME vit_vs_torchvision
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/vit_vs_torchvision.py $<TARGET_FILE:attnlens>)
  set_tests_properties(vit_vs_torchvision PROPERTIES TIMEOUT 300)
  # The LibTorch BERT against torch.nn.TransformerEncoderLayer; AttAttr, blank-out and input x gradient vs autograd.
  add_test(NAME bert_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/bert_vs_pytorch.py $<TARGET_FILE:attnlens>)
  set_tests_properties(bert_vs_pytorch PROPERTIES TIMEOUT 300)
  # The C++ WordPiece tokenizer against tools/wordpiece.py on all 3,003 review sentences (fetched by the set-up).
  add_test(NAME tokenizer_vs_python
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/tokenizer_vs_python.py $<TARGET_FILE:attnlens>)
  # A few steps of the text model's training tool; its outputs are complete and self-consistent.
  add_test(NAME train_sentiment_smoke
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/train_sentiment_smoke.py)
  set_tests_properties(tokenizer_vs_python train_sentiment_smoke PROPERTIES TIMEOUT 300)
  # The byte-level BPE tokenizers (RoBERTa, CLIP) against transformers.js (npm, pinned; installed by
  # tools/fetch_tokenizers_js.sh, skipped when npm is unreachable) and transcriptions of the Python references.
  add_test(NAME bpe_vs_transformers_js
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/bpe_vs_transformers_js.py $<TARGET_FILE:attnlens>)
  set_tests_properties(bpe_vs_transformers_js PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
  # DistilBERT and RoBERTa against independent PyTorch implementations (random weights, small and DistilBERT-base
  # shapes; attention gradients), the text commands on them, and bad checkpoints.
  add_test(NAME text_families_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/text_families_vs_pytorch.py $<TARGET_FILE:attnlens>)
  set_tests_properties(text_families_vs_pytorch PROPERTIES TIMEOUT 300)
  # DINOv2 (hub, timm and Hugging Face names; 0 and 4 registers; SwiGLU; position resampling per source), DeiT III
  # and CLIP (open_clip and Hugging Face names, zero-shot over prompts) against independent torch.nn implementations
  # written from MODELS.md, then every image command on small random checkpoints of each and their bad-input errors.
  foreach(family dinov2 deit3 clip)
    add_test(NAME ${family}_vs_pytorch
      COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/${family}_vs_pytorch.py $<TARGET_FILE:attnlens>)
    set_tests_properties(${family}_vs_pytorch PROPERTIES TIMEOUT 300)
  endforeach()
  add_test(NAME image_families_cli
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/image_families_cli.py $<TARGET_FILE:attnlens>)
  set_tests_properties(image_families_cli PROPERTIES TIMEOUT 300)
  # The text commands on the bundled sentiment BERT: reference logits, every method, tree, prune, triggers,
  # attack words, and bad input.
  add_test(NAME cli_text
    COMMAND ${CMAKE_COMMAND} -E env ATTNLENS=$<TARGET_FILE:attnlens> ATTNLENS_SOURCE=${PROJECT_SOURCE_DIR}
            bash ${PROJECT_SOURCE_DIR}/tests/cli/test_text.sh)
  set_tests_properties(cli_text PROPERTIES TIMEOUT 300)
  # evaluate and attack fgsm end to end (resume, bad input), and both reports rendered in headless Chromium.
  add_test(NAME cli_evaluate
    COMMAND ${CMAKE_COMMAND} -E env ATTNLENS=$<TARGET_FILE:attnlens> ATTNLENS_SOURCE=${PROJECT_SOURCE_DIR}
            PYTHON=${DEBIAN_PYTHON} bash ${PROJECT_SOURCE_DIR}/tests/cli/test_evaluate.sh)
  set_tests_properties(cli_evaluate PROPERTIES TIMEOUT 600)
  # evaluate over MPI ranks (mpirun -np 2, 3), as shards with merge, and resumed after a killed rank: exactly one
  # process's outputs.
  add_test(NAME large_evaluations
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cli/large_evaluations.py $<TARGET_FILE:attnlens>)
  set_tests_properties(large_evaluations PROPERTIES TIMEOUT 600)
  # Every metric of evaluate's random-baseline row recomputed with PyTorch, scipy and numpy.
  add_test(NAME evaluate_vs_pytorch
    COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tests/cross/evaluate_vs_pytorch.py $<TARGET_FILE:attnlens>
            ${PROJECT_SOURCE_DIR})
  set_tests_properties(evaluate_vs_pytorch PROPERTIES TIMEOUT 300)
  # Bad models, configs, images and options for predict/capture: exit 2, one error line, no output file.
  add_test(NAME cli_model_errors
    COMMAND ${CMAKE_COMMAND} -E env ATTNLENS=$<TARGET_FILE:attnlens> PYTHON=${DEBIAN_PYTHON}
            bash ${PROJECT_SOURCE_DIR}/tests/cli/test_model_errors.sh)
  set_tests_properties(cli_model_errors PROPERTIES TIMEOUT 300)
endif()


# The installed package: relocatable prefix, every public header alone, the three examples/cpp consumer projects
# built with find_package(attnlens) and checked against the CLI, and the build tree as a package.
add_test(NAME install_and_examples
  COMMAND ${CMAKE_COMMAND} -E env BUILD=${CMAKE_BINARY_DIR} SOURCE=${PROJECT_SOURCE_DIR} PYTHON=${DEBIAN_PYTHON}
          bash ${PROJECT_SOURCE_DIR}/tests/install/test_install.sh)
set_tests_properties(install_and_examples PROPERTIES TIMEOUT 900)

# Every public header in its installable form: relative project includes, declarations inside ATTNLENS_API_BEGIN/END.
get_property(ATTNLENS_HEADERS GLOBAL PROPERTY ATTNLENS_PUBLIC_HEADERS)
add_test(NAME public_headers_form
  COMMAND ${DEBIAN_PYTHON} ${PROJECT_SOURCE_DIR}/tools/public_headers.py --check ${ATTNLENS_HEADERS}
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})

# ctest -j starts the tests of highest COST first. A fresh clone has no timing history (Testing/Temporary/
# CTestCostData.txt), so without these the longest test, install_and_examples (about 5 minutes on 2 cores), would
# start last, in test order, and run alone at the end. Costs: seconds measured on 2 cores (2026-12-03).
set_tests_properties(install_and_examples PROPERTIES COST 300)
if(DEBIAN_PYTHON)
  set_tests_properties(large_evaluations PROPERTIES COST 60)
  set_tests_properties(cli_model_errors PROPERTIES COST 48)
  set_tests_properties(cli_evaluate PROPERTIES COST 41)
  set_tests_properties(image_families_cli PROPERTIES COST 34)
  set_tests_properties(text_families_vs_pytorch PROPERTIES COST 31)
  set_tests_properties(cli_text PROPERTIES COST 26)
  set_tests_properties(chefer_lrp_vs_pytorch PROPERTIES COST 20)
  set_tests_properties(relevance_vs_pytorch PROPERTIES COST 18)
  set_tests_properties(vit_vs_torchvision PROPERTIES COST 18)
endif()
