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

/// Makes glibc's malloc keep freed memory for the next allocation instead of returning it to the kernel. A model's
/// forward pass allocates and frees the same few MB-sized tensors every layer; by default glibc unmaps or trims
/// them after each free, and touching fresh pages again cost 8-10% of a DINOv2-S/14 forward on one thread
/// (bench/run_family_bench.py). Sets M_MMAP_THRESHOLD to 32 MB and M_TRIM_THRESHOLD to 256 MB: memory is held up to
/// the process's peak, which an explanation run reaches anyway. A process-wide setting, so executables call it
/// (the CLI before its model commands), not the library. No effect without glibc. Returns whether it was applied.
bool keep_freed_memory();

/// The same from the text of /proc/loadavg and a core count (testable): e.g. "0.52 0.40 0.31 3/412 9876" on 2 cores
/// gives 1 (two other runnable tasks would need both cores). Malformed text gives `cores`.
int free_cores(const std::string& loadavg, int cores);

}  // namespace attnlens
ATTNLENS_API_END
