// The processes of one attnlens job: this process alone, or the ranks of an MPI job when attnlens was built with MPI
// (ATTNLENS_MPI) and started by a launcher (mpirun, mpiexec, srun). The ranks share the work by the item index
// (io/run_parts.hpp) and meet only twice: after rank 0 has prepared the output folder, and at the end, when rank 0
// learns how every rank fared and merges their parts. Rows travel through the output folder, which every rank must
// see (a cluster's shared file system), so a rank that dies loses only its unfinished items.
#pragma once

#include <string>
#include <vector>

namespace attnlens::cli {

class Processes {
 public:
  /// The job this process belongs to; MPI is initialised on first use when a launcher started the process.
  /// InputError when a launcher started several processes but this build has no MPI (each would do the whole run).
  static Processes& job();

  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Ranks on this node (to share its cores), 1 without MPI.
  int local_size() const { return local_size_; }
  bool distributed() const { return size_ > 1; }

  /// Rank 0's verdict to every rank: rank 0 passes "" when it is ready, or its error; the others receive it.
  std::string broadcast_from_root(const std::string& message) const;
  /// Every rank's outcome ("" = success, else its error) at rank 0, by rank; an empty vector elsewhere.
  std::vector<std::string> gather_outcomes(const std::string& mine) const;

  ~Processes();
  Processes(const Processes&) = delete;
  Processes& operator=(const Processes&) = delete;

 private:
  Processes();
  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool initialised_ = false;
};

/// Default LibTorch threads of one rank: the node's cores shared among its ranks, at least 1 (0 without MPI: let
/// set_threads pick the free cores).
int default_threads_per_rank(const Processes& job);

}  // namespace attnlens::cli
