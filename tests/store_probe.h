// Test-only readers of an engine's LMDB databases, for checks that the public
// API cannot express (the timetable, dead letters, object records).
#pragma once

#include <gtest/gtest.h>
#include <lmdb.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "carrel/carrel.h"
#include "engine/alarm/entry.h"
#include "engine/history/tail.h"
#include "engine/loop/engine_core.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"
#include "tests/test_util.h"

namespace carrel::testing {

// Runs fn(store) on the engine's store, or, once the engine is closed (it has
// released its directory), on a read-only store of our own.
template <typename Fn>
void with_store(Engine& engine, Fn&& fn) {
  if (engine.core()->check_open().is_ok()) {
    fn(engine.core()->store());
    return;
  }
  store::StoreOptions so;
  so.dir = engine.options().dir;
  so.read_only = true;
  auto opened = store::Store::open(so);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  fn(**opened);
}

// Every (key, value) of one LMDB database, in key order; values of sealed
// databases are opened (checksum.h), and must pass their checksum.
inline std::vector<std::pair<std::string, std::string>> scan_db(Engine& engine, store::Db db) {
  std::vector<std::pair<std::string, std::string>> out;
  with_store(engine, [&](store::Store& st) {
    auto txn = st.begin_read();
    ASSERT_TRUE(txn.is_ok()) << txn.status().to_string();
    MDB_cursor* c = nullptr;
    ASSERT_EQ(mdb_cursor_open(txn->get(), st.dbi(db), &c), 0);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      std::string_view value = store::from_val(v);
      if (store::is_sealed(db)) {
        auto opened = store::open(db, store::from_val(k), value);
        EXPECT_TRUE(opened.is_ok()) << opened.status().to_string();
        value = opened.is_ok() ? *opened : std::string_view{};
      }
      out.emplace_back(std::string(store::from_val(k)), std::string(value));
    }
    mdb_cursor_close(c);
  });
  return out;
}

// dir's Store, opened for writing with default options (created when
// missing), as the engine opens it; null after an EXPECT failure naming why.
inline std::unique_ptr<store::Store> open_store(const std::string& dir) {
  store::StoreOptions so;
  so.dir = dir;
  auto st = store::Store::open(so);
  EXPECT_TRUE(st.is_ok()) << st.status().to_string();
  return st.is_ok() ? std::move(*st) : nullptr;
}

// What write_through_lmdb committed.
struct LmdbCommit {
  bool ok = false;          // every change was made and the transaction committed
  uint64_t txnid = 0;       // the environment's last transaction after it
  unsigned page_bytes = 0;  // LMDB's page size
};

// Puts (and, with nullopt, deletes) key -> value in the LMDB database named
// `db` of dir, in one transaction through LMDB alone: what another build, an
// operator or damage leaves, with no carrel code in the way. A delete of an
// absent key fails. Reports instead of asserting: child processes (the
// crash roles) call it too.
inline LmdbCommit write_through_lmdb(
    const std::string& dir, const std::string& db,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) {
  LmdbCommit out;
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  bool ok = mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 32) == 0 &&
            mdb_env_open(env, dir.c_str(), MDB_NOTLS, 0644) == 0 &&
            mdb_txn_begin(env, nullptr, 0, &txn) == 0;
  ok = ok && mdb_dbi_open(txn, db.c_str(), 0, &dbi) == 0;
  for (const auto& [key, value] : changes) {
    MDB_val k = store::to_val(key);
    if (!ok) break;
    if (value) {
      MDB_val v = store::to_val(*value);
      ok = mdb_put(txn, dbi, &k, &v, 0) == 0;
    } else {
      ok = mdb_del(txn, dbi, &k, nullptr) == 0;
    }
  }
  if (txn != nullptr) {
    if (ok) {
      ok = mdb_txn_commit(txn) == 0;
    } else {
      mdb_txn_abort(txn);
    }
  }
  MDB_envinfo info{};
  MDB_stat stat{};
  if (ok && mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &stat) == 0) {
    out = {true, info.me_last_txnid, stat.ms_psize};
  }
  if (env != nullptr) mdb_env_close(env);
  return out;
}

// The value under key in the LMDB database named `db` of dir, read through
// LMDB alone, read-only; nullopt when absent or unreadable.
inline std::optional<std::string> read_through_lmdb(const std::string& dir, const std::string& db,
                                                    const std::string& key) {
  std::optional<std::string> out;
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  MDB_val k = store::to_val(key), v;
  if (mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 32) == 0 &&
      mdb_env_open(env, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0644) == 0 &&
      mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0) {
    if (mdb_dbi_open(txn, db.c_str(), 0, &dbi) == 0 && mdb_get(txn, dbi, &k, &v) == 0) {
      out.emplace(store::from_val(v));
    }
    mdb_txn_abort(txn);
  }
  if (env != nullptr) mdb_env_close(env);
  return out;
}

// One value of one LMDB database (opened when the database is sealed), or nullopt.
inline std::optional<std::string> read_db(Engine& engine, store::Db db, const std::string& key) {
  std::optional<std::string> out;
  with_store(engine, [&](store::Store& st) {
    auto txn = st.begin_read();
    if (!txn.is_ok()) return;
    auto raw = store::is_sealed(db) ? store::read_sealed(*txn, db, key) : txn->get(db, key);
    EXPECT_TRUE(raw.is_ok()) << raw.status().to_string();
    if (raw.is_ok() && *raw) out = std::string(**raw);
  });
  return out;
}

