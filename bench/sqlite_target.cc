// The usual alternative: one SQLite file per object in a directory, WAL mode,
// synchronous=FULL (sync) or NORMAL (nosync), one connection per object
// guarded by a mutex. Each operation is one transaction, like one carrel turn.
#include <sqlite3.h>

#include <mutex>
#include <unordered_map>

#include "bench/bench_handler.h"
#include "bench/harness.h"

namespace carrel::bench {
namespace {

Status sqlite_error(sqlite3* db, const std::string& what) {
  return Status::io_error(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

// One object's file and connection; REQUIRES: mutex held for every use of db.
struct ObjectFile {
  std::mutex mutex;
  sqlite3* db = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> stmts;

  ~ObjectFile() { close(); }
  void close() {
    for (auto& [_, st] : stmts) sqlite3_finalize(st);
    stmts.clear();
    if (db) sqlite3_close_v2(db);
    db = nullptr;
  }
  Status exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      return Status::io_error(std::string(sql) + ": " + m);
    }
    return Status::ok();
  }
  Result<sqlite3_stmt*> stmt(const std::string& sql) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
      return sqlite_error(db, "prepare " + sql);
    stmts[sql] = st;
    return st;
  }
  Status step_done(sqlite3_stmt* st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? Status::ok() : sqlite_error(db, "step");
  }
};

class SqliteFilesTarget final : public Target {
 public:
  std::string name() const override { return "sqlite-files"; }

  Status open(const Workload& w, const Params& p) override {
    w_ = &w;
    sync_ = p.sync;
    dir_ = make_temp_dir("sqlite");
    if (dir_.empty()) return Status::io_error("cannot create a temp dir");
    schema_ = w.sql ? Schema::kBench : Schema::kNone;
    uint64_t objects = w.name == "hot-object" ? 1 : p.objects;
    files_.reserve(objects);
    for (uint64_t i = 0; i < objects; ++i) {
      files_.push_back(std::make_unique<ObjectFile>());
      if (w.each_object_once) continue;  // opened by its one operation
      CARREL_RETURN_IF_ERROR(connect(i, *files_.back()));
    }
    return preload(w, p);
  }

