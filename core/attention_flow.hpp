// Attention flow (Abnar & Zuidema 2020, spec 3.1) and the input-to-output variant of Metzger et al. 2022 (spec 3.2).
#pragma once

#include <atomic>
#include <functional>
#include <stdexcept>

#include "api.hpp"
#include "array.hpp"
#include "fusion.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Called with (finished, total) work items; may be empty.
using ProgressFn = std::function<void(long long done, long long total)>;

/// Set (from any thread) to ask a long computation to stop early; it then throws Cancelled.
using CancelFlag = std::atomic<bool>;
/// What a computation throws when its CancelFlag was set. Not an InputError: nothing was wrong with the input.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

/// Edge capacities of the flow graph: head mean, then `residual` (spec 3.1) -> [L,N,N].
Array flow_capacities(const AttentionView& attention, Residual residual);

/// [N]: maximum flow from node (layer, token) (layer in 1..L) to every input token; raw values, not normalised.
Array attention_flow_from(const Array& capacities, int layer, int token);

/// [L,N,N]: out[l-1][q][k] = maximum flow from node (l, q) to input token k, for every layer l = 1..L.
/// Sources are spread over `threads` threads (0 = all cores). `cancel` (may be null) is read before each source.
Array attention_flow_all(const Array& capacities, int threads = 1, const ProgressFn& progress = {},
                         const CancelFlag* cancel = nullptr);

enum class MetzgerForm {
  PerToken,  ///< per input token k: max flow from (0,k) up to the output node
  Shapley,   ///< one max flow from all input tokens at once; the flow leaving each token
};

/// Metzger et al. (unverified against their code, spec 3.2): edges point up from (l-1,k) to (l,q) with capacity
/// C[l-1][q][k]; the sink is node (L, output_token). [N] scores.
Array metzger_flow(const Array& capacities, int output_token, MetzgerForm form);

}  // namespace attnlens
ATTNLENS_API_END
