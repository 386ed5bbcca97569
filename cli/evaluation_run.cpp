#include "cli/evaluation_run.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <optional>

#include "cli/common.hpp"
#include "cli/processes.hpp"
#include "cli/run_app.hpp"
#include "eval/evaluation_report.hpp"
#include "eval/evaluation_table.hpp"
#include "eval/run_parts.hpp"
#include "io/atomic_file.hpp"

namespace attnlens::cli {

namespace {

namespace fs = std::filesystem;

std::string joined(const nlohmann::json& list) {
  std::string s;
  for (const auto& x : list) s += (s.empty() ? "" : ",") + x.get<std::string>();
  return s;
}

// summary.json's aggregate part: mean, std and count of every metric per row, the mean curves, the Spearman matrix.
nlohmann::json summary_rows_json(const EvaluationSummary& summary) {
  nlohmann::json rows = nlohmann::json::array();
  for (const RowSummary& r : summary.rows) {
    nlohmann::json row{{"method", r.method}};
    for (const auto& [name, m] : r.scalars) {
      if (m.count == 0) continue;
      row[name] = {{"mean", m.mean}, {"std", m.std}, {"count", m.count}};
    }
    row["deletion_curve"] = r.deletion_curve;
    row["insertion_curve"] = r.insertion_curve;
    row["positive_accuracy"] = r.positive_accuracy;
    row["negative_accuracy"] = r.negative_accuracy;
    row["spearman_vs"] = nlohmann::json::object();
    for (std::size_t j = 0; j < r.spearman_vs.size(); ++j) row["spearman_vs"][summary.row_names[j]] = r.spearman_vs[j];
    rows.push_back(row);
  }
  return rows;
}

// The report's settings box, from the identity alone (a merge has no model loaded).
std::string settings_text(const RunIdentity& id, std::size_t items) {
  const bool text = id.at("kind") == "text";
  std::string s = "model: " + id.at("model").get<std::string>() + "\ndata: " + id.at("data").get<std::string>();
  if (text) {
    s += ", " + id.at("split").get<std::string>() + " split (" + std::to_string(items) + " texts)";
  } else {
    s += " (" + std::to_string(items) + " images" + (id.at("shuffle").get<bool>() ? ", shuffled" : "") + ")";
  }
  s += "\nmethods: " + joined(id.at("methods")) + "\nbaselines: " + joined(id.at("baselines"));
  if (text) {
    s += "\nword attack: k = 0.." + std::to_string(id.at("word_attack_k").get<int>());
  } else {
    s += "\nmetrics: " + id.at("metrics").get<std::string>();
  }
  return s;
}

void print_summary(const EvaluationSummary& summary, bool text, const fs::path& out) {
  std::cout << "evaluated " << summary.images << " " << summary.unit << "(s); mean over " << summary.unit << "s:\n";
  const auto v = [](const RowSummary& r, const char* k) {
    const MeanStd& m = r.scalars.at(k);
    return m.count ? m.mean : NAN;
  };
  if (text) {
    std::printf("%-16s %10s %10s %10s %10s %10s %10s\n", "method", "rho-blank", "top-20%", "deletion", "insertion",
                "saco", "attack");
    for (const RowSummary& r : summary.rows)
      std::printf("%-16s %10.3f %10.3f %10.3f %10.3f %10.3f %10.3f\n", r.method.c_str(), v(r, "spearman_blankout"),
                  v(r, "top_overlap_blankout"), v(r, "deletion_auc"), v(r, "insertion_auc"), v(r, "saco"),
                  v(r, "word_attack_auc"));
  } else {
    std::printf("%-14s %10s %10s %10s %10s %10s %10s\n", "method", "rho-blank", "top-10%", "deletion", "insertion",
                "pointing", "ms");
    for (const RowSummary& r : summary.rows)
      std::printf("%-14s %10.3f %10.3f %10.3f %10.3f %10.3f %10.2f\n", r.method.c_str(), v(r, "spearman_blankout"),
                  v(r, "top_overlap_blankout"), v(r, "deletion_auc"), v(r, "insertion_auc"), v(r, "pointing_hit"),
                  v(r, "milliseconds"));
  }
  std::cout << "outputs written to " << out.string() << " (open report.html)" << std::endl;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Joins every part of the run in `out` into OUT/<table>, summary.*, report.html and run.json; the items must all be
// there. `threads`: this process's LibTorch threads when it evaluated items itself.
void merge_parts(const fs::path& out, const RunIdentity& id, std::optional<int> threads, bool quiet) {
  const std::string table = id.at("table").get<std::string>();
  const std::vector<std::string> rows = id.at("rows").get<std::vector<std::string>>();
  const std::size_t items = id.at("items").get<std::size_t>();
  const std::vector<RunPart> parts = find_run_parts(out.string(), table);
  RunRows found = read_run_parts(parts, table, id.dump(), rows, items);
  if (!found.missing.empty())
    throw InputError("cannot merge " + out.string() + ": " +
                     missing_items_message(found.missing, items, parts, out.string()) +
                     "; run the missing shards, or the run again with --resume");
  const bool text = id.at("kind") == "text";
  EvaluationSummary summary = summarise(found.items, rows);
  summary.unit = text ? "text" : "image";
  std::string csv = evaluation_csv_header(rows);
  for (const ImageScores& s : found.items) csv += evaluation_csv_rows(s);
  std::vector<std::string> dirs;
  for (const RunPart& p : parts) dirs.push_back(p.dir);
  if (std::find(dirs.begin(), dirs.end(), out.string()) == dirs.end()) dirs.insert(dirs.begin(), out.string());
  const std::vector<GalleryEntry> gallery =
      text ? std::vector<GalleryEntry>{} : load_gallery(dirs, id.at("gallery").get<std::size_t>());

  nlohmann::json js{{"run", id}, {text ? "texts" : "images", summary.images}, {"rows", summary_rows_json(summary)}};
  if (threads) js["threads"] = *threads;  // what --threads (default: the free cores) gave LibTorch
  std::size_t shards = 0;
  for (const RunPart& p : parts) shards += p.share ? 1 : 0;
  js["parts"] = shards == 0 ? 1 : shards;  // the processes (shards, ranks) whose rows were merged
  js["accuracy"] = std::isfinite(summary.accuracy) ? nlohmann::json(summary.accuracy) : nlohmann::json();
  js["curve_fractions"] = curve_fractions();
  if (!text) js["perturbation_fractions"] = perturbation_fractions();
  const std::string settings = settings_text(id, summary.images);
  // Gallery pictures saved in the shards are kept where they are; OUT's own gallery/ is what a single process saved.
  write_file_atomic((out / "run.json").string(), id.dump(2));
  write_file_atomic((out / table).string(), csv);
  write_file_atomic((out / "summary.csv").string(), summary_csv(summary));
  write_file_atomic((out / "summary.json").string(), js.dump(2));
  write_file_atomic((out / "report.html").string(), evaluation_report_html(summary, settings, gallery));
  if (!quiet) print_summary(summary, text, out);
}

// The identity of the run in `out`: OUT/run.json, else the first shard's.
RunIdentity identity_of(const fs::path& out) {
  std::vector<fs::path> candidates{out / "run.json"};
  for (const RunPart& p : find_run_parts(out.string(), "per_image.csv"))
    if (p.share) candidates.push_back(fs::path(p.dir) / "run.json");
  for (const fs::path& file : candidates) {
    if (!fs::exists(file)) continue;
    try {
      RunIdentity id = nlohmann::json::parse(read_text(file));
      (void)id.at("table"), (void)id.at("rows"), (void)id.at("items"), (void)id.at("kind");
      return id;
    } catch (const std::exception&) {
      throw InputError(file.string() + ": not the run.json of an attnlens evaluation");
    }
  }
  throw InputError(out.string() + ": no evaluation here (no run.json, and no shard-K-of-N folder with one)");
}

// Removes the parts an earlier run left in `out`, so that a fresh run does not merge them.
void clear_parts(const fs::path& out, const std::string& table) {
  for (const RunPart& p : find_run_parts(out.string(), table))
    if (p.share) fs::remove_all(p.dir);
  fs::remove(out / table);
  fs::remove_all(out / "gallery");
}

}  // namespace

void run_evaluation_items(const EvaluationRunOptions& o, const RunIdentity& id, const ItemFunction& compute) {
  Processes& job = Processes::job();
  const std::optional<WorkShare> shard = o.shard.empty() ? std::nullopt : std::optional(WorkShare::parse(o.shard));
  if (shard && job.distributed())
    throw InputError("--shard is for job arrays; under mpirun/srun the ranks share the run among themselves");
  const WorkShare share = shard ? *shard : WorkShare{job.rank(), job.size()};
  const bool split = shard.has_value() || job.distributed();
  const fs::path out = o.output;
  const fs::path part = split ? out / share.folder() : out;
  const std::string table = id.at("table").get<std::string>();
  const std::vector<std::string> rows = id.at("rows").get<std::vector<std::string>>();
  const std::size_t items = id.at("items").get<std::size_t>();

  // Rank 0 (or the one process) prepares the folder: a fresh run first clears an earlier run's parts; a shard
  // clears its own folder only, as the others may be running.
  std::string ready;
  if (job.rank() == 0) {
    try {
      if (shard) check_run_identities(find_run_parts(out.string(), table), id.dump());
      if (!o.resume) {
        if (shard) {
          fs::remove_all(part);
        } else {
          clear_parts(out, table);
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
    const fs::path run_file = part / "run.json", part_table = part / table;
    fs::create_directories(part);
    std::vector<char> finished(items, 0);
    if (o.resume && fs::exists(run_file) && nlohmann::json::parse(read_text(run_file), nullptr, false) != id)
      throw InputError("--resume: " + run_file.string() + " describes another run (" + read_text(run_file) +
                       "); use the same options or another -o");
    // What is done already (--resume): the items of any part, whatever the share count was.
    if (o.resume)
      for (const ImageScores& s : read_run_parts(find_run_parts(out.string(), table), table, id.dump(), rows, items).items)
        finished[s.index] = 1;
    write_file_atomic(run_file.string(), id.dump(2));
    if (o.resume && fs::exists(part_table)) {
      std::size_t complete = 0;
      read_evaluation_csv(part_table.string(), rows, &complete);
      fs::resize_file(part_table, complete);  // drop a block cut short by the interruption
    } else {
      write_file_atomic(part_table.string(), evaluation_csv_header(rows));
    }
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < items; ++i)
      if (share.owns(i) && !finished[i]) todo.push_back(i);

    std::ofstream append(part_table, std::ios::app | std::ios::binary);
    if (!append) throw InputError(part_table.string() + ": cannot append");
    // The bar counts this run's items only, so its rate and ETA stay right after --resume.
    const std::string unit = id.at("kind") == "text" ? "texts" : "images";
    ProgressBar bar(split ? "evaluate " + std::to_string(share.index + 1) + "/" + std::to_string(share.count)
                          : std::string("evaluate"),
                    unit, !o.quiet);
    for (std::size_t i : todo) {
      append << evaluation_csv_rows(compute(i, part.string()));
      append.flush();  // an interrupted run keeps every finished item
      if (!append) throw InputError(part_table.string() + ": write failed");
      bar.update(static_cast<long long>(++computed), static_cast<long long>(todo.size()));
    }
    bar.finish();
  } catch (...) {
    if (!job.distributed()) throw;
    failure = std::current_exception();
  }

  if (job.distributed()) {
    std::string mine;
    if (failure) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        mine = e.what();
      } catch (...) {
        mine = "unknown error";
      }
    }
    const std::vector<std::string> outcomes = job.gather_outcomes(mine);
    if (failure) std::rethrow_exception(failure);
    if (job.rank() != 0) return;
    std::string failed;
    for (std::size_t r = 0; r < outcomes.size(); ++r)
      if (!outcomes[r].empty())
        failed += (failed.empty() ? "" : "; ") + std::string("rank ") + std::to_string(r) + " failed: " + outcomes[r];
    if (!failed.empty()) {
      const std::vector<RunPart> parts = find_run_parts(out.string(), table);
      const RunRows have = read_run_parts(parts, table, id.dump(), rows, items);
      throw InputError(failed + "; " + missing_items_message(have.missing, items, parts, out.string()) +
                       "; the finished items are in " + out.string() + ": run again with --resume");
    }
    merge_parts(out, id, torch::get_num_threads(), o.quiet);
    return;
  }
  if (shard) {
    // The last shard to finish merges; until then the run is incomplete, which is no error here.
    const std::vector<RunPart> parts = find_run_parts(out.string(), table);
    const RunRows have = read_run_parts(parts, table, id.dump(), rows, items);
    if (have.missing.empty()) {
      merge_parts(out, id, std::nullopt, o.quiet);
    } else if (!o.quiet) {
      std::cout << "shard " << share.label() << ": " << computed << " item(s) written to " << part.string() << "; "
                << have.missing.size() << " of " << items
                << " items are in other shards still: when all are done, attnlens merge " << out.string()
                << std::endl;
    }
    return;
  }
  merge_parts(out, id, torch::get_num_threads(), o.quiet);
}

void merge_evaluation(const std::string& out, bool quiet) { merge_parts(out, identity_of(out), std::nullopt, quiet); }

void add_merge_command(CLI::App& app, Action& action) {
  struct State {
    std::string out;
    bool quiet = false;
  };
  auto st = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "merge",
      "Joins the shards of an evaluation (runs of `attnlens evaluate --shard K/N -o OUT`, images or --text) into "
      "OUT/per_image.csv (per_text.csv), summary.csv, summary.json and report.html, equal to what one process "
      "writes. Refuses, naming them, shards that are missing or incomplete and shards of another run");
  cmd->add_option("OUT", st->out, "The output folder the shards were written into")->required();
  cmd->add_flag("-q,--quiet", st->quiet, "No summary on the terminal");
  cmd->callback([st, &action] { action = [st] { merge_evaluation(st->out, st->quiet); }; });
}

}  // namespace attnlens::cli
