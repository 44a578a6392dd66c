#include "bench/harness.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

namespace carrel::bench {

const std::vector<Workload>& workloads() {
  static const std::vector<Workload> all = {
      {"kv-write", "1 put of value-bytes per turn, unique keys", true, false, false, 0},
      {"kv-read", "1 get of a preloaded key per turn", true, false, false, 100},
      {"kv-mixed", "50% gets of preloaded keys, 50% puts", true, false, false, 100},
      {"hot-object", "kv-write on one object from every client", true, false, false, 0},
      {"many-objects", "op i puts one key into object i (each object touched once)", true, false,
       true, 0},
      {"sql-insert", "1 INSERT of value-bytes per turn", false, true, false, 0},
      {"sql-point", "1 point SELECT by primary key on a preloaded table", false, true, false, 1000},
      {"chat", "insert a message, read the latest 50", false, true, false, 50},
      {"cold-wake", "first call to hibernated objects (KV-only and 10-table schema)", false, false,
       true, 10},
      {"alarms", "N alarms across M objects due over S seconds; delivery lag", false, false, false,
       0},
      {"pitr", "restore to the first bookmark vs history length", false, false, false, 0},
      {"ycsb-a", "YCSB A: 50% reads, 50% updates (zipfian records)", true, false, false, 0},
      {"ycsb-b", "YCSB B: 95% reads, 5% updates (zipfian records)", true, false, false, 0},
      {"ycsb-c", "YCSB C: 100% reads (zipfian records)", true, false, false, 0},
      {"ycsb-d", "YCSB D: 95% reads of the latest records, 5% inserts", true, false, false, 0},
      {"ycsb-e", "YCSB E: 95% scans of 1-100 records, 5% inserts", true, false, false, 0},
      {"ycsb-f", "YCSB F: 50% reads, 50% read-modify-writes (zipfian)", true, false, false, 0},
  };
  return all;
}

const YcsbMix* ycsb_mix(const std::string& workload) {
  // YCSB's workloads/workload[a-f] proportions.
  static const std::map<std::string, YcsbMix> mixes = {
      {"ycsb-a", {.read = 0.5, .update = 0.5}},
      {"ycsb-b", {.read = 0.95, .update = 0.05}},
      {"ycsb-c", {.read = 1.0}},
      {"ycsb-d", {.read = 0.95, .insert = 0.05, .latest = true}},
      {"ycsb-e", {.insert = 0.05, .scan = 0.95}},
      {"ycsb-f", {.read = 0.5, .rmw = 0.5}},
  };
  auto it = mixes.find(workload);
  return it == mixes.end() ? nullptr : &it->second;
}

uint64_t ycsb_records(const Params& p) {
  return p.records ? p.records : p.objects * kYcsbRecordsPerObject;
}

std::string ycsb_key(uint64_t record) {
  char b[32];
  std::snprintf(b, sizeof b, "user%012llu", static_cast<unsigned long long>(record));
  return b;
}

std::vector<std::string> preload_keys(const Workload& w, const Params& p, uint64_t object) {
  std::vector<std::string> keys;
  if (ycsb_mix(w.name)) {
    for (uint64_t r = object; r < ycsb_records(p); r += p.objects) keys.push_back(ycsb_key(r));
    return keys;
  }
  uint64_t n = p.preload ? p.preload : w.preload_default;
  for (uint64_t k = 0; k < n; ++k) keys.push_back(preload_key(k));
  return keys;
}

Zipfian::Zipfian(uint64_t n, double theta) : n_(n) {
  // zeta(n, theta) is O(n): computed once per process for each (n, theta).
  static std::mutex mutex;
  static std::map<std::pair<uint64_t, double>, double> zetas;
  {
    std::lock_guard lock(mutex);
    auto [it, fresh] = zetas.try_emplace({n, theta}, 0.0);
    if (fresh) {
      for (uint64_t i = 1; i <= n; ++i) it->second += 1.0 / std::pow(double(i), theta);
    }
    zetan_ = it->second;
  }
  double zeta2 = 1.0 + std::pow(0.5, theta);
  alpha_ = 1.0 / (1.0 - theta);
  eta_ = (1.0 - std::pow(2.0 / double(n), 1.0 - theta)) / (1.0 - zeta2 / zetan_);
  half_pow_ = zeta2;
}

uint64_t Zipfian::rank(double u) const {
  double uz = u * zetan_;
  if (uz < 1.0 || n_ <= 1) return 0;
  if (uz < half_pow_) return 1;
  auto r = static_cast<uint64_t>(double(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
  return std::min(r, n_ - 1);
}

const Workload* find_workload(const std::string& name) {
  for (const Workload& w : workloads())
    if (w.name == name) return &w;
  return nullptr;
}

OpSource::OpSource(const Workload& w, const Params& p, int client)
    : w_(w),
      p_(p),
      client_(client),
      rng_(p.seed * 0x9E3779B97F4A7C15ull + client * 7919 + 1),
      ycsb_(ycsb_mix(w.name)) {}

uint64_t OpSource::rand() {  // splitmix64: cheap and identical across engines
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double OpSource::rand01() {
  return double(rand() >> 11) * 0x1.0p-53;
}

uint64_t OpSource::pick_object(uint64_t objects) {
  if (!p_.zipfian || objects <= 1) return rand() % objects;
  if (!object_zipf_) object_zipf_.emplace(objects, p_.zipf_theta);
  return object_zipf_->rank(rand01());
}

uint64_t OpSource::pick_record() {
  uint64_t records = ycsb_records(p_);
  if (!p_.zipfian) return rand() % records;
  // Scrambled, as YCSB's ScrambledZipfianGenerator: the popular ranks are
  // spread over the key space (and so over the objects) by an FNV-1a hash.
  if (!record_zipf_) record_zipf_.emplace(records, p_.zipf_theta);
  uint64_t rank = record_zipf_->rank(rand01());
  uint64_t h = 0xCBF29CE484222325ull;
  for (int i = 0; i < 8; ++i, rank >>= 8) h = (h ^ (rank & 0xff)) * 0x100000001B3ull;
  return h % records;
}

Op OpSource::ycsb_op(uint64_t seq) {
  const YcsbMix& m = *ycsb_;
  const uint64_t records = ycsb_records(p_);
  const uint64_t clients = static_cast<uint64_t>(std::max(1, p_.clients));
  Op op;
  uint64_t record = 0;
  double u = rand01();
  if (u < m.read) {
    op.kind = OpKind::kGet;
    if (m.latest) {
      // Invariant (4): "latest" over what this client knows exists: its own
      // inserts, newest first, then the preloaded records, newest first.
      if (!record_zipf_) record_zipf_.emplace(records, p_.zipf_theta);
      uint64_t i = record_zipf_->rank(rand01());
      record = i < inserts_ ? records + (inserts_ - 1 - i) * clients + client_
                            : records - 1 - std::min(i - inserts_, records - 1);
    } else {
      record = pick_record();
    }
  } else if (u < m.read + m.update) {
    op.kind = OpKind::kUpdate;
    record = pick_record();
  } else if (u < m.read + m.update + m.insert) {
    // New records after the preloaded ones; client c's j-th insert is
    // records + j * clients + c, so clients never collide.
    op.kind = OpKind::kInsert;
    record = records + inserts_++ * clients + client_;
  } else if (u < m.read + m.update + m.insert + m.scan) {
    op.kind = OpKind::kScan;
    record = pick_record();
    op.limit = 1 + static_cast<uint32_t>(rand() % kYcsbScanLengthMax);
  } else {
    op.kind = OpKind::kRmw;
    record = pick_record();
  }
  op.object = record % p_.objects;
  op.key = ycsb_key(record);
  if (op.kind == OpKind::kUpdate || op.kind == OpKind::kInsert || op.kind == OpKind::kRmw) {
    // A fresh value per write (derived from client and sequence), like
    // YCSB's random field values.
    char tag[32];
    std::snprintf(tag, sizeof tag, "c%03d-%09llu", client_, static_cast<unsigned long long>(seq));
    op.value = value_for(tag, p_.value_bytes);
  }
  return op;
}

Op OpSource::next(uint64_t seq, uint64_t global_index) {
  if (ycsb_) return ycsb_op(seq);
  Op op;
  uint64_t objects = w_.name == "hot-object" ? 1 : p_.objects;
  op.object = w_.each_object_once ? global_index : pick_object(objects);
  uint64_t preload = p_.preload ? p_.preload : w_.preload_default;
  char key[32];
  std::snprintf(key, sizeof key, "c%03d-%09llu", client_, static_cast<unsigned long long>(seq));
  int64_t unique_row = int64_t{client_ + 1} * 1000000000 + static_cast<int64_t>(seq);
  if (w_.name == "kv-read" || (w_.name == "kv-mixed" && rand() % 2 == 0)) {
    op.kind = OpKind::kGet;
    op.key = preload_key(rand() % preload);
  } else if (w_.name == "sql-insert") {
    op.kind = OpKind::kSqlInsert;
    op.row = unique_row;
    op.value = value_for(key, p_.value_bytes);
  } else if (w_.name == "sql-point") {
    op.kind = OpKind::kSqlPoint;
    op.row = static_cast<int64_t>(rand() % preload) + 1;
  } else if (w_.name == "chat") {
    op.kind = OpKind::kChat;
    op.row = unique_row;
    op.value = value_for(key, p_.value_bytes);
  } else if (w_.name == "cold-wake") {
    op.kind = OpKind::kWake;
    op.key = preload_key(0);
  } else {
    op.kind = OpKind::kPut;
    op.key = w_.name == "many-objects" ? std::string("k") : std::string(key);
    op.value = value_for(key, p_.value_bytes);
  }
  return op;
}

std::string object_name(uint64_t object) {
  char b[32];
  std::snprintf(b, sizeof b, "o%07llu", static_cast<unsigned long long>(object));
  return b;
}

std::string preload_key(uint64_t i) {
  char b[32];
  std::snprintf(b, sizeof b, "p%06llu", static_cast<unsigned long long>(i));
  return b;
}

std::string value_for(std::string_view key, size_t bytes) {
  // Printable and checkable: the key repeated, then a letter cycle.
  std::string v;
  v.reserve(bytes);
  while (v.size() < bytes) {
    v.append(key.substr(0, std::min(key.size(), bytes - v.size())));
    if (v.size() < bytes) v.push_back(static_cast<char>('a' + v.size() % 26));
  }
  return v;
}

std::string put_payload(std::string_view key, std::string_view value) {
  std::string s;
  s.reserve(key.size() + 1 + value.size());
  s.append(key);
  s.push_back('\0');
  s.append(value);
  return s;
}

void split_payload(std::string_view payload, std::string_view* key, std::string_view* value) {
  size_t nul = payload.find('\0');
  if (nul == std::string_view::npos) {
    *key = payload;
    *value = {};
    return;
  }
  *key = payload.substr(0, nul);
  *value = payload.substr(nul + 1);
}

std::string u64_bytes(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) s[i] = static_cast<char>(v & 0xff);
  return s;
}

uint64_t bytes_u64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = v << 8 | static_cast<uint8_t>(s[i]);
  return v;
}

uint64_t percentile_us(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

uint64_t EngineResult::pct_us(double q) const {
  return percentile_us(latencies_us, q);
}

Status AckLog::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return Status::io_error("open ack log " + path + ": " + std::strerror(errno));
  return Status::ok();
}

void AckLog::append(std::string_view object, std::string_view key, std::string_view value) {
  // Invariant (3): the whole line in one write(2) on an O_APPEND descriptor,
  // so concurrent clients never interleave and nothing sits in a buffer.
  std::string line;
  line.reserve(object.size() + key.size() + value.size() + 3);
  line.append(object).append("\t").append(key).append("\t").append(value).append("\n");
  ssize_t n = ::write(fd_, line.data(), line.size());
  (void)n;
}

AckLog::~AckLog() {
  if (fd_ >= 0) ::close(fd_);
}

int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ProgressMeter::ProgressMeter(const Params& p, std::string workload, std::string engine,
                             RunSlot slot, const char* unit)
    : workload_(std::move(workload)),
      engine_(std::move(engine)),
      unit_(unit),
      slot_(slot),
      seconds_(p.seconds),
      tty_(isatty(STDERR_FILENO)),
      show_(tty_ || p.progress),
      start_us_(wall_us()),
      last_us_(start_us_) {}

ProgressMeter::~ProgressMeter() {
  if (tty_ && printed_) std::fprintf(stderr, "\r%100s\r", "");
}

void ProgressMeter::tick(uint64_t done, uint64_t total) {
  const int64_t now = wall_us();
  if (!show_ || now - last_us_ < (tty_ ? 500000 : 1000000)) return;
  last_us_ = now;
  printed_ = true;
  const double elapsed_s = (now - start_us_) / 1e6;
  double frac = total ? double(done) / double(total) : elapsed_s / seconds_;
  frac = std::clamp(frac, 0.0, 1.0);
  const double engine_s = total ? (frac > 0 ? elapsed_s / frac : 0) : seconds_;
  const double eta = std::max(0.0, engine_s - elapsed_s);
  const double run_eta = eta + engine_s * (slot_.count - slot_.index - 1);
  char what[96];
  if (total)
    std::snprintf(what, sizeof what, "%llu/%llu %s", static_cast<unsigned long long>(done),
                  static_cast<unsigned long long>(total), unit_);
  else
    std::snprintf(what, sizeof what, "%.1f/%.1f s, %llu %s", elapsed_s, seconds_,
                  static_cast<unsigned long long>(done), unit_);
  char when[64] = "ETA unknown yet";  // nothing done: no rate to go by
  if (frac > 0) std::snprintf(when, sizeof when, "ETA %.0f s (all engines ~%.0f s)", eta, run_eta);
  std::fprintf(stderr, "%s  %s [%d/%d %s] %s %3.0f%%  %s%s", tty_ ? "\r" : "", workload_.c_str(),
               slot_.index + 1, slot_.count, engine_.c_str(), what, 100 * frac, when,
               tty_ ? "  " : "\n");
  std::fflush(stderr);
}

namespace {

void log_ack(AckLog* ack, const Op& op) {
  if (!ack) return;
  std::string obj = std::string(kBenchClass) + ":" + object_name(op.object);
  switch (op.kind) {
    case OpKind::kPut:
    case OpKind::kInsert:
      // Not kUpdate/kRmw: concurrent writes of one key reach the log in an
      // order that need not be their commit order.
      ack->append(obj, op.key, op.value);
      break;
    case OpKind::kSqlInsert:
      ack->append(obj, "sql:t/" + std::to_string(op.row), op.value);
      break;
    case OpKind::kChat:
      ack->append(obj, "sql:messages/" + std::to_string(op.row), op.value);
      break;
    default:
      break;
  }
}

struct ClientState {
  std::vector<uint32_t> lat;
  std::vector<OpKind> kinds;  // YCSB: the kind of each lat entry
  std::array<uint64_t, kOpKinds> by_kind{};
  uint64_t ops = 0;
  uint64_t errors = 0;
  std::string first_error;
};

}  // namespace

void run_clients(Target& target, const Workload& w, const Params& p, AckLog* ack, EngineResult* r,
                 RunSlot slot) {
  const int clients = std::max(1, p.clients);
  std::vector<ClientState> state(clients);
  std::atomic<uint64_t> next_index{0};  // global op index (ops mode and each_object_once)
  std::atomic<uint64_t> done_ops{0};
  std::atomic<bool> stop{false};
  uint64_t total = p.ops;
  if (w.each_object_once) total = total ? std::min<uint64_t>(total, p.objects) : p.objects;
  for (auto& s : state) s.lat.reserve(total ? total / clients + 16 : 1 << 16);

  const bool ycsb = ycsb_mix(w.name) != nullptr;
  target.begin_measure();
  uint64_t io0 = io_write_bytes();
  int64_t t0 = wall_us();
  auto client_main = [&](int c) {
    OpSource src(w, p, c);
    ClientState& st = state[c];
    for (uint64_t seq = 0;; ++seq) {
      uint64_t gi = 0;
      if (total) {
        gi = next_index.fetch_add(1, std::memory_order_relaxed);
        if (gi >= total) break;
      } else if (stop.load(std::memory_order_relaxed)) {
        break;
      }
      Op op = src.next(seq, gi);
      int64_t a = wall_us();
      Status s = target.run_op(c, op);
      int64_t b = wall_us();
      st.lat.push_back(static_cast<uint32_t>(std::min<int64_t>(b - a, UINT32_MAX)));
      ++st.ops;
      ++st.by_kind[static_cast<size_t>(op.kind)];
      if (ycsb) st.kinds.push_back(op.kind);
      done_ops.fetch_add(1, std::memory_order_relaxed);
      if (!s.is_ok()) {
        if (st.errors++ == 0) st.first_error = s.to_string();
      } else {
        log_ack(ack, op);
      }
    }
    target.client_finished(c);
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) threads.emplace_back(client_main, c);

  // The timer in --seconds mode, and the progress line.
  std::atomic<bool> finished{false};
  std::thread monitor([&] {
    ProgressMeter progress(p, w.name, target.name(), slot);
    int64_t deadline = total ? INT64_MAX : t0 + static_cast<int64_t>(p.seconds * 1e6);
    while (!finished.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (wall_us() >= deadline) stop.store(true);
      progress.tick(done_ops.load(), total);
    }
  });
  for (auto& t : threads) t.join();
  int64_t t1 = wall_us();
  finished.store(true);
  monitor.join();

  r->seconds = (t1 - t0) / 1e6;
  r->io_write_bytes = io_write_bytes() - io0;
  std::array<uint64_t, kOpKinds> by_kind{};
  std::array<std::vector<uint32_t>, kOpKinds> lat_by_kind;  // YCSB only
  for (auto& s : state) {
    for (size_t k = 0; k < kOpKinds; ++k) by_kind[k] += s.by_kind[k];
    for (size_t i = 0; i < s.kinds.size(); ++i)
      lat_by_kind[static_cast<size_t>(s.kinds[i])].push_back(s.lat[i]);
    r->ops += s.ops;
    r->errors += s.errors;
    if (r->first_error.empty()) r->first_error = s.first_error;
    r->latencies_us.insert(r->latencies_us.end(), s.lat.begin(), s.lat.end());
    std::vector<uint32_t>().swap(s.lat);
  }
  std::sort(r->latencies_us.begin(), r->latencies_us.end());
  r->turns = r->ops;
  if (ycsb) {
    // The count of each kind, and its latency as YCSB reports it: per kind.
    static constexpr std::pair<OpKind, const char*> kKinds[] = {{OpKind::kGet, "read"},
                                                                {OpKind::kUpdate, "update"},
                                                                {OpKind::kInsert, "insert"},
                                                                {OpKind::kScan, "scan"},
                                                                {OpKind::kRmw, "rmw"}};
    for (const auto& [kind, name] : kKinds) {
      std::vector<uint32_t>& lat = lat_by_kind[static_cast<size_t>(kind)];
      r->extra[std::string(name) + "s"] = static_cast<double>(by_kind[static_cast<size_t>(kind)]);
      if (lat.empty()) continue;
      std::sort(lat.begin(), lat.end());
      r->extra[std::string(name) + "_p50_us"] = static_cast<double>(percentile_us(lat, 0.5));
      r->extra[std::string(name) + "_p99_us"] = static_cast<double>(percentile_us(lat, 0.99));
    }
  }
  target.end_measure(r);
}

void reset_peak_rss() {
  // Linux: writing 5 to clear_refs resets VmHWM, so each engine's peak is its own.
  int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = ::write(fd, "5", 1);
    (void)n;
    ::close(fd);
  }
}

uint64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

uint64_t io_write_bytes() {
  std::ifstream f("/proc/self/io");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("wchar:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

namespace {
uint64_t g_tree_bytes = 0;
int add_size(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_F) g_tree_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  return 0;
}
int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
  return ::remove(path);
}
}  // namespace

uint64_t dir_bytes(const std::string& dir) {
  // Allocated blocks, not apparent sizes: what the data costs on disk.
  g_tree_bytes = 0;
  nftw(dir.c_str(), add_size, 16, FTW_PHYS);
  return g_tree_bytes;
}

std::string make_temp_dir(const std::string& tag) {
  const char* base = std::getenv("TMPDIR");
  std::string templ =
      std::string(base && *base ? base : "/tmp") + "/carrel-bench-" + tag + ".XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) return {};
  return buf.data();
}

void remove_tree(const std::string& dir) {
  if (!dir.empty()) nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

}  // namespace carrel::bench
