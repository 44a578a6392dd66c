// The bench tool's shared parts: parameters, workloads, the engines under
// test, the client loop and what it measures.
//
// Invariants:
//  (1) Every engine of one run executes the same operations: op k of client c
//      is a function of (workload, params, c, k) only (see make_op), so the
//      engines see the same keys, values and object choices.
//  (2) A latency is the time from issuing an operation to having its
//      acknowledgement (carrel: the reply, released after the commit is
//      durable; the alternatives: their commit returned).
//  (3) An acknowledged write is logged (--ack-log) only after its
//      acknowledgement, one line per write(2), so a crash never leaves a logged
//      write that was not acknowledged.
//  (4) A YCSB operation only reads records that exist when it is issued: the
//      preloaded records and the issuing client's own acknowledged inserts
//      (see OpSource::ycsb_op), so every engine must complete it without error.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "carrel/status.h"

namespace carrel::bench {

struct Params {
  std::string workload;
  std::vector<std::string> engines;
  uint64_t objects = 1000;
  int clients = 64;
  // carrel's Options::redo_log (--no-redo-log turns it off, for A/B runs).
  bool redo_log = true;
  uint64_t ops = 0;  // total over all clients; 0: run for `seconds`
  double seconds = 5;
  size_t value_bytes = 100;
  bool sync = true;
  uint64_t preload = 0;  // keys (KV) or rows (SQL) per object; 0: the workload's default
  std::string json_path;
  std::string command;  // the command line, for the JSON results
  std::string dir;  // carrel's directory, kept; empty: a temp dir
  std::string ack_log;
  // alarms
  uint64_t alarms = 100000;
  // pitr
  std::vector<uint64_t> history_commits = {100, 1000, 10000};
  uint64_t seed = 42;
  // Object popularity: uniform, or zipfian with this theta (YCSB's default 0.99).
  bool zipfian = false;
  double zipf_theta = 0.99;
  // YCSB: the record count (0: kYcsbRecordsPerObject per object).
  uint64_t records = 0;
  // Progress on stderr even when it is not a terminal.
  bool progress = false;
};

enum class OpKind : uint8_t {
  kPut,
  kGet,
  kSqlInsert,
  kSqlPoint,
  kChat,
  kWake,
  kUpdate,
  kInsert,
  kScan,
  kRmw,  // YCSB: update, insert, scan, read-modify-write
};
inline constexpr size_t kOpKinds = static_cast<size_t>(OpKind::kRmw) + 1;

struct Op {
  OpKind kind = OpKind::kPut;
  uint64_t object = 0;
  std::string key;    // KV key
  int64_t row = 0;    // SQL row id
  std::string value;  // value, row payload or chat body
  uint32_t limit = 0;  // kScan: at most this many records from `key` on
};

// What one workload asks of every engine.
struct Workload {
  std::string name;
  std::string summary;
  bool kv = false;                // lmdb-raw can run it
  bool sql = false;               // objects have the SQL table
  bool each_object_once = false;  // op i goes to object i (no random choice)
  uint64_t preload_default = 0;
};

const std::vector<Workload>& workloads();
const Workload* find_workload(const std::string& name);

// YCSB core workloads A-F (Cooper et al., SoCC 2010; YCSB's workloads/workload[a-f]):
// the proportions of each operation, summing to 1. Records are KV keys spread
// over the objects: record r is key ycsb_key(r) of object r mod objects.
struct YcsbMix {
  double read = 0, update = 0, insert = 0, scan = 0, rmw = 0;
  bool latest = false;  // reads skewed to the newest records (workload D)
};
// nullptr when the workload is not a YCSB one.
const YcsbMix* ycsb_mix(const std::string& workload);
inline constexpr uint64_t kYcsbRecordsPerObject = 100;
inline constexpr uint32_t kYcsbScanLengthMax = 100;  // YCSB's maxscanlength, uniform 1..max
uint64_t ycsb_records(const Params& p);
std::string ycsb_key(uint64_t record);  // "user000000000123": key order is record order
// The keys an object holds before the run: the YCSB records of that object, or
// the workload's preload_key(0..n-1).
std::vector<std::string> preload_keys(const Workload& w, const Params& p, uint64_t object);

// Zipfian ranks in [0, n): rank 0 is the most popular (Gray et al., "Quickly
// generating billion-record synthetic databases", as YCSB's ZipfianGenerator).
class Zipfian {
 public:
  Zipfian(uint64_t n, double theta);
  uint64_t rank(double u) const;  // u uniform in [0, 1)

 private:
  uint64_t n_;
  double alpha_, zetan_, eta_, half_pow_;
};

// Deterministic per (workload, params, client, seq): invariant (1).
class OpSource {
 public:
  OpSource(const Workload& w, const Params& p, int client);
  Op next(uint64_t seq, uint64_t global_index);

