// carrel-bench: storage workloads on carrel and on the alternatives one would
// otherwise pick (one SQLite file per object, raw LMDB), in one run.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

#include "bench/harness.h"
#include "tools/cli/nearest_word.h"
#include "carrel/version.h"

namespace carrel::bench {
namespace {

const std::vector<std::string> kEngines = {"carrel", "sqlite-files", "lmdb-raw", "rocksdb"};
#ifdef CARREL_BENCH_ROCKSDB
constexpr const char* kDefaultEngines = "carrel,sqlite-files,lmdb-raw,rocksdb";
#else
constexpr const char* kDefaultEngines = "carrel,sqlite-files,lmdb-raw";
#endif

// What each column of the table means: in --help and under every table.
constexpr const char* kColumnLegend =
    "Columns:\n"
    "  ops/s      operations completed per second, all clients together\n"
    "  turns/s    carrel turns run per second (the others: their operations)\n"
    "  p50us .. max_us  latency percentiles in microseconds, from issuing an operation\n"
    "             to its acknowledgement (carrel: the reply, after the commit is durable)\n"
    "  commits/s  write transactions committed per second\n"
    "  t/commit   writes per commit: the group commit's batch (lmdb-raw copies carrel's;\n"
    "             rocksdb: its write groups, one WAL write each)\n"
    "  fsyncs     fsync calls during the run (0 with --durability nosync; -: not counted)\n"
    "  B/turn     key + value bytes written per turn (carrel: history included;\n"
    "             lmdb-raw: what it put; rocksdb: its put and undo entry;\n"
    "             sqlite-files: not counted, 0)\n"
    "  ioB/turn   bytes the process passed to write(2) per turn\n"
    "  rss_MiB    peak resident memory during that engine's part of the run\n"
    "  dir_MiB    allocated size of the engine's data directory after close\n"
    "  name = N   lines below a row: workload figures (YCSB: each kind's count, p50 and p99)\n";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

void raise_fd_limit() {
  // sqlite-files keeps up to three descriptors per object (db, -wal, -shm).
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::string utc_now() {
  char b[32];
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

std::unique_ptr<Target> make_target(const std::string& engine, double carrel_tpc) {
  if (engine == "carrel") return make_carrel_target();
  if (engine == "sqlite-files") return make_sqlite_files_target();
  if (engine == "rocksdb") return make_rocksdb_target();
  return make_lmdb_raw_target(LmdbBatching{carrel_tpc > 0 ? carrel_tpc : 1});
}

Status run_generic(const Workload& w, const Params& p, std::vector<EngineResult>* results) {
  AckLog ack;
  if (!p.ack_log.empty()) CARREL_RETURN_IF_ERROR(ack.open(p.ack_log));
  double carrel_tpc = 0;
  // carrel first: lmdb-raw batches as many writes per commit as carrel did.
  std::vector<std::string> order = p.engines;
  std::stable_partition(order.begin(), order.end(),
                        [](const std::string& e) { return e == "carrel"; });
  RunSlot slot{0, static_cast<int>(order.size())};
  for (const std::string& e : order) {
    slot.index = static_cast<int>(&e - order.data());
    EngineResult r;
    r.engine = e;
    if ((e == "lmdb-raw" || e == "rocksdb") && !w.kv) {
      r.skipped = "runs KV workloads only";
      results->push_back(std::move(r));
      continue;
    }
    auto target = make_target(e, carrel_tpc);
    if (!target) {
      r.skipped = "not built: librocksdb-dev was absent when carrel-bench was built";
      results->push_back(std::move(r));
      continue;
    }
    reset_peak_rss();
    Status s = target->open(w, p);
    if (!s.is_ok()) {
      (void)target->close();
      return s.with_context(e + " setup");
    }
    run_clients(*target, w, p, e == "carrel" && !p.ack_log.empty() ? &ack : nullptr, &r, slot);
    r.peak_rss_bytes = peak_rss_bytes();
    CARREL_RETURN_IF_ERROR(target->close().with_context(e + " close"));
    r.dir_bytes = dir_bytes(target->dir());
    if (!(e == "carrel" && !p.dir.empty())) remove_tree(target->dir());
    if (e == "carrel") carrel_tpc = r.turns_per_commit;
    if (w.name == "many-objects" && r.ops > 0) {
      double user = static_cast<double>(r.ops) * (1 + p.value_bytes);  // key "k" + value
      r.extra["dir_bytes_per_object_beyond_data"] = (r.dir_bytes - user) / r.ops;
    }
    results->push_back(std::move(r));
  }
  return Status::ok();
}

std::string fmt(double v) {
  char b[64];
  if (v >= 100)
    std::snprintf(b, sizeof b, "%.0f", v);
  else if (v >= 10)
    std::snprintf(b, sizeof b, "%.1f", v);
  else
    std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

// Counts (whole numbers) exactly, other figures as fmt() does.
std::string fmt_figure(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return std::to_string(static_cast<int64_t>(v));
  return fmt(v);
}

std::string mib(uint64_t bytes) {
  return fmt(bytes / 1048576.0);
}

// The run header, printed before the run starts.
void print_header(const std::string& workload, const Params& p, bool default_engines) {
  std::string ycsb;
  if (ycsb_mix(workload)) {
    ycsb = " records=" + std::to_string(ycsb_records(p)) + " popularity=" +
           (p.zipfian ? "zipfian(" + fmt(p.zipf_theta) + ")" : std::string("uniform"));
  }
  std::printf(
      "workload %s: objects=%llu clients=%d %s value=%zuB durability=%s%s\n", workload.c_str(),
      static_cast<unsigned long long>(p.objects), p.clients,
      p.ops ? ("ops=" + std::to_string(p.ops)).c_str() : ("seconds=" + fmt(p.seconds)).c_str(),
      p.value_bytes, p.sync ? "sync" : "nosync", ycsb.c_str());
  std::printf("engines: %s%s\n", join(p.engines, ", ").c_str(),
              default_engines ? " (the default; choose with --engines)" : "");
  std::fflush(stdout);
}

void print_table(const Params& p, const std::vector<EngineResult>& results, bool legend) {
  std::printf("%-22s %10s %10s %8s %8s %8s %8s %9s %9s %7s %8s %8s %8s %8s %8s\n", "engine",
              "ops/s", "turns/s", "p50us", "p90us", "p99us", "p999us", "max_us", "commits/s",
              "t/commit", "fsyncs", "B/turn", "ioB/turn", "rss_MiB", "dir_MiB");
  const EngineResult* carrel = nullptr;
  for (const EngineResult& r : results) {
    std::string label = r.engine + (r.variant.empty() ? "" : " (" + r.variant + ")");
    if (!r.skipped.empty()) {
      std::printf("%-22s skipped: %s\n", label.c_str(), r.skipped.c_str());
      continue;
    }
    double turns = r.turns ? static_cast<double>(r.turns) : 1;
    std::printf(
        "%-22s %10s %10s %8llu %8llu %8llu %8llu %9llu %9s %7s %8s %8s %8s %8s %8s\n",
        label.c_str(), fmt(r.ops_per_s()).c_str(), fmt(r.turns_per_s()).c_str(),
        (unsigned long long)r.pct_us(0.5), (unsigned long long)r.pct_us(0.9),
        (unsigned long long)r.pct_us(0.99), (unsigned long long)r.pct_us(0.999),
        (unsigned long long)r.pct_us(1.0), fmt(r.seconds > 0 ? r.commits / r.seconds : 0).c_str(),
        fmt(r.turns_per_commit).c_str(), r.has_fsyncs ? std::to_string(r.fsyncs).c_str() : "-",
        fmt(r.bytes_written / turns).c_str(), fmt(r.io_write_bytes / turns).c_str(),
        mib(r.peak_rss_bytes).c_str(), mib(r.dir_bytes).c_str());
    for (const auto& [k, v] : r.extra)
      std::printf("%-22s   %s = %s\n", "", k.c_str(), fmt_figure(v).c_str());
    if (r.errors) {
      std::printf("%-22s   ERRORS: %llu (first: %s)\n", "", (unsigned long long)r.errors,
                  r.first_error.c_str());
    }
  }
  for (const EngineResult& r : results) {
    if (r.engine == "carrel" && r.skipped.empty()) {
      carrel = &r;
      for (const EngineResult& o : results) {
        if (o.engine == "carrel" || !o.skipped.empty() || o.variant != r.variant) continue;
        double tp = o.ops_per_s() > 0 ? r.ops_per_s() / o.ops_per_s() : 0;
        double p50 = o.pct_us(0.5) > 0 ? static_cast<double>(r.pct_us(0.5)) / o.pct_us(0.5) : 0;
        double p99 = o.pct_us(0.99) > 0 ? static_cast<double>(r.pct_us(0.99)) / o.pct_us(0.99) : 0;
        std::printf("carrel%s / %s: throughput x%s, p50 latency x%s, p99 latency x%s\n",
                    r.variant.empty() ? "" : (" (" + r.variant + ")").c_str(), o.engine.c_str(),
                    fmt(tp).c_str(), fmt(p50).c_str(), fmt(p99).c_str());
      }
    }
  }
  (void)carrel;
  if (legend) std::printf("\n%s", kColumnLegend);
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else
      out += c;
  }
  return out;
}

std::string jnum(double v) {
  char b[64];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

Status write_json(const std::string& path, const Params& p,
                  const std::vector<EngineResult>& results) {
  std::ostringstream o;
  o << "{\"workload\": \"" << json_escape(p.workload) << "\", \"command\": \""
    << json_escape(p.command) << "\", \"date\": \"" << utc_now() << "\", \"params\": {";
  o << "\"objects\": " << p.objects << ", \"clients\": " << p.clients << ", \"ops\": " << p.ops
    << ", \"seconds\": " << jnum(p.seconds) << ", \"value_bytes\": " << p.value_bytes
    << ", \"durability\": \"" << (p.sync ? "sync" : "nosync") << "\", \"preload\": " << p.preload
    << ", \"popularity\": \"" << (p.zipfian ? "zipfian" : "uniform") << "\""
    << (p.zipfian ? ", \"zipf_theta\": " + jnum(p.zipf_theta) : std::string())
    << ", \"seed\": " << p.seed
    << (ycsb_mix(p.workload) ? ", \"records\": " + std::to_string(ycsb_records(p)) : std::string())
    << ", \"engines\": [";
  for (size_t i = 0; i < p.engines.size(); ++i) o << (i ? ", " : "") << '"' << p.engines[i] << '"';
  o << "]";
  if (p.workload == "alarms") o << ", \"alarms\": " << p.alarms;
  o << "}, \"results\": [";
  bool first = true;
  for (const EngineResult& r : results) {
    o << (first ? "" : ", ") << "\n  {\"engine\": \"" << json_escape(r.engine) << "\"";
    first = false;
    if (!r.variant.empty()) o << ", \"variant\": \"" << json_escape(r.variant) << "\"";
    if (!r.skipped.empty()) {
      o << ", \"skipped\": \"" << json_escape(r.skipped) << "\"}";
      continue;
    }
    double turns = r.turns ? static_cast<double>(r.turns) : 1;
    o << ", \"ops\": " << r.ops << ", \"seconds\": " << jnum(r.seconds)
      << ", \"ops_per_s\": " << jnum(r.ops_per_s())
      << ", \"turns_per_s\": " << jnum(r.turns_per_s())
      << ", \"latency_us\": {\"p50\": " << r.pct_us(0.5) << ", \"p90\": " << r.pct_us(0.9)
      << ", \"p99\": " << r.pct_us(0.99) << ", \"p999\": " << r.pct_us(0.999)
      << ", \"max\": " << r.pct_us(1.0) << "}"
      << ", \"commits\": " << r.commits
      << ", \"commits_per_s\": " << jnum(r.seconds > 0 ? r.commits / r.seconds : 0)
      << ", \"turns_per_commit\": " << jnum(r.turns_per_commit);
    if (r.has_fsyncs) o << ", \"fsyncs\": " << r.fsyncs;
    o << ", \"bytes_written_per_turn\": " << jnum(r.bytes_written / turns)
      << ", \"io_write_bytes_per_turn\": " << jnum(r.io_write_bytes / turns)
      << ", \"peak_rss_bytes\": " << r.peak_rss_bytes << ", \"dir_bytes\": " << r.dir_bytes
      << ", \"errors\": " << r.errors;
    if (p.workload == "alarms") {
      o << ", \"lag_us\": {\"p50\": " << r.pct_us(0.5) << ", \"p99\": " << r.pct_us(0.99)
        << ", \"max\": " << r.pct_us(1.0) << "}";
    }
    for (const auto& [k, v] : r.extra) {  // counts exactly, other figures to 6 digits
      bool count = v == std::floor(v) && std::fabs(v) < 9e15;
      o << ", \"" << json_escape(k) << "\": " << (count ? fmt_figure(v) : jnum(v));
    }
    o << "}";
  }
  o << "\n]}\n";
  std::ofstream f(path);
  if (!f) return Status::io_error("cannot write " + path);
  f << o.str();
  return f ? Status::ok() : Status::io_error("write " + path);
}

// One line per result for scripts (bench/run_all.sh): tag, workload, engine,
// variant, durability, then the figures; extras as key=value;...
Status append_tsv(const std::string& path, const std::string& tag, const Params& p,
                  const std::vector<EngineResult>& results) {
  std::ofstream f(path, std::ios::app);
  if (!f) return Status::io_error("cannot append to " + path);
  for (const EngineResult& r : results) {
    if (!r.skipped.empty()) continue;
    double turns = r.turns ? static_cast<double>(r.turns) : 1;
    f << tag << '\t' << p.workload << '\t' << r.engine << '\t'
      << (r.variant.empty() ? "-" : r.variant) << '\t' << (p.sync ? "sync" : "nosync") << '\t'
      << jnum(r.ops_per_s()) << '\t' << jnum(r.turns_per_s()) << '\t' << r.pct_us(0.5) << '\t'
      << r.pct_us(0.9) << '\t' << r.pct_us(0.99) << '\t' << r.pct_us(0.999) << '\t' << r.pct_us(1.0)
      << '\t' << jnum(r.turns_per_commit) << '\t' << jnum(r.bytes_written / turns) << '\t'
      << r.peak_rss_bytes << '\t' << r.dir_bytes << '\t' << r.errors << '\t';
    bool first = true;
    for (const auto& [k, v] : r.extra) {
      f << (first ? "" : ";") << k << '=' << jnum(v);
      first = false;
    }
    f << (first ? "-" : "") << '\n';
  }
  return f ? Status::ok() : Status::io_error("write " + path);
}

int real_main(int argc, char** argv) {
  CLI::App app{
      "carrel-bench: storage workloads on carrel, one SQLite file per object, and raw LMDB"};
  Params p;
  std::string engines = kDefaultEngines;
  std::string durability = "sync";
  std::string history = "100,1000,10000";
  std::string verify_log;
  std::string tsv_path, tag;
  bool list = false;
  app.add_option("workload", p.workload, "the workload (see --list)");
  app.add_flag("--list", list, "list the workloads and engines");
  app.footer(kColumnLegend);
  app.set_version_flag("--version", "carrel-bench " CARREL_VERSION_STRING,
                       "print carrel-bench's version and exit");
  app.add_option("--engines", engines,
                 "comma-separated (default: carrel,sqlite-files,lmdb-raw and rocksdb when built; "
                 "lmdb-raw and rocksdb run the KV and YCSB workloads only)");
  app.add_option("--objects", p.objects, "objects (default 1000)");
  app.add_option("--clients", p.clients, "client threads, one call in flight each (default 64)");
  auto* ops = app.add_option("--ops", p.ops, "total operations over all clients");
  app.add_option("--seconds", p.seconds,
                 "run time per engine when --ops is not given (default 5); alarms: the due span")
      ->excludes(ops);
  app.add_option("--value-bytes", p.value_bytes, "value size (default 100)");
  app.add_option("--durability", durability, "sync (default: fsync per commit) or nosync")
      ->check(CLI::IsMember({"sync", "nosync"}));
  app.add_option("--preload", p.preload,
                 "keys or rows per object to preload (default: per workload)");
  app.add_option("--alarms", p.alarms, "alarms workload: how many alarms (default 100000)");
  app.add_option("--history", history, "pitr workload: history lengths (default 100,1000,10000)");
  app.add_option("--json", p.json_path, "also write the results as JSON");
  app.add_option("--tsv", tsv_path, "also append one tab-separated line per result (for scripts)");
  app.add_option("--tag", tag, "the first column of the --tsv lines");
  app.add_option("--dir", p.dir, "run carrel in this directory and keep it");
  app.add_option("--ack-log", p.ack_log, "append OBJ\\tKEY\\tVALUE per acknowledged carrel write");
  app.add_option("--verify-ack-log", verify_log,
                 "check that every write in this ack log is present in --dir, then exit");
  app.add_option("--seed", p.seed, "seed of the operation streams (default 42)");
  std::string popularity;
  app.add_option("--popularity", popularity,
                 "object popularity (YCSB: record popularity): uniform or zipfian (default: "
                 "zipfian for ycsb-*, uniform for the others)")
      ->check(CLI::IsMember({"uniform", "zipfian"}));
  app.add_option("--records", p.records,
                 "ycsb-*: YCSB's record count, spread over the objects (default 100 per object)");
  app.add_flag("--progress", p.progress,
               "progress with total and ETA on stderr even when it is not a terminal");
  bool no_legend = false;
  app.add_flag("--no-legend", no_legend, "no column legend under the table");
  bool no_redo_log = false;
  app.add_flag("--no-redo-log", no_redo_log,
               "carrel without its redo log (sync commits flush data.mdb twice, as LMDB does)");
  app.add_option("--zipf-theta", p.zipf_theta, "zipfian skew, 0 < theta < 1 (default 0.99)")
      ->check(CLI::Range(0.01, 0.999));
  CLI11_PARSE(app, argc, argv);
  p.redo_log = !no_redo_log;
  p.command = "carrel-bench";
  for (int i = 1; i < argc; ++i) p.command += std::string(" ") + argv[i];

  if (list) {
    std::printf("workloads:\n");
    for (const Workload& w : workloads())
      std::printf("  %-13s %s\n", w.name.c_str(), w.summary.c_str());
    std::printf(
        "engines:\n  carrel        the engine, through its public API\n"
        "  sqlite-files  one SQLite file per object, WAL, synchronous=FULL/NORMAL\n"
        "  lmdb-raw      LMDB directly, writes batched like carrel's group commit (KV and YCSB)\n"
        "  rocksdb       RocksDB, one WriteBatch (write + undo entry) per turn (KV and YCSB)%s\n"
        "all that are built run by default (--engines chooses)\n",
        make_rocksdb_target() ? "" : "; not built: librocksdb-dev was absent");
    return 0;
  }
  if (!verify_log.empty()) {
    if (p.dir.empty()) {
      std::fprintf(stderr, "--verify-ack-log needs --dir\n");
      return 2;
    }
    uint64_t checked = 0;
    Status s = verify_ack_log(verify_log, p.dir, &checked);
    if (!s.is_ok()) {
      std::fprintf(stderr, "verify: %s\n", s.to_string().c_str());
      return 1;
    }
    if (checked == 0) {
      std::fprintf(stderr, "verify: the ack log %s holds no writes\n", verify_log.c_str());
      return 1;
    }
    std::printf("verify: all %llu acknowledged writes present in %s\n",
                static_cast<unsigned long long>(checked), p.dir.c_str());
    return 0;
  }
  const Workload* w = find_workload(p.workload);
  if (!w) {
    std::vector<std::string> names;
    for (const Workload& x : workloads()) names.push_back(x.name);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    auto near = carrel::cli::nearest_word(p.workload, names);
    if (p.workload.empty()) {
      std::fprintf(stderr,
                   "carrel-bench: no workload given; name one of: %s (--list describes them)\n",
                   list.c_str());
    } else {
      std::fprintf(stderr,
                   "carrel-bench: unknown workload '%s'%s (workloads: %s; --list describes them)\n",
                   p.workload.c_str(), near ? ("; did you mean '" + *near + "'?").c_str() : "",
                   list.c_str());
    }
    return 2;
  }
  p.zipfian = popularity == "zipfian" || (popularity.empty() && ycsb_mix(w->name));
  p.engines = split_list(engines);
  for (const std::string& e : p.engines) {
    if (std::find(kEngines.begin(), kEngines.end(), e) == kEngines.end()) {
      std::fprintf(stderr, "unknown engine '%s' (carrel, sqlite-files, lmdb-raw, rocksdb)\n",
                   e.c_str());
      return 2;
    }
  }
  p.sync = durability == "sync";
  p.history_commits.clear();
  for (const std::string& h : split_list(history)) p.history_commits.push_back(std::stoull(h));
  raise_fd_limit();
  print_header(w->name, p, engines == kDefaultEngines);

  std::vector<EngineResult> results;
  Status s;
  if (w->name == "cold-wake")
    s = run_cold_wake(p, &results);
  else if (w->name == "alarms")
    s = run_alarms(p, &results);
  else if (w->name == "pitr")
    s = run_pitr(p, &results);
  else
    s = run_generic(*w, p, &results);
  if (!s.is_ok()) {
    std::fprintf(stderr, "carrel-bench %s: %s\n", w->name.c_str(), s.to_string().c_str());
    return 1;
  }
  // carrel's rows first, the alternatives after, each in run order.
  std::stable_partition(results.begin(), results.end(),
                        [](const EngineResult& r) { return r.engine == "carrel"; });
  print_table(p, results, !no_legend);
  if (!p.json_path.empty()) {
    Status js = write_json(p.json_path, p, results);
    if (!js.is_ok()) {
      std::fprintf(stderr, "%s\n", js.to_string().c_str());
      return 1;
    }
  }
  if (!tsv_path.empty()) {
    Status ts = append_tsv(tsv_path, tag.empty() ? w->name : tag, p, results);
    if (!ts.is_ok()) {
      std::fprintf(stderr, "%s\n", ts.to_string().c_str());
      return 1;
    }
  }
  uint64_t errors = 0;
  for (const EngineResult& r : results) errors += r.errors;
  return errors ? 1 : 0;
}

}  // namespace

#ifndef CARREL_BENCH_ROCKSDB
std::unique_ptr<Target> make_rocksdb_target() {
  return nullptr;
}
#endif

}  // namespace carrel::bench

int main(int argc, char** argv) {
  return carrel::bench::real_main(argc, argv);
}
