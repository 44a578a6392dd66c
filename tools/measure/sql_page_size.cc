// sql_page_size: which SQLite page size suits pages stored in LMDB?
//
// For each page size it runs, on a fresh engine directory, one object that
// inserts 100k rows (id INTEGER PRIMARY KEY, ~100-byte text, indexed integer)
// in 400 turns, then does 200k point selects by primary key in turns of 100;
// and, side by side in the same run, a native SQLite file (WAL,
// synchronous=OFF, same page size) doing the same transactions. carrel uses
// Durability::kNoSync so the comparison is CPU and write volume, not fsync.
// Every configuration runs `--runs` times (default 3), interleaved, and the
// table shows medians. Ratios are what to quote: the machine may be loaded.
//
// Usage: carrel_sql_page_size [--runs N] [--rows N] [--dir PARENT] [--no-history]
#include <lmdb.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"
#include "engine/store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  int runs = 3;
  int rows = 100000;
  int insert_turns = 400;
  int selects = 200000;
  int selects_per_turn = 100;
  bool history = true;
  std::string parent = "/tmp";
};

struct Sample {
  double insert_s = 0;
  double select_s = 0;
  double insert_cpu_s = 0;  // process CPU time (all threads): steadier than wall time under load
  double select_cpu_s = 0;
  double file_bytes = 0;     // data.mdb, or the SQLite file after checkpoint
  double bytes_written = 0;  // carrel: stats().bytes_written
  double sql_bytes = 0;      // database_size() / page_count * page_size
  double leaf_pages = 0;     // LMDB pages db
  double overflow_pages = 0;
  double branch_pages = 0;
  double entries = 0;
};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// User + system CPU seconds of the whole process so far.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string make_dir(const std::string& parent) {
  std::string tmpl = parent + "/carrel-pagesize-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return tmpl;
}

// The ~100-byte text of row i: varied, so pages do not compress trivially.
std::string text_of(int i) {
  std::string s(100, 'a');
  uint64_t x = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull;
  for (char& c : s) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    c = static_cast<char>('a' + x % 26);
  }
  return s;
}

int64_t number_of(int i) {
  return (static_cast<int64_t>(i) * 7919) % 1000003;
}

// Logical bytes: 8 (id) + text + 8 (integer) per row.
double logical_bytes(int rows) {
  return static_cast<double>(rows) * (8 + 100 + 8);
}

std::vector<int64_t> select_ids(const Config& c) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> pick(1, c.rows);
  std::vector<int64_t> ids(c.selects);
  for (auto& id : ids) id = pick(rng);
  return ids;
}

void die(const carrel::Status& s, const char* what) {
  std::fprintf(stderr, "%s: %s\n", what, s.to_string().c_str());
  std::exit(1);
}