 private:
  const Workload& w_;
  const Params& p_;
  int client_;
  uint64_t rng_;
  uint64_t rand();
  double rand01();
  uint64_t pick_object(uint64_t objects);
  uint64_t pick_record();
  Op ycsb_op(uint64_t seq);
  std::optional<Zipfian> object_zipf_, record_zipf_;
  const YcsbMix* ycsb_;
  uint64_t inserts_ = 0;  // YCSB: this client's inserts so far
};

std::string object_name(uint64_t object);                   // "o000123"
std::string preload_key(uint64_t i);                        // "p000123"
std::string value_for(std::string_view key, size_t bytes);  // printable, derived from key
std::string put_payload(std::string_view key, std::string_view value);
void split_payload(std::string_view payload, std::string_view* key, std::string_view* value);
std::string u64_bytes(uint64_t v);
uint64_t bytes_u64(std::string_view s);
inline constexpr const char* kBenchClass = "Bench";

struct EngineResult {
  std::string engine;
  std::string variant;  // e.g. "10-table schema", "1000 commits"
  std::string skipped;  // non-empty: why this engine did not run
  uint64_t ops = 0;
  uint64_t turns = 0;
  uint64_t errors = 0;
  std::string first_error;
  double seconds = 0;
  std::vector<uint32_t> latencies_us;  // sorted after the run
  uint64_t commits = 0;
  double turns_per_commit = 0;
  uint64_t fsyncs = 0;
  bool has_fsyncs = false;
  uint64_t bytes_written = 0;   // engine's own count (carrel stats; logical for others)
  uint64_t io_write_bytes = 0;  // write(2) bytes of the process during the run
  uint64_t peak_rss_bytes = 0;
  uint64_t dir_bytes = 0;
  uint64_t user_bytes = 0;              // key + value bytes the workload stored
  std::map<std::string, double> extra;  // workload-specific figures (alarms, pitr, ...)

  double ops_per_s() const { return seconds > 0 ? ops / seconds : 0; }
  double turns_per_s() const { return seconds > 0 ? turns / seconds : 0; }
  uint64_t pct_us(double q) const;
};
// The q-quantile of sorted latencies (0 when empty).
uint64_t percentile_us(const std::vector<uint32_t>& sorted, double q);

// An engine under test. run_op is called from client threads concurrently
// (one call in flight per client); open and close from the main thread.
class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;
  // Creates the store and preloads what the workload reads.
  virtual Status open(const Workload& w, const Params& p) = 0;
  virtual Status run_op(int client, const Op& op) = 0;
  virtual void client_finished(int client) { (void)client; }
  // Called once before the clients start and once after they stop.
  virtual void begin_measure() {}
  virtual void end_measure(EngineResult* r) { (void)r; }
  virtual Status close() = 0;
  virtual std::string dir() const = 0;
};

struct LmdbBatching {
  double turns_per_commit = 1;  // carrel's mean in this run
};

std::unique_ptr<Target> make_carrel_target();
std::unique_ptr<Target> make_sqlite_files_target();
std::unique_ptr<Target> make_lmdb_raw_target(const LmdbBatching& batching);
// nullptr when carrel-bench was built without librocksdb-dev.
std::unique_ptr<Target> make_rocksdb_target();

// Appends acknowledged writes: invariant (3).
class AckLog {
 public:
  Status open(const std::string& path);
  void append(std::string_view object, std::string_view key, std::string_view value);
  ~AckLog();

 private:
  int fd_ = -1;
};

// Which engine of how many a run is (for the progress line).
struct RunSlot {
  int index = 0;
  int count = 1;
};

// A progress line on stderr: on a terminal (redrawn in place, twice a second)
// or when asked (Params::progress: a line a second, for logs); never on stdout.
// It shows `done` of `total` units (total 0: a run of Params::seconds), this
// engine's ETA and the whole run's. Not thread-safe: one thread ticks it.
class ProgressMeter {
 public:
  ProgressMeter(const Params& p, std::string workload, std::string engine, RunSlot slot,
                const char* unit = "ops");
  ~ProgressMeter();  // clears the terminal line
  void tick(uint64_t done, uint64_t total);

 private:
  std::string workload_, engine_;
  const char* unit_;
  RunSlot slot_;
  double seconds_;
  bool tty_, show_, printed_ = false;
  int64_t start_us_, last_us_;
};

// Runs the clients against an opened target. YCSB workloads also count each
// kind of operation into r->extra ("reads", "updates", "inserts", "scans",
// "rmws") with its latency ("read_p50_us", "read_p99_us", ...).
void run_clients(Target& target, const Workload& w, const Params& p, AckLog* ack, EngineResult* r,
                 RunSlot slot = {});

// Process measurements.
void reset_peak_rss();
uint64_t peak_rss_bytes();
uint64_t io_write_bytes();
uint64_t dir_bytes(const std::string& dir);
std::string make_temp_dir(const std::string& tag);
void remove_tree(const std::string& dir);
int64_t wall_us();

// The special workloads (their own drivers, carrel-centred).
Status run_cold_wake(const Params& p, std::vector<EngineResult>* results);
Status run_alarms(const Params& p, std::vector<EngineResult>* results);
Status run_pitr(const Params& p, std::vector<EngineResult>* results);

// --verify-ack-log: every logged write is present in the carrel directory.
Status verify_ack_log(const std::string& log_path, const std::string& dir, uint64_t* checked);

}  // namespace carrel::bench
