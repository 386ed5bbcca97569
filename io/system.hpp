// What the machine offers right now: how many cores are not busy with other work, so that thread pools on shared
// machines (another user's job, MPI ranks on one node, tests run in parallel) do not oversubscribe the cores.
#pragma once

#include <string>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Cores not busy with other work: the online cores minus the other runnable tasks in /proc/loadavg's fourth field
/// ("runnable/total", this process included), at least 1; all cores when /proc/loadavg cannot be read.
int free_cores();

/// The same from the text of /proc/loadavg and a core count (testable): e.g. "0.52 0.40 0.31 3/412 9876" on 2 cores
/// gives 1 (two other runnable tasks would need both cores). Malformed text gives `cores`.
int free_cores(const std::string& loadavg, int cores);

}  // namespace attnlens
ATTNLENS_API_END
