#include "cli/item_run.hpp"

#include <torch/torch.h>

#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "cli/common.hpp"
#include "cli/processes.hpp"
#include "cli/run_app.hpp"
#include "io/atomic_file.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;

std::map<std::string, RunFinisher>& finishers() {
  static std::map<std::string, RunFinisher> f;
  return f;
}

// Joins the rows already read from the parts into OUT/<table>, run.json and the finisher's outputs; the items must
// all be there. Returns the merged table.
std::string finish(const fs::path& out, const RunIdentity& id, const std::vector<RunPart>& parts, const RunRows& rows,
            std::optional<int> threads, bool quiet) {
  const RunTable table = run_table_of(id);
  if (!rows.missing.empty())
    throw InputError("cannot merge " + out.string() + ": " +
                     missing_items_message(rows.missing, table, parts, out.string()) +
                     "; run the missing shards, or the run again with --resume");
  const std::string kind = id.at("kind").get<std::string>();
  const auto finisher = finishers().find(kind);
  if (finisher == finishers().end()) throw InputError(out.string() + ": a run of unknown kind '" + kind + "'");
  std::vector<std::string> dirs{out.string()};
  for (const RunPart& p : parts)
    if (p.dir != out.string()) dirs.push_back(p.dir);
  const std::string text = rows.table_text(table);
  RunOutputs outputs = finisher->second(out.string(), id, text, dirs, threads);
  write_file_atomic((out / "run.json").string(), id.dump(2));
  write_file_atomic((out / table.name).string(), text);
  for (const auto& [path, content] : outputs.files) write_file_atomic(path, content);
  if (!quiet) std::cout << outputs.terminal << std::flush;
  return text;
}

// The shard folders of `out` (shard-K-of-N), whatever they hold.
std::vector<fs::path> shard_folders(const fs::path& out) {
  std::vector<fs::path> dirs;
  for (const RunPart& p : find_run_parts(out.string(), "run.json"))
    if (p.share) dirs.push_back(p.dir);
  return dirs;
}

// The identity of the run in `out`: OUT/run.json, else the first shard's.
RunIdentity identity_of(const fs::path& out) {
  std::vector<fs::path> candidates{out / "run.json"};
  for (const fs::path& dir : shard_folders(out)) candidates.push_back(dir / "run.json");
  for (const fs::path& file : candidates) {
    if (!fs::exists(file)) continue;
    try {
      RunIdentity id = nlohmann::json::parse(read_file(file.string()));
      (void)run_table_of(id), (void)id.at("kind").get<std::string>();
      return id;
    } catch (const std::exception&) {
      throw InputError(file.string() + ": not the run.json of an attnlens run");
    }
  }
  throw InputError(out.string() + ": no run here (no run.json, and no shard-K-of-N folder with one)");
}

// Removes what an earlier run left in `out` (its shards, its table, the folders its kind saves), so that a fresh run
// does not merge them.
void clear_parts(const fs::path& out, const RunIdentity& id, const std::string& table) {
  for (const fs::path& dir : shard_folders(out)) fs::remove_all(dir);
  fs::remove(out / table);
  for (const auto& folder : id.value("saved_folders", nlohmann::json::array())) {
    const fs::path name = folder.get<std::string>();
    if (name.empty() || name.is_absolute() || name.has_parent_path() || name == "." || name == "..")
      throw std::logic_error("saved_folders names folders directly in the part");
    fs::remove_all(out / name);
  }
}