Sample run_carrel(const Config& c, uint32_t page_bytes, const std::vector<int64_t>& ids) {
  std::string dir = make_dir(c.parent);
  carrel::Options o;
  o.dir = dir;
  o.durability = carrel::Durability::kNoSync;
  o.sql_page_bytes = page_bytes;
  o.workers = 1;
  if (!c.history) o.history_retention_ms = 0;
  auto opened = carrel::Engine::open(o);
  if (!opened.is_ok()) die(opened.status(), "open");
  std::unique_ptr<carrel::Engine> e = std::move(opened).value();
  carrel::ObjectRef ref = carrel::ObjectRef::named("Measure", "one");
  carrel::Status s = e->run(ref, [](carrel::Context& ctx) {
    return ctx.sql()
        .exec(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER); "
            "CREATE INDEX t_n ON t(n)")
        .status();
  });
  if (!s.is_ok()) die(s, "create");
  uint64_t written0 = e->stats().bytes_written;

  Sample out;
  int per_turn = c.rows / c.insert_turns;
  auto t0 = Clock::now();
  double cpu0 = cpu_seconds();
  for (int turn = 0; turn < c.insert_turns; ++turn) {
    s = e->run(ref, [&](carrel::Context& ctx) -> carrel::Status {
      for (int i = turn * per_turn; i < (turn + 1) * per_turn; ++i) {
        CARREL_RETURN_IF_ERROR(ctx.sql()
                                   .exec("INSERT INTO t(id, body, n) VALUES (?, ?, ?)",
                                         int64_t{i + 1}, text_of(i), number_of(i))
                                   .status());
      }
      return carrel::Status::ok();
    });
    if (!s.is_ok()) die(s, "insert turn");
  }
  out.insert_s = seconds_since(t0);
  out.insert_cpu_s = cpu_seconds() - cpu0;
  out.bytes_written = static_cast<double>(e->stats().bytes_written - written0);

  int64_t checksum = 0;
  t0 = Clock::now();
  cpu0 = cpu_seconds();
  for (size_t at = 0; at < ids.size(); at += c.selects_per_turn) {
    s = e->run(ref, [&](carrel::Context& ctx) -> carrel::Status {
      for (size_t i = at; i < std::min(ids.size(), at + c.selects_per_turn); ++i) {
        CARREL_ASSIGN_OR_RETURN(auto cur, ctx.sql().exec("SELECT n FROM t WHERE id = ?", ids[i]));
        if (cur.size() != 1) return carrel::Status::corruption("row missing");
        checksum += cur.rows()[0].get_int(0).value_or(0);
      }
      return carrel::Status::ok();
    });
    if (!s.is_ok()) die(s, "select turn");
  }
  out.select_s = seconds_since(t0);
  out.select_cpu_s = cpu_seconds() - cpu0;
  if (checksum == 0) std::fprintf(stderr, "checksum 0?\n");

  s = e->run(ref, [&](carrel::Context& ctx) -> carrel::Status {
    CARREL_ASSIGN_OR_RETURN(uint64_t size, ctx.sql().database_size());
    out.sql_bytes = static_cast<double>(size);
    return carrel::Status::ok();
  });
  if (!s.is_ok()) die(s, "size");

  carrel::store::Store& st = e->core()->store();
  auto txn = st.begin_read();
  if (!txn.is_ok()) die(txn.status(), "begin_read");
  MDB_stat ms{};
  int rc = mdb_stat(txn->get(), st.dbi(carrel::store::Db::kPages), &ms);
  if (rc != 0) die(carrel::store::from_mdb(rc, "mdb_stat"), "mdb_stat");
  out.leaf_pages = static_cast<double>(ms.ms_leaf_pages);
  out.overflow_pages = static_cast<double>(ms.ms_overflow_pages);
  out.branch_pages = static_cast<double>(ms.ms_branch_pages);
  out.entries = static_cast<double>(ms.ms_entries);
  txn->release();
  s = e->close();
  if (!s.is_ok()) die(s, "close");
  e.reset();
  out.file_bytes = static_cast<double>(file_size(dir + "/data.mdb"));
  std::filesystem::remove_all(dir);
  return out;
}