// The object's record as of a fresh snapshot: stored plus the log tail
// (engine/history/tail.h), as every reader outside the committer sees it.
inline std::optional<store::ObjectRecord> object_record(Engine& engine, const ObjectId& id) {
  std::optional<store::ObjectRecord> out;
  with_store(engine, [&](store::Store& st) {
    auto txn = st.begin_read();
    if (!txn.is_ok()) return;
    auto rec = history::current_record(txn->get(), st, id);
    EXPECT_TRUE(rec.is_ok()) << rec.status().to_string();
    if (rec.is_ok()) out = *rec;
  });
  return out;
}

// The object's number, the prefix of its keys (store/keys.h (2)); 0, which
// no key starts with, when it has no record.
inline store::ObjectNo object_no(Engine& engine, const ObjectId& id) {
  std::optional<store::ObjectRecord> r = object_record(engine, id);
  return r ? r->number : store::ObjectNo{};
}

// The same, in the directory of a closed engine.
inline store::ObjectNo object_no_in(const std::string& dir, const ObjectId& id) {
  store::StoreOptions so;
  so.dir = dir;
  so.read_only = true;
  auto st = store::Store::open(so);
  EXPECT_TRUE(st.is_ok()) << st.status().to_string();
  if (!st.is_ok()) return {};
  auto txn = (*st)->begin_read();
  if (!txn.is_ok()) return {};
  auto rec = history::current_record(txn->get(), **st, id);
  EXPECT_TRUE(rec.is_ok()) << rec.status().to_string();
  return rec.is_ok() && *rec ? (*rec)->number : store::ObjectNo{};
}

// Every object's record (stored plus the log tail), by id.
inline std::map<ObjectId, store::ObjectRecord> all_records(Engine& engine) {
  std::map<ObjectId, store::ObjectRecord> out;
  with_store(engine, [&](store::Store& st) {
    auto txn = st.begin_read();
    if (!txn.is_ok()) return;
    Status s = history::for_each_record(txn->get(), st,
                                        [&](const ObjectId& id, const store::ObjectRecord& r) {
                                          out.emplace(id, r);
                                          return Status::ok();
                                        });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  });
  return out;
}

// Runs edit(txn, dbi of db) in one write transaction on a closed engine's
// directory and commits it when edit returns 0 (an LMDB result code): damage
// the engine's own writes never make.
inline void damage_in_txn(const std::string& dir, store::Db db,
                          const std::function<int(MDB_txn*, MDB_dbi)>& edit) {
  store::StoreOptions so;
  so.dir = dir;
  so.create_if_missing = false;
  auto st = store::Store::open(so);
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin((*st)->env(), nullptr, 0, &txn), 0);
  int rc = edit(txn, (*st)->dbi(db));
  if (rc != 0) mdb_txn_abort(txn);
  ASSERT_EQ(rc, 0) << mdb_strerror(rc);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
}

// Writes value under key in db of a closed engine's directory, or deletes key
// when value is nullopt.
inline void damage_db(const std::string& dir, store::Db db, std::string_view key,
                      std::optional<std::string_view> value) {
  damage_in_txn(dir, db, [&](MDB_txn* txn, MDB_dbi dbi) {
    MDB_val k = store::to_val(key), v;
    if (!value) return mdb_del(txn, dbi, &k, nullptr);
    v = store::to_val(*value);
    return mdb_put(txn, dbi, &k, &v, 0);
  });
}

inline std::optional<DeadLetter> dead_letter(Engine& engine, const ObjectId& id,
                                             const std::string& name) {
  auto raw = read_db(engine, store::Db::kDead, store::object_key(object_no(engine, id), name));
  if (!raw) return std::nullopt;
  auto d = alarm::decode_dead(name, *raw);
  if (!d.is_ok()) return std::nullopt;
  return *d;
}

// The scheduler's timetable (`schedule`) holds exactly one key per entry of
// `alarms`, at that entry's due time, and each object record counts its
// entries and dead letters. Call when no commit is in flight.
inline void expect_timetable_matches(Engine& engine) {
  std::map<std::string, int> expected;  // schedule key -> 1
  std::map<ObjectId, uint32_t> alarms_per_object, dead_per_object;
  const std::map<ObjectId, store::ObjectRecord> records = all_records(engine);
  std::map<uint64_t, ObjectId> ids;  // keys name their object by number
  for (auto& [id, rec] : records) ids.emplace(rec.number.value, id);
  auto owner = [&](std::string_view key) {
    auto it = ids.find(store::prefix_of(key).value);
    EXPECT_NE(it, ids.end()) << "a key of an object number no record holds";
    return it == ids.end() ? ObjectId{} : it->second;
  };
  for (auto& [key, value] : scan_db(engine, store::Db::kAlarms)) {
    ObjectId id = owner(key);
    auto due = alarm::decode_due(value);
    ASSERT_TRUE(due.is_ok()) << due.status().to_string();
    expected[store::schedule_key(static_cast<uint64_t>(*due), id,
                                 key.substr(store::kPrefixBytes))] = 1;
    alarms_per_object[id] += 1;
  }
  std::map<std::string, int> actual;
  for (auto& [key, value] : scan_db(engine, store::Db::kSchedule)) actual[key] = 1;
  EXPECT_EQ(actual, expected) << "timetable and alarm entries differ";
  for (auto& [key, value] : scan_db(engine, store::Db::kDead)) dead_per_object[owner(key)] += 1;
  for (auto& [id, rec] : records) {
    EXPECT_EQ(rec.alarms, alarms_per_object[id]) << "object " << id.to_hex();
    EXPECT_EQ(rec.dead_letters, dead_per_object[id]) << "object " << id.to_hex();
  }
}

}  // namespace carrel::testing
