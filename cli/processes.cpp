#include "cli/processes.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "core/array.hpp"

#ifdef ATTNLENS_WITH_MPI
#include <dlfcn.h>
#include <mpi.h>
#endif

namespace attnlens::cli {

namespace {

[[maybe_unused]] int env_int(const char* name) {  // read only by the build without MPI
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : 0;
}

// Set by the launchers in each process they start: Open MPI's mpirun, PMIx (srun --mpi=pmix), PMI (MPICH, srun).
bool started_by_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
         std::getenv("PMI_RANK") != nullptr || std::getenv("PMI_SIZE") != nullptr;
}

#ifdef ATTNLENS_WITH_MPI
void check(int code, const char* what) {
  if (code != MPI_SUCCESS) throw std::runtime_error(std::string("MPI: ") + what + " failed");
}
#endif

}  // namespace

Processes& Processes::job() {
  static Processes processes;
  return processes;
}

Processes::Processes() {
  if (!started_by_launcher()) return;
#ifdef ATTNLENS_WITH_MPI
  // The model commands are a plugin loaded with RTLD_LOCAL; Open MPI's own components, loaded by MPI_Init, look
  // for libmpi's symbols globally, so libmpi is promoted to global first.
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init), &info) != 0 && info.dli_fname != nullptr)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  int already = 0;
  MPI_Initialized(&already);
  if (already == 0) {
    check(MPI_Init(nullptr, nullptr), "MPI_Init");
    initialised_ = true;
  }
  check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  MPI_Comm node;
  check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
  MPI_Comm_free(&node);
#else
  const int n = std::max(env_int("OMPI_COMM_WORLD_SIZE"), env_int("PMI_SIZE"));
  if (n > 1)
    throw InputError("started by an MPI launcher as one of " + std::to_string(n) +
                     " processes, but this attnlens was built without MPI (see attnlens --version), so each would "
                     "do the whole run: rebuild with libopenmpi-dev installed, or run shares with --shard K/N");
#endif
}

Processes::~Processes() {
#ifdef ATTNLENS_WITH_MPI
  if (initialised_) MPI_Finalize();
#endif
}

std::string Processes::broadcast_from_root(const std::string& message) const {
  if (!distributed()) return message;
#ifdef ATTNLENS_WITH_MPI
  int length = static_cast<int>(message.size());
  check(MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = rank_ == 0 ? message : std::string(static_cast<std::size_t>(length), '\0');
  if (length > 0) check(MPI_Bcast(out.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
#else
  return message;
#endif
}

std::vector<std::string> Processes::gather_outcomes(const std::string& mine) const {
  if (!distributed()) return {mine};
#ifdef ATTNLENS_WITH_MPI
  const int length = static_cast<int>(mine.size());
  std::vector<int> lengths(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
  check(MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<int> offsets(lengths.size(), 0);
  int total = 0;
  for (std::size_t r = 0; r < lengths.size(); ++r) offsets[r] = total, total += lengths[r];
  std::string all(static_cast<std::size_t>(total), '\0');
  check(MPI_Gatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  for (std::size_t r = 0; r < lengths.size(); ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(lengths[r])));
  return out;
#else
  return {mine};
#endif
}

int default_threads_per_rank(const Processes& job) {
  if (!job.distributed()) return 0;
  // The node's cores shared among its ranks, and no more than this rank may run on (a launcher that binds each rank
  // to a core leaves it one).
  const int node_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int allowed = node_cores;
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = CPU_COUNT(&set);
  return std::max(1, std::min(allowed, node_cores / job.local_size()));
}

}  // namespace attnlens::cli