void must(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "sqlite %s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

Sample run_native(const Config& c, uint32_t page_bytes, const std::vector<int64_t>& ids) {
  std::string dir = make_dir(c.parent);
  std::string path = dir + "/native.db";
  sqlite3* db = nullptr;
  must(sqlite3_open(path.c_str(), &db), db, "open");
  std::string setup = "PRAGMA page_size=" + std::to_string(page_bytes) +
                      "; PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; "
                      "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT, n INTEGER); "
                      "CREATE INDEX t_n ON t(n)";
  must(sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr), db, "setup");
  sqlite3_stmt* ins = nullptr;
  sqlite3_stmt* sel = nullptr;
  must(sqlite3_prepare_v2(db, "INSERT INTO t(id, body, n) VALUES (?, ?, ?)", -1, &ins, nullptr), db,
       "prepare");
  must(sqlite3_prepare_v2(db, "SELECT n FROM t WHERE id = ?", -1, &sel, nullptr), db, "prepare");

  Sample out;
  int per_turn = c.rows / c.insert_turns;
  auto t0 = Clock::now();
  double cpu0 = cpu_seconds();
  for (int turn = 0; turn < c.insert_turns; ++turn) {
    must(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
    for (int i = turn * per_turn; i < (turn + 1) * per_turn; ++i) {
      std::string text = text_of(i);
      sqlite3_bind_int64(ins, 1, i + 1);
      sqlite3_bind_text(ins, 2, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins, 3, number_of(i));
      must(sqlite3_step(ins), db, "insert");
      sqlite3_reset(ins);
    }
    must(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  }
  out.insert_s = seconds_since(t0);
  out.insert_cpu_s = cpu_seconds() - cpu0;

  int64_t checksum = 0;
  t0 = Clock::now();
  cpu0 = cpu_seconds();
  for (size_t at = 0; at < ids.size(); at += c.selects_per_turn) {
    must(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr), db, "begin");
    for (size_t i = at; i < std::min(ids.size(), at + c.selects_per_turn); ++i) {
      sqlite3_bind_int64(sel, 1, ids[i]);
      if (sqlite3_step(sel) != SQLITE_ROW) {
        std::fprintf(stderr, "native: row missing\n");
        std::exit(1);
      }
      checksum += sqlite3_column_int64(sel, 0);
      sqlite3_reset(sel);
    }
    must(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db, "commit");
  }
  out.select_s = seconds_since(t0);
  out.select_cpu_s = cpu_seconds() - cpu0;
  if (checksum == 0) std::fprintf(stderr, "checksum 0?\n");
  sqlite3_finalize(ins);
  sqlite3_finalize(sel);
  sqlite3_close(db);  // checkpoints the WAL into the file
  out.file_bytes = static_cast<double>(file_size(path) + file_size(path + "-wal"));
  out.sql_bytes = static_cast<double>(file_size(path));
  std::filesystem::remove_all(dir);
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Sample median_of(const std::vector<Sample>& runs) {
  Sample m;
  auto field = [&](double Sample::*f) {
    std::vector<double> v;
    for (const Sample& s : runs) v.push_back(s.*f);
    m.*f = median(v);
  };
  for (auto f :
       {&Sample::insert_s, &Sample::select_s, &Sample::insert_cpu_s, &Sample::select_cpu_s,
        &Sample::file_bytes, &Sample::bytes_written, &Sample::sql_bytes, &Sample::leaf_pages,
        &Sample::overflow_pages, &Sample::branch_pages, &Sample::entries}) {
    field(f);
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc)
      c.runs = std::atoi(argv[++i]);
    else if (a == "--rows" && i + 1 < argc)
      c.rows = std::atoi(argv[++i]);
    else if (a == "--dir" && i + 1 < argc)
      c.parent = argv[++i];
    else if (a == "--no-history")
      c.history = false;
    else {
      std::fprintf(stderr, "usage: %s [--runs N] [--rows N] [--dir PARENT] [--no-history]\n",
                   argv[0]);
      return 2;
    }
  }
  if (c.runs < 1 || c.rows < c.insert_turns) {
    std::fprintf(stderr, "--runs must be >= 1 and --rows >= %d\n", c.insert_turns);
    return 2;
  }
  c.selects = 2 * c.rows;
  const std::vector<uint32_t> sizes = {1024, 2048, 4096, 8192};
  std::vector<int64_t> ids = select_ids(c);
  std::map<uint32_t, std::vector<Sample>> ours, native;
  for (int run = 0; run < c.runs; ++run) {
    for (uint32_t p : sizes) {
      ours[p].push_back(run_carrel(c, p, ids));
      native[p].push_back(run_native(c, p, ids));
      std::fprintf(stderr,
                   "run %d page %u: carrel insert %.2fs select %.2fs | native %.2fs %.2fs\n",
                   run + 1, p, ours[p].back().insert_s, ours[p].back().select_s,
                   native[p].back().insert_s, native[p].back().select_s);
    }
  }

  std::printf(
      "%d rows in %d turns, %d point selects in turns of %d; history %s; "
      "medians of %d runs\n\n",
      c.rows, c.insert_turns, c.selects, c.selects_per_turn, c.history ? "on" : "off", c.runs);
  std::printf(
      "| page | insert wall s carrel / native (ratio) | insert CPU s carrel / native (ratio) | "
      "select wall s carrel / native (ratio) | select CPU s carrel / native (ratio) | "
      "data.mdb MB | native file MB | SQL db MB | bytes written MB | write amp. | "
      "LMDB leaf / overflow / branch pages | entries |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  const double mb = 1024.0 * 1024.0;
  auto pair = [](double a, double b) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f / %.2f (%.2f)", a, b, a / b);
    return std::string(buf);
  };
  for (uint32_t p : sizes) {
    Sample o = median_of(ours[p]);
    Sample n = median_of(native[p]);
    std::printf(
        "| %u | %s | %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f / %.0f / %.0f | "
        "%.0f |\n",
        p, pair(o.insert_s, n.insert_s).c_str(), pair(o.insert_cpu_s, n.insert_cpu_s).c_str(),
        pair(o.select_s, n.select_s).c_str(), pair(o.select_cpu_s, n.select_cpu_s).c_str(),
        o.file_bytes / mb, n.file_bytes / mb, o.sql_bytes / mb, o.bytes_written / mb,
        o.bytes_written / logical_bytes(c.rows), o.leaf_pages, o.overflow_pages, o.branch_pages,
        o.entries);
  }
  return 0;
}