  // Opens the object's file with the pragmas and the schema: what an
  // application does when it activates an object.
  Status connect(uint64_t object, ObjectFile& f) {
    std::string path = dir_ + "/" + object_name(object) + ".db";
    if (sqlite3_open_v2(path.c_str(), &f.db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      return sqlite_error(f.db, "open " + path);
    CARREL_RETURN_IF_ERROR(f.exec("PRAGMA journal_mode=WAL"));
    CARREL_RETURN_IF_ERROR(f.exec(sync_ ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL"));
    CARREL_RETURN_IF_ERROR(
        f.exec("CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID"));
    for (const std::string& s : schema_statements(schema_))
      CARREL_RETURN_IF_ERROR(f.exec(s.c_str()));
    return Status::ok();
  }

  Status preload(const Workload& w, const Params& p) {
    if (w.each_object_once) return Status::ok();
    // KV workloads: preload_keys(); SQL workloads: rows 1..n.
    uint64_t rows = w.kv ? 0 : (p.preload ? p.preload : w.preload_default);
    for (uint64_t i = 0; i < files_.size(); ++i) {
      ObjectFile& f = *files_[i];
      std::vector<std::string> keys = w.kv ? preload_keys(w, p, i) : std::vector<std::string>();
      if (keys.empty() && rows == 0) continue;
      CARREL_RETURN_IF_ERROR(f.exec("BEGIN"));
      for (const std::string& key : keys)
        CARREL_RETURN_IF_ERROR(put(f, key, value_for(key, p.value_bytes)));
      for (uint64_t k = 0; k < rows; ++k) {
        std::string value = value_for(preload_key(k), p.value_bytes);
        if (w.name == "sql-point") {
          CARREL_RETURN_IF_ERROR(
              insert(f, "INSERT INTO t(id, v) VALUES (?, ?)", k + 1, value, true));
        } else {
          CARREL_RETURN_IF_ERROR(
              insert(f, "INSERT INTO messages(id, body) VALUES (?, ?)", k + 1, value, false));
        }
      }
      CARREL_RETURN_IF_ERROR(f.exec("COMMIT"));
    }
    return Status::ok();
  }

  Status put(ObjectFile& f, std::string_view key, std::string_view value) {
    CARREL_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                            f.stmt("INSERT OR REPLACE INTO kv(k, v) VALUES (?, ?)"));
    sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    return f.step_done(st);
  }

  Status insert(ObjectFile& f, const char* sql, int64_t row, std::string_view value, bool blob) {
    CARREL_ASSIGN_OR_RETURN(sqlite3_stmt * st, f.stmt(sql));
    sqlite3_bind_int64(st, 1, row);
    if (blob)
      sqlite3_bind_blob(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    else
      sqlite3_bind_text(st, 2, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
    return f.step_done(st);
  }

  Status get(ObjectFile& f, std::string_view key) {
    CARREL_ASSIGN_OR_RETURN(sqlite3_stmt * st, f.stmt("SELECT v FROM kv WHERE k = ?"));
    sqlite3_bind_blob(st, 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    return read_one(f, st);
  }

  Status read_one(ObjectFile& f, sqlite3_stmt* st) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      // Copy the value out, as carrel's reply does.
      const void* b = sqlite3_column_blob(st, 0);
      std::string v(static_cast<const char*>(b ? b : ""), sqlite3_column_bytes(st, 0));
      sqlite3_reset(st);
      return Status::ok();
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? Status::not_found("row") : sqlite_error(f.db, "step");
  }

  Status run_op(int, const Op& op) override {
    ObjectFile& f = *files_[op.object];
    std::lock_guard lock(f.mutex);
    if (!f.db) CARREL_RETURN_IF_ERROR(connect(op.object, f));
    switch (op.kind) {
      case OpKind::kPut:
      case OpKind::kUpdate:
      case OpKind::kInsert:
        return put(f, op.key, op.value);
      case OpKind::kGet:
      case OpKind::kWake:
        return get(f, op.key);
      case OpKind::kRmw: {
        // One transaction, like one turn: read the record, then write it.
        CARREL_RETURN_IF_ERROR(f.exec("BEGIN"));
        Status s = get(f, op.key);
        if (s.is_ok()) s = put(f, op.key, op.value);
        if (!s.is_ok()) {
          (void)f.exec("ROLLBACK");
          return s;
        }
        return f.exec("COMMIT");
      }
      case OpKind::kScan: {
        CARREL_ASSIGN_OR_RETURN(sqlite3_stmt * st,
                                f.stmt("SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?"));
        sqlite3_bind_blob(st, 1, op.key.data(), static_cast<int>(op.key.size()), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, op.limit);
        std::vector<std::pair<std::string, std::string>> rows;  // copied out, as carrel's list
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
          auto text = [&](int col) {
            const void* b = sqlite3_column_blob(st, col);
            return std::string(static_cast<const char*>(b ? b : ""), sqlite3_column_bytes(st, col));
          };
          rows.emplace_back(text(0), text(1));
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) return sqlite_error(f.db, "scan");
        return rows.empty() ? Status::not_found("scan from " + op.key) : Status::ok();
      }
      case OpKind::kSqlInsert:
        return insert(f, "INSERT INTO t(id, v) VALUES (?, ?)", op.row, op.value, true);
      case OpKind::kSqlPoint: {
        CARREL_ASSIGN_OR_RETURN(sqlite3_stmt * st, f.stmt("SELECT v FROM t WHERE id = ?"));
        sqlite3_bind_int64(st, 1, op.row);
        return read_one(f, st);
      }
      case OpKind::kChat: {
        // One transaction, like one turn: insert, then read the latest 50.
        CARREL_RETURN_IF_ERROR(f.exec("BEGIN"));
        Status s =
            insert(f, "INSERT INTO messages(id, body) VALUES (?, ?)", op.row, op.value, false);
        if (s.is_ok()) {
          auto st = f.stmt(kChatLatest);
          if (!st.is_ok())
            s = st.status();
          else {
            int rc;
            std::vector<std::string> rows;
            while ((rc = sqlite3_step(*st)) == SQLITE_ROW) {
              const unsigned char* t = sqlite3_column_text(*st, 1);
              rows.emplace_back(reinterpret_cast<const char*>(
                  t ? t : reinterpret_cast<const unsigned char*>("")));
            }
            sqlite3_reset(*st);
            if (rc != SQLITE_DONE) s = sqlite_error(f.db, "chat select");
          }
        }
        if (!s.is_ok()) {
          (void)f.exec("ROLLBACK");
          return s;
        }
        return f.exec("COMMIT");
      }
    }
    return Status::ok();
  }

  void end_measure(EngineResult* r) override {
    // Every operation is its own transaction; the writing ones are commits.
    bool writes_all = w_->name != "kv-read" && w_->name != "sql-point" && w_->name != "cold-wake";
    uint64_t writes = writes_all ? r->ops : 0;
    if (w_->name == "kv-mixed") writes = r->ops / 2;  // approximately: half are puts
    if (ycsb_mix(w_->name)) {                         // run_clients counted each kind
      writes = static_cast<uint64_t>(r->extra["updates"] + r->extra["inserts"] + r->extra["rmws"]);
    }
    r->commits = writes;
    r->turns_per_commit = writes ? 1.0 : 0.0;
  }

  Status close() override {
    files_.clear();
    return Status::ok();
  }
  std::string dir() const override { return dir_; }

  // For cold-wake: close every connection (hibernate).
  void hibernate_all() {
    for (auto& f : files_) {
      std::lock_guard lock(f->mutex);
      f->close();
    }
  }

 private:
  const Workload* w_ = nullptr;
  bool sync_ = true;
  Schema schema_ = Schema::kNone;
  std::string dir_;
  std::vector<std::unique_ptr<ObjectFile>> files_;
};

}  // namespace

std::unique_ptr<Target> make_sqlite_files_target() {
  return std::make_unique<SqliteFilesTarget>();
}

}  // namespace carrel::bench