std::string error_text(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

nlohmann::json run_table_json(const RunTable& t) {
  return {{"name", t.name}, {"header", t.header}, {"rows_per_item", t.rows_per_item}, {"items", t.items},
          {"unit", t.unit}};
}

RunTable run_table_of(const RunIdentity& id) {
  try {
    const nlohmann::json& j = id.at("table");
    RunTable t{j.at("name").get<std::string>(), j.at("header").get<std::string>(),
               j.at("rows_per_item").get<std::size_t>(), j.at("items").get<std::size_t>(),
               j.at("unit").get<std::size_t>()};
    if (t.name.empty() || t.name.find('/') != std::string::npos || t.rows_per_item == 0 || t.unit == 0 ||
        t.header.empty() || t.header.back() != '\n')
      throw InputError("malformed table");
    return t;
  } catch (const std::exception&) {
    throw InputError("run.json: no well-formed \"table\" (name, header, rows_per_item, items, unit)");
  }
}

void register_run_kind(const std::string& kind, RunFinisher finisher) { finishers()[kind] = std::move(finisher); }

std::optional<std::string> run_items(const ItemRunOptions& o, const RunIdentity& id, const UnitFunction& compute) {
  Processes& job = Processes::job();
  const std::optional<WorkShare> shard = o.shard.empty() ? std::nullopt : std::optional(WorkShare::parse(o.shard));
  if (shard && job.distributed())
    throw InputError("--shard is for job arrays; under mpirun/srun the ranks share the run among themselves");
  const WorkShare share = shard ? *shard : WorkShare{job.rank(), job.size()};
  const bool split = shard.has_value() || job.distributed();
  const fs::path out = o.output;
  const fs::path part = split ? out / share.folder() : out;
  const RunTable table = run_table_of(id);
  const std::string identity = id.dump();

  // Rank 0 (or the one process) prepares the folder: a fresh run first clears an earlier run's parts; a shard
  // clears its own folder only, as the others may be running.
  std::string ready;
  if (job.rank() == 0) {
    try {
      if (shard) check_run_identities(find_run_parts(out.string(), table.name), identity);
      if (!o.resume) {
        if (shard) {
          fs::remove_all(part);
        } else {
          clear_parts(out, id, table.name);
        }
      }
      fs::create_directories(out);
    } catch (const std::exception& e) {
      ready = e.what();
    }
  }
  ready = job.broadcast_from_root(ready);
  if (!ready.empty()) {
    if (job.rank() == 0) throw InputError(ready);
    throw QuietExit{2};  // rank 0 says why
  }

  std::exception_ptr failure;
  std::size_t computed = 0;
  try {
    const fs::path run_file = part / "run.json", part_table = part / table.name;
    fs::create_directories(part);
    if (o.resume && fs::exists(run_file) && nlohmann::json::parse(read_file(run_file.string()), nullptr, false) != id)
      throw InputError("--resume: " + run_file.string() + " describes another run (" + read_file(run_file.string()) +
                       "); use the same options or another -o");
    // What is done already (--resume): the items of any part, whatever the share count was.
    std::vector<char> finished(table.items, 0);
    if (o.resume) {
      const RunRows have = read_run_parts(find_run_parts(out.string(), table.name), table, identity);
      for (std::size_t i = 0; i < table.items; ++i) finished[i] = have.blocks[i].empty() ? 0 : 1;
    }
    write_file_atomic(run_file.string(), id.dump(2));
    if (o.resume && fs::exists(part_table)) {
      fs::resize_file(part_table, read_table_blocks(part_table.string(), table).complete_bytes);  // drop a cut block
    } else {
      write_file_atomic(part_table.string(), table.header);
    }
    std::vector<std::size_t> todo;  // units of this share with an item still missing
    for (std::size_t u = 0; u < table.units(); ++u) {
      if (!share.owns(u)) continue;
      for (std::size_t i = u * table.unit; i < std::min(table.items, (u + 1) * table.unit); ++i)
        if (!finished[i]) {
          todo.push_back(u);
          break;
        }
    }
    std::size_t todo_items = 0;
    for (std::size_t u : todo) todo_items += std::min(table.items, (u + 1) * table.unit) - u * table.unit;

    std::ofstream append(part_table, std::ios::app | std::ios::binary);
    if (!append) throw InputError(part_table.string() + ": cannot append");
    // The bar counts this run's items only, so its rate and ETA stay right after --resume.
    const std::string command = id.value("command", std::string("run"));
    ProgressBar bar(split ? command + " " + std::to_string(share.index + 1) + "/" + std::to_string(share.count)
                          : command,
                    id.value("noun", std::string("items")), !o.quiet);
    for (std::size_t u : todo) {
      const std::size_t first = u * table.unit, count = std::min(table.items, first + table.unit) - first;
      const std::vector<std::string> blocks = compute(first, count, part.string());
      if (blocks.size() != count) throw std::logic_error("a unit returned the wrong number of item blocks");
      for (std::size_t k = 0; k < count; ++k)
        if (!finished[first + k]) append << blocks[k];  // a resumed unit writes only what no part holds
      append.flush();  // an interrupted run keeps every finished unit
      if (!append) throw InputError(part_table.string() + ": write failed");
      computed += count;
      bar.update(static_cast<long long>(computed), static_cast<long long>(todo_items));
    }
    bar.finish();
  } catch (...) {
    if (!job.distributed()) throw;
    failure = std::current_exception();
  }

  if (job.distributed()) {
    const std::vector<std::string> outcomes = job.gather_outcomes(failure ? error_text(failure) : "");
    if (failure) std::rethrow_exception(failure);
    if (job.rank() != 0) {  // every part is written now; a staged command's next stage needs the table on every rank
      if (!o.table_on_every_rank) return std::nullopt;
      const RunRows have = read_run_parts(find_run_parts(out.string(), table.name), table, identity);
      return have.missing.empty() ? std::optional(have.table_text(table)) : std::nullopt;
    }
    std::string failed;
    for (std::size_t r = 0; r < outcomes.size(); ++r)
      if (!outcomes[r].empty())
        failed += (failed.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + " failed: " + outcomes[r];
    const std::vector<RunPart> parts = find_run_parts(out.string(), table.name);
    const RunRows have = read_run_parts(parts, table, identity);
    if (!failed.empty())
      throw InputError(failed + "; " + missing_items_message(have.missing, table, parts, out.string()) +
                       "; the finished items are in " + out.string() + ": run again with --resume");
    return finish(out, id, parts, have, torch::get_num_threads(), o.quiet);
  }
  const std::vector<RunPart> parts = find_run_parts(out.string(), table.name);
  const RunRows have = read_run_parts(parts, table, identity);
  if (shard && !have.missing.empty()) {
    // The last shard to finish merges; until then the run is incomplete, which is no error here.
    if (!o.quiet)
      std::cout << "shard " << share.label() << ": " << computed << " item(s) written to " << part.string() << "; "
                << have.missing.size() << " of " << table.items
                << " items are in other shards still: when all are done, "
                << id.value("when_complete", "attnlens merge " + out.string()) << std::endl;
    return std::nullopt;
  }
  return finish(out, id, parts, have, shard ? std::nullopt : std::optional<int>(torch::get_num_threads()), o.quiet);
}

void merge_run(const std::string& out, bool quiet) {
  const RunIdentity id = identity_of(out);
  const RunTable table = run_table_of(id);
  const std::vector<RunPart> parts = find_run_parts(out, table.name);
  finish(out, id, parts, read_run_parts(parts, table, id.dump()), std::nullopt, quiet);
}

void add_run_options(CLI::App* app, int& threads, bool& resume, std::string& shard, const std::string& units,
                     const std::string& shard_note) {
  app->add_option("--threads", threads,
                  "LibTorch threads (default 0: the cores not busy with other work; under mpirun the node's cores "
                  "shared among its ranks)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--resume", resume, "Continue a stopped run in -o DIR (same options): only the missing " + units +
                                        " run, whatever number of shards or ranks computed the others");
  app->add_option("--shard", shard,
                  "K/N: compute share K of N of the " + units + " (job arrays), into DIR/shard-K-of-N; " +
                      (shard_note.empty() ? "the last shard to finish (or attnlens merge DIR) writes the merged "
                                            "outputs"
                                          : shard_note) +
                      ". Under mpirun/srun the ranks share the " + units + " themselves");
}

void add_merge_command(CLI::App& app, Action& action) {
  struct State {
    std::string out;
    bool quiet = false;
  };
  auto st = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "merge",
      "Joins the shards of a run (`attnlens evaluate`, `evaluate --text`, `attack fgsm` or `attack words` with "
      "--shard K/N -o OUT) into the tables, summaries and report.html in OUT, equal to what one process writes. "
      "Refuses, naming them, shards that are missing or incomplete and shards of another run");
  cmd->add_option("OUT", st->out, "The output folder the shards were written into")->required();
  cmd->add_flag("-q,--quiet", st->quiet, "No summary on the terminal");
  cmd->callback([st, &action] { action = [st] { merge_run(st->out, st->quiet); }; });
}

}  // namespace attnlens::cli
