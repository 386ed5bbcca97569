#include "io/system.hpp"

#include <algorithm>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <fstream>
#include <sstream>
#include <thread>

namespace attnlens {

int free_cores(const std::string& loadavg, int cores) {
  cores = std::max(1, cores);
  std::istringstream in(loadavg);
  double one = 0, five = 0, fifteen = 0;
  std::string running_total;
  if (!(in >> one >> five >> fifteen >> running_total)) return cores;
  const auto slash = running_total.find('/');
  if (slash == std::string::npos || slash == 0 || slash > 6) return cores;
  int running = 0;
  for (std::size_t i = 0; i < slash; ++i) {
    if (running_total[i] < '0' || running_total[i] > '9') return cores;
    running = running * 10 + (running_total[i] - '0');
  }
  if (running < 1) return cores;
  return std::clamp(cores - (running - 1), 1, cores);
}

int free_cores() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::ifstream file("/proc/loadavg");
  std::stringstream text;
  text << file.rdbuf();
  return file ? free_cores(text.str(), cores) : cores;
}

bool keep_freed_memory() {
#if defined(__GLIBC__)
  // Setting the thresholds explicitly also turns off glibc's dynamic mmap threshold.
  return mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 256 << 20) == 1;
#else
  return false;
#endif
}

}  // namespace attnlens
