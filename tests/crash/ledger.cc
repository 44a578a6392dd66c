#include "tests/crash/ledger.h"

#include <lmdb.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "engine/alarm/entry.h"
#include "engine/history/tail.h"
#include "engine/history/undo.h"
#include "engine/loop/engine_core.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"
#include "engine/store/store.h"

namespace carrel::ledger {
namespace {

std::string padded(uint64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llu", width, static_cast<unsigned long long>(v));
  return buf;
}

std::string turn_key(uint64_t k) {
  return "k/" + padded(k, 10);
}
std::string message_key(int from, uint64_t k) {
  return "m/" + padded(from, 4) + "/" + padded(k, 10);
}
std::string alarm_name(uint64_t k) {
  return "a" + std::to_string(k);
}

Result<uint64_t> read_counter(Kv& kv, std::string_view key) {
  CARREL_ASSIGN_OR_RETURN(auto v, kv.get(key));
  if (!v) return uint64_t{0};
  return static_cast<uint64_t>(std::stoull(*v));
}

class LedgerHandler final : public Handler {
 public:
  LedgerHandler(int index, int objects) : index_(index), objects_(objects) {}

  Status on_start(Context& ctx) override {
    return ctx.sql()
        .exec("CREATE TABLE IF NOT EXISTS ledger(k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        .status();
  }

  Result<std::string> on_request(Context& ctx, const Request& request) override {
    if (request.method == "turn") return turn(ctx);
    if (request.method == "msg") return message(ctx, request.payload);
    return Status::invalid_argument("Ledger has no method '" + request.method + "'");
  }

 private:
  Result<std::string> turn(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(uint64_t last, read_counter(ctx.kv(), "last"));
    const uint64_t k = last + 1;
    const std::string v = value(index_, k);
    CARREL_RETURN_IF_ERROR(ctx.kv().put(turn_key(k), v));
    CARREL_RETURN_IF_ERROR(
        ctx.sql()
            .exec("INSERT INTO ledger(k, v) VALUES (?, ?)", static_cast<int64_t>(k), v)
            .status());
    CARREL_RETURN_IF_ERROR(
        ctx.alarms().schedule(alarm_name(k), kAlarmBaseMs + static_cast<UnixMs>(k), v));
    if (k > kAlarmWindow) {
      CARREL_ASSIGN_OR_RETURN(bool removed, ctx.alarms().cancel(alarm_name(k - kAlarmWindow)));
      if (!removed) {
        return Status::corruption("object " + ctx.object().label() + ": alarm " +
                                  alarm_name(k - kAlarmWindow) + " was missing in turn " +
                                  std::to_string(k));
      }
    }
    CARREL_RETURN_IF_ERROR(ctx.kv().put("last", std::to_string(k)));
    CARREL_RETURN_IF_ERROR(ctx.send(object((index_ + 1) % objects_), "msg",
                                    std::to_string(index_) + " " + std::to_string(k)));
    return std::to_string(k);
  }

  Result<std::string> message(Context& ctx, const std::string& payload) {
    int from = -1;
    unsigned long long k = 0;
    if (std::sscanf(payload.c_str(), "%d %llu", &from, &k) != 2) {
      return Status::invalid_argument("bad message '" + payload + "'");
    }
    CARREL_RETURN_IF_ERROR(ctx.kv().put(message_key(from, k), ""));
    CARREL_ASSIGN_OR_RETURN(uint64_t count, read_counter(ctx.kv(), "mc"));
    CARREL_RETURN_IF_ERROR(ctx.kv().put("mc", std::to_string(count + 1)));
    return std::string();
  }

  int index_;
  int objects_;
};

// What one object holds, read in one turn.
struct ObjectState {
  uint64_t last = 0;
  uint64_t message_count = 0;
  std::vector<std::pair<uint64_t, std::string>> kv_turns, sql_turns;
  std::vector<AlarmEntry> alarms;
  std::map<int, std::vector<uint64_t>> messages;  // sender -> ks received
  std::string integrity;
};

Status read_state(Context& ctx, ObjectState* st) {
  CARREL_ASSIGN_OR_RETURN(st->last, read_counter(ctx.kv(), "last"));
  CARREL_ASSIGN_OR_RETURN(st->message_count, read_counter(ctx.kv(), "mc"));
  ListOptions turns;
  turns.prefix = "k/";
  CARREL_ASSIGN_OR_RETURN(Entries kv, ctx.kv().list(turns));
  for (auto& [key, v] : kv) st->kv_turns.emplace_back(std::stoull(key.substr(2)), v);
  ListOptions messages;
  messages.prefix = "m/";
  CARREL_ASSIGN_OR_RETURN(Entries received, ctx.kv().list(messages));
  for (auto& [key, v] : received) {
    st->messages[std::stoi(key.substr(2, 4))].push_back(std::stoull(key.substr(7)));
  }
  CARREL_ASSIGN_OR_RETURN(SqlCursor rows, ctx.sql().exec("SELECT k, v FROM ledger ORDER BY k"));
  for (const SqlRow& row : rows) {
    CARREL_ASSIGN_OR_RETURN(int64_t k, row.get_int(0));
    CARREL_ASSIGN_OR_RETURN(std::string v, row.get_text(1));
    st->sql_turns.emplace_back(static_cast<uint64_t>(k), std::move(v));
  }
  CARREL_ASSIGN_OR_RETURN(st->alarms, ctx.alarms().list());
  CARREL_ASSIGN_OR_RETURN(SqlCursor check, ctx.sql().exec("PRAGMA integrity_check"));
  for (const SqlRow& row : check) {
    CARREL_ASSIGN_OR_RETURN(std::string line, row.get_text(0));
    st->integrity += line;
  }
  return Status::ok();
}

Status broken(int i, const std::string& invariant, const std::string& what) {
  return Status::corruption("object " + object(i).label() + ": invariant " + invariant + ": " +
                            what);
}

// Invariant (2) for one list of (k, value) against turns 1..last.
Status check_turns(int i, const char* part, uint64_t first, uint64_t last,
                   const std::vector<std::pair<uint64_t, std::string>>& got) {
  const uint64_t want = last >= first ? last - first + 1 : 0;
  if (got.size() != want) {
    return broken(i, "(2)",
                  std::string(part) + " holds " + std::to_string(got.size()) + " turns; last is " +
                      std::to_string(last) + ", expected " + std::to_string(want));
  }
  for (size_t j = 0; j < got.size(); ++j) {
    const uint64_t k = first + j;
    if (got[j].first != k || got[j].second != value(i, k)) {
      return broken(i, "(2)",
                    std::string(part) + " entry " + std::to_string(j) + " is turn " +
                        std::to_string(got[j].first) + " '" + got[j].second + "', expected turn " +
                        std::to_string(k));
    }
  }
  return Status::ok();
}

Status check_object(int i, const ObjectState& st, uint64_t acked) {
  if (acked > st.last) {
    return broken(i, "(1)",
                  "turn " + std::to_string(acked) +
                      " was acknowledged but the object's last turn is " + std::to_string(st.last));
  }
  CARREL_RETURN_IF_ERROR(check_turns(i, "KV", 1, st.last, st.kv_turns));
  CARREL_RETURN_IF_ERROR(check_turns(i, "SQL", 1, st.last, st.sql_turns));
  std::vector<std::pair<uint64_t, std::string>> alarm_turns;
  for (const AlarmEntry& e : st.alarms) {
    if (e.name.size() < 2 || e.name[0] != 'a') return broken(i, "(2)", "stray alarm " + e.name);
    const uint64_t k = std::stoull(e.name.substr(1));
    if (e.due_ms != kAlarmBaseMs + static_cast<UnixMs>(k)) {
      return broken(i, "(2)", "alarm " + e.name + " is due at " + std::to_string(e.due_ms));
    }
    alarm_turns.emplace_back(k, e.payload);
  }
  std::sort(alarm_turns.begin(), alarm_turns.end());
  const uint64_t first_alarm = st.last > kAlarmWindow ? st.last - kAlarmWindow + 1 : 1;
  CARREL_RETURN_IF_ERROR(check_turns(i, "alarms", first_alarm, st.last, alarm_turns));
  if (st.integrity != "ok") return broken(i, "(5)", "integrity_check says " + st.integrity);
  return Status::ok();
}

// Invariant (3): sender i's messages at its target, and the target's count.
Status check_messages(int objects, const std::vector<ObjectState>& states, Totals* totals) {
  for (int t = 0; t < objects; ++t) {
    const ObjectState& target = states[t];
    uint64_t received = 0;
    for (const auto& [from, ks] : target.messages) {
      if (from < 0 || from >= objects || (from + 1) % objects != t) {
        return broken(t, "(3)", "holds a message from object " + std::to_string(from));
      }
      received += ks.size();
    }
    const int from = (t + objects - 1) % objects;
    auto it = target.messages.find(from);
    const size_t n = it == target.messages.end() ? 0 : it->second.size();
    if (n != states[from].last) {
      return broken(t, "(3)",
                    "received " + std::to_string(n) + " messages from " + object(from).label() +
                        ", which sent " + std::to_string(states[from].last));
    }
    for (size_t j = 0; j < n; ++j) {
      if (it->second[j] != j + 1)
        return broken(t, "(3)", "message gap at " + std::to_string(j + 1));
    }
    if (target.message_count != received) {
      return broken(t, "(3)",
                    "counted " + std::to_string(target.message_count) + " deliveries of " +
                        std::to_string(received) + " messages");
    }
    totals->messages += received;
  }
  return Status::ok();
}

Result<size_t> count_entries(store::Store& store, store::Db db) {
  CARREL_ASSIGN_OR_RETURN(store::ReadTxn txn, store.begin_read());
  MDB_stat stat{};
  int rc = mdb_stat(txn.get(), store.dbi(db), &stat);
  if (rc != 0) return store::from_mdb(rc, "stat");
  return static_cast<size_t>(stat.ms_entries);
}

Status wait_outbox_empty(Engine& engine) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    CARREL_ASSIGN_OR_RETURN(size_t n, count_entries(engine.core()->store(), store::Db::kOutbox));
    if (n == 0) return Status::ok();
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::corruption("invariant (3): " + std::to_string(n) +
                                " outbox messages still undelivered after 60 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Visits every key/value of db in [from, to) (to empty: to the end), with
// values of sealed databases opened.
template <typename Fn>
Status scan(store::Store& store, MDB_txn* txn, store::Db db, const std::string& from,
            const std::string& to, Fn fn) {
  MDB_cursor* c = nullptr;
  int rc = mdb_cursor_open(txn, store.dbi(db), &c);
  if (rc != 0) return store::from_mdb(rc, "open cursor");
  MDB_val k = store::to_val(from), v;
  rc = mdb_cursor_get(c, &k, &v, from.empty() ? MDB_FIRST : MDB_SET_RANGE);
  Status s;
  while (rc == 0 && (to.empty() || store::from_val(k) < to)) {
    // Values of sealed databases must pass their checksum (checksum.h (1)).
    auto value = store::is_sealed(db) ? store::open(db, store::from_val(k), store::from_val(v))
                                      : Result<std::string_view>(store::from_val(v));
    s = value.is_ok() ? fn(store::from_val(k), *value) : value.status();
    if (!s.is_ok()) break;
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  if (!s.is_ok()) return s;
  if (rc != 0 && rc != MDB_NOTFOUND) return store::from_mdb(rc, "scan");
  return Status::ok();
}

Status check_record(store::Store& store, MDB_txn* txn, std::string_view id_raw,
                    const store::ObjectRecord& r, uint64_t* alarms_total) {
  const ObjectId id = ObjectId::from_raw(id_raw);
  // store/keys.h (2): the object's keys start with its number.
  const std::string from = store::object_prefix(r.number), to = store::prefix_successor(from);
  auto bad = [&](const std::string& what) {
    return Status::corruption("object " + r.class_name + ":" + r.name + ": invariant (4): " + what);
  };
  uint64_t kv_keys = 0, kv_bytes = 0;
  CARREL_RETURN_IF_ERROR(
      scan(store, txn, store::Db::kKv, from, to, [&](std::string_view k, std::string_view v) {
        ++kv_keys;
        kv_bytes += k.size() - store::kPrefixBytes + v.size();
        return Status::ok();
      }));
  if (kv_keys != r.kv_keys || kv_bytes != r.kv_bytes) {
    return bad("record says " + std::to_string(r.kv_keys) + " keys / " +
               std::to_string(r.kv_bytes) + " bytes, kv holds " + std::to_string(kv_keys) + " / " +
               std::to_string(kv_bytes));
  }
  uint64_t alarms = 0;
  CARREL_RETURN_IF_ERROR(
      scan(store, txn, store::Db::kAlarms, from, to, [&](std::string_view k, std::string_view v) {
        ++alarms;
        CARREL_ASSIGN_OR_RETURN(UnixMs due, alarm::decode_due(v));
        std::string sk =
            store::schedule_key(static_cast<uint64_t>(due), id, k.substr(store::kPrefixBytes));
        MDB_val key = store::to_val(sk), val;
        if (mdb_get(txn, store.dbi(store::Db::kSchedule), &key, &val) != 0) {
          return bad("alarm '" + std::string(k.substr(store::kPrefixBytes)) +
                     "' has no timetable entry at " + std::to_string(due));
        }
        return Status::ok();
      }));
  if (alarms != r.alarms) {
    return bad("record says " + std::to_string(r.alarms) + " alarms, alarms holds " +
               std::to_string(alarms));
  }
  *alarms_total += alarms;
  uint64_t dead = 0;
  CARREL_RETURN_IF_ERROR(
      scan(store, txn, store::Db::kDead, from, to, [&](std::string_view, std::string_view) {
        ++dead;
        return Status::ok();
      }));
  if (dead != r.dead_letters) return bad("dead letter count differs");
  uint64_t pages = 0;
  CARREL_RETURN_IF_ERROR(
      scan(store, txn, store::Db::kPages, from, to, [&](std::string_view k, std::string_view) {
        ++pages;
        uint32_t n = store::read_u32(k, store::kPrefixBytes);
        if (n >= r.sql_pages) {
          return bad("page " + std::to_string(n) + " lies past sql_pages " +
                     std::to_string(r.sql_pages));
        }
        return Status::ok();
      }));
  if (pages != r.sql_pages) {
    return bad("record says " + std::to_string(r.sql_pages) + " SQL pages, pages holds " +
               std::to_string(pages));
  }
  if (r.last_seq > 0) {
    history::ChainWalk walk(txn, store.dbi(store::Db::kHistory), id, r, 0);
    auto newest = walk.next();
    if (!newest.is_ok()) return bad(newest.status().message());
    if (!*newest) return bad("no history record of its last commit " + std::to_string(r.last_seq));
  }
  return Status::ok();
}

}  // namespace

ObjectRef object(int i) {
  return ObjectRef::named(kClass, "o" + std::to_string(i));
}

std::string value(int i, uint64_t k) {
  return "turn " + std::to_string(k) + " of o" + std::to_string(i);
}

Options options(const std::string& dir, Durability durability) {
  Options o;
  o.dir = dir;
  o.durability = durability;
  o.workers = 2;
  o.map_bytes_max = uint64_t{4} << 30;
  return o;
}

Status register_class(Engine& engine, int objects) {
  return engine.register_class(kClass, [objects](const ObjectRef& ref) {
    return std::make_unique<LedgerHandler>(std::stoi(ref.name.substr(1)), objects);
  });
}

Result<std::vector<uint64_t>> read_acks(const std::string& path, int objects) {
  std::vector<uint64_t> acked(static_cast<size_t>(objects), 0);
  std::ifstream in(path, std::ios::binary);
  if (!in) return acked;  // no turn acknowledged yet
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  size_t at = 0;
  for (;;) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) break;  // torn last line, or the end
    int o = -1;
    unsigned long long k = 0;
    std::string line = text.substr(at, nl - at);
    if (std::sscanf(line.c_str(), "%d %llu", &o, &k) != 2 || o < 0 || o >= objects) {
      return Status::corruption("ack file '" + path + "' has a bad line '" + line + "'");
    }
    acked[static_cast<size_t>(o)] = std::max<uint64_t>(acked[static_cast<size_t>(o)], k);
    at = nl + 1;
  }
  return acked;
}

Status check_store(Engine& engine) {
  store::Store& store = engine.core()->store();
  CARREL_ASSIGN_OR_RETURN(store::ReadTxn txn, store.begin_read());
  uint64_t alarms = 0;
  // records.h (6): one object per number, each below meta.next_object_no.
  CARREL_ASSIGN_OR_RETURN(auto next_raw, txn.get(store::Db::kMeta, store::kNextObjectNoKey));
  const uint64_t next_no = next_raw && next_raw->size() == 8 ? store::read_u64(*next_raw, 0) : 0;
  std::set<uint64_t> numbers;
  // Every record as the engine sees it: stored, plus the log tail (history/tail.h).
  CARREL_RETURN_IF_ERROR(history::for_each_record(
      txn.get(), store, [&](const ObjectId& id, const store::ObjectRecord& r) {
        if (r.number.value == 0 || r.number.value >= next_no ||
            !numbers.insert(r.number.value).second) {
          return Status::corruption("object " + r.class_name + ":" + r.name + ": number " +
                                    std::to_string(r.number.value) +
                                    " is 0, held twice, or not below meta.next_object_no (" +
                                    std::to_string(next_no) + ")");
        }
        return check_record(store, txn.get(), id.raw(), r, &alarms);
      }));
  uint64_t scheduled = 0;
  CARREL_RETURN_IF_ERROR(
      scan(store, txn.get(), store::Db::kSchedule, {}, {}, [&](std::string_view, std::string_view) {
        ++scheduled;
        return Status::ok();
      }));
  if (scheduled != alarms) {
    return Status::corruption("invariant (4): the timetable holds " + std::to_string(scheduled) +
                              " entries for " + std::to_string(alarms) + " alarms");
  }
  return Status::ok();
}

Status check(Engine& engine, int objects, const std::vector<uint64_t>& acked, Totals* totals) {
  *totals = Totals{};
  CARREL_RETURN_IF_ERROR(wait_outbox_empty(engine));
  std::vector<ObjectState> states(static_cast<size_t>(objects));
  for (int i = 0; i < objects; ++i) {
    Status s = engine.run(object(i), [&](Context& ctx) { return read_state(ctx, &states[i]); });
    if (!s.is_ok()) return s.with_context("reading " + object(i).label());
  }
  // Deliveries may have run while the states were read: read again until the
  // outbox stays empty across a full read, so invariant (3) sees one moment.
  CARREL_ASSIGN_OR_RETURN(size_t pending,
                          count_entries(engine.core()->store(), store::Db::kOutbox));
  if (pending != 0) return check(engine, objects, acked, totals);
  for (int i = 0; i < objects; ++i) {
    CARREL_RETURN_IF_ERROR(check_object(i, states[i], acked[static_cast<size_t>(i)]));
    totals->turns += states[i].last;
  }
  CARREL_RETURN_IF_ERROR(check_messages(objects, states, totals));
  CARREL_RETURN_IF_ERROR(check_store(engine));
  CARREL_ASSIGN_OR_RETURN(size_t alarms, count_entries(engine.core()->store(), store::Db::kAlarms));
  totals->alarms = alarms;
  return Status::ok();
}

}  // namespace carrel::ledger
