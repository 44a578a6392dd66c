// Inspection commands: objects, show, kv get / list, alarms list, history,
// bookmark, stats. All read one snapshot of a read-only environment
// (invariant (1) of cli.h).
#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <unordered_map>

#include "engine/alarm/entry.h"
#include "engine/history/bookmark.h"
#include "engine/history/tail.h"
#include "engine/history/undo.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/object_record.h"
#include "tools/cli/cli.h"
#include "tools/cli/output.h"
#include "tools/cli/scan.h"

namespace carrel::cli {

Result<Inspection> inspect(const Globals& g, const std::string* obj) {
  Inspection in;
  CARREL_ASSIGN_OR_RETURN(in.engine, open_engine(g, /*read_only=*/true));
  in.store = &store_of(*in.engine);
  if (obj != nullptr) {
    CARREL_ASSIGN_OR_RETURN(ObjectSpec spec, parse_object(*obj));
    CARREL_ASSIGN_OR_RETURN(in.object, resolve_object(*in.store, spec, /*must_exist=*/true));
  }
  CARREL_ASSIGN_OR_RETURN(in.txn, in.store->begin_read());
  return in;
}

namespace {

using store::Db;

// Walks the object's history chain newest first (history/undo.h (3)) in the
// inspection's snapshot, calling f on each record until f returns false.
// Records the engine's per-object cap hides but retention has not deleted yet
// are listed: the cap is an engine option, not stored.
Status walk_history(const Inspection& in,
                    const std::function<bool(const history::ChainWalk::Step&)>& f) {
  const ObjectId& id = in.object.ref.id;
  if (!in.object.record) return Status::ok();
  const store::ObjectRecord& r = *in.object.record;  // with the log tail (history/tail.h)
  history::ChainWalk walk(in.txn.get(), in.store->dbi(Db::kHistory), id, r, 0);
  for (;;) {
    if (stop_requested()) return Status::aborted("walk history: " + stop_reason());
    CARREL_ASSIGN_OR_RETURN(auto step, walk.next());
    if (!step || !f(*step)) return Status::ok();
  }
}

std::string label_of(const store::ObjectRecord& r, const ObjectId& id) {
  return r.class_name + ":" + (r.name.empty() ? id.to_hex() : r.name);
}

std::string repeat_text(const Repeat& r) {
  switch (r.kind) {
    case Repeat::Kind::kEvery:
      return "every " + std::to_string(r.every_ms) + " ms";
    case Repeat::Kind::kCron:
      return "cron " + r.cron;
    default:
      return "-";
  }
}

void repeat_json(JsonWriter& j, const Repeat& r) {
  j.key("repeat").begin_object();
  switch (r.kind) {
    case Repeat::Kind::kEvery:
      j.field("kind", "every").field("every_ms", r.every_ms);
      break;
    case Repeat::Kind::kCron:
      j.field("kind", "cron").field("cron", r.cron);
      break;
    default:
      j.field("kind", "none");
      break;
  }
  j.end_object();
}

// Shortens a table cell to max display characters.
std::string clip(std::string s, size_t max = 60) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<uint8_t>(s[i]) & 0xc0) == 0x80) continue;
    if (++chars > max) return s.substr(0, i) + "...";
  }
  return s;
}

void record_json(JsonWriter& j, const ObjectId& id, const store::ObjectRecord& r,
                 uint32_t page_bytes) {
  j.field("id", id.to_hex()).field("class", r.class_name).field("name", r.name);
  j.field("label", label_of(r, id)).field("number", r.number.value);
  j.field("created_ms", r.created_ms).field("created", format_time(r.created_ms));
  j.field("last_seq", r.last_seq);
  j.field("last_commit_ms", r.last_commit_ms).field("last_commit", format_time(r.last_commit_ms));
  j.field("kv_keys", r.kv_keys).field("kv_bytes", r.kv_bytes);
  j.field("sql_pages", r.sql_pages)
      .field("sql_bytes", static_cast<uint64_t>(r.sql_pages) * page_bytes);
  j.field("alarms", r.alarms).field("dead_letters", r.dead_letters);
}

}  // namespace

int cmd_objects(const Globals& g, const std::optional<std::string>& class_name,
                std::optional<size_t> limit) {
  auto in = inspect(g, nullptr);
  if (!in.is_ok()) return fail(in.status());
  // Records the engine has not checkpointed yet: the log tail rebuilds them
  // (history/tail.h); every object has a stored record from its creation on
  // (commit/records.h (5)).
  auto tail = history::tail_records(in->txn.get(), *in->store);
  if (!tail.is_ok()) return fail(tail.status());
  auto cur = ScanCursor::open(*in->store, in->txn, Db::kObjects);
  if (!cur.is_ok()) return fail(cur.status());
  uint32_t page_bytes = in->store->sql_page_bytes();
  Table t({"ID", "CLASS", "NAME", "KV KEYS", "KV BYTES", "SQL BYTES", "ALARMS", "LAST COMMIT"});
  for (size_t c : {3, 4, 5, 6}) t.align_right(c);
  size_t shown = 0;
  for (bool ok = cur->first(); ok && (!limit || shown < *limit); ok = cur->next()) {
    ObjectId id = ObjectId::from_raw(cur->key());
    auto r = store::ObjectRecord::decode(cur->value());
    if (!r.is_ok()) return fail(r.status().with_context("object " + id.to_hex()));
    if (auto it = tail->find(id); it != tail->end()) *r = it->second;
    if (class_name && r->class_name != *class_name) continue;
    ++shown;
    if (g.json) {
      JsonWriter j;
      j.begin_object();
      record_json(j, id, *r, page_bytes);
      j.end_object().print_line();
      continue;
    }
    t.add({id.to_hex(), display_bytes(r->class_name), clip(display_bytes(r->name), 40),
           std::to_string(r->kv_keys), format_bytes(r->kv_bytes),
           format_bytes(static_cast<uint64_t>(r->sql_pages) * page_bytes),
           std::to_string(r->alarms), format_time(r->last_commit_ms)});
  }
  if (!cur->status().is_ok()) return fail(cur->status());
  if (!g.json) {
    if (t.size() == 0) {
      std::cout << "no objects" << (class_name ? " of class " + *class_name : "") << '\n';
    } else {
      t.print();
    }
  }
  return kExitOk;
}

int cmd_show(const Globals& g, const std::string& obj) {
  auto in = inspect(g, &obj);
  if (!in.is_ok()) return fail(in.status());
  const ObjectRef& ref = in->object.ref;
  const store::ObjectRecord& r = *in->object.record;
  uint32_t page_bytes = in->store->sql_page_bytes();
  // The retained history: the oldest record of this object.
  uint64_t history_records = 0, oldest_seq = 0;
  int64_t oldest_ms = 0;
  Status walked = walk_history(*in, [&](const history::ChainWalk::Step& step) {
    ++history_records;
    oldest_ms = step.header.time_ms;
    oldest_seq = step.header.seq;
    return true;
  });
  if (!walked.is_ok()) return fail(walked.with_context("history of " + ref.label()));
  std::string bookmark = history::Bookmark{r.last_commit_ms, r.last_seq, ref.id}.to_string();
  if (g.json) {
    JsonWriter j;
    j.begin_object();
    record_json(j, ref.id, r, page_bytes);
    j.field("bookmark", bookmark);
    j.field("history_records", history_records).field("history_oldest_seq", oldest_seq);
    j.field("history_oldest_ms", oldest_ms);
    j.end_object().print_line();
    return kExitOk;
  }
  auto row = [](std::string_view k, const std::string& v) {
    std::cout << k << std::string(k.size() < 14 ? 14 - k.size() : 1, ' ') << v << '\n';
  };
  row("object", display_bytes(ref.label()));
  row("id", ref.id.to_hex());
  row("number", std::to_string(r.number.value) + " (the prefix of its keys)");
  row("class", display_bytes(r.class_name));
  row("name", r.name.empty() ? "-" : display_bytes(r.name));
  row("created", format_time(r.created_ms));
  row("last commit", format_time(r.last_commit_ms) + " (seq " + std::to_string(r.last_seq) + ")");
  row("bookmark", bookmark);
  row("kv", count_of(r.kv_keys, "key", "keys") + ", " + format_bytes(r.kv_bytes));
  row("sql", count_of(r.sql_pages, "page", "pages") + ", " +
                 format_bytes(static_cast<uint64_t>(r.sql_pages) * page_bytes));
  row("alarms", std::to_string(r.alarms) + " scheduled, " +
                    count_of(r.dead_letters, "dead letter", "dead letters"));
  row("history", history_records == 0
                     ? std::string("none retained")
                     : count_of(history_records, "commit", "commits") + " retained, oldest seq " +
                           std::to_string(oldest_seq) + " at " + format_time(oldest_ms));
  return kExitOk;
}

int cmd_kv_get(const Globals& g, const std::string& obj, const std::string& key, bool raw) {
  auto in = inspect(g, &obj);
  if (!in.is_ok()) return fail(in.status());
  const ObjectRef& ref = in->object.ref;
  auto v = store::read_sealed(in->txn, Db::kKv, store::object_key(in->object.number(), key));
  if (!v.is_ok()) return fail(v.status().with_context("object " + ref.id.to_hex()));
  if (!*v) {
    return fail("key '" + display_bytes(key) + "' not found in object " +
                display_bytes(ref.label()));
  }
  std::string_view value = **v;
  if (g.json) {
    JsonWriter j;
    j.begin_object().field("object", ref.label()).field("id", ref.id.to_hex());
    j.bytes_field("key", key).bytes_field("value", value);
    j.field("bytes", static_cast<uint64_t>(value.size())).end_object().print_line();
  } else if (raw) {
    std::cout.write(value.data(), static_cast<std::streamsize>(value.size()));
  } else {
    // Valid UTF-8 prints as is (newlines included); anything else escaped.
    std::cout << (is_valid_utf8(value) ? std::string(value) : display_bytes(value)) << '\n';
  }
  return kExitOk;
}

int cmd_kv_list(const Globals& g, const std::string& obj, const KvListArgs& a) {
  if (a.start && a.start_after) return fail("kv list: give --start or --start-after, not both");
  if (a.limit && *a.limit == 0) return fail("kv list: --limit must be > 0");
  auto in = inspect(g, &obj);
  if (!in.is_ok()) return fail(in.status());
  const ObjectRef& ref = in->object.ref;
  // [lo, hi) on user keys, as Kv::list computes it.
  std::string lo = a.start ? *a.start : a.start_after ? *a.start_after + std::string(1, '\0') : "";
  std::optional<std::string> hi = a.end;
  if (a.prefix) {
    lo = std::max(lo, *a.prefix);
    std::string succ = store::prefix_successor(*a.prefix);
    if (!succ.empty() && (!hi || succ < *hi)) hi = succ;
  }
  std::string id = store::object_prefix(in->object.number());
  auto cur = ScanCursor::open(*in->store, in->txn, Db::kKv);
  if (!cur.is_ok()) return fail(cur.status());
  auto in_range = [&](std::string_view k) {
    if (!k.starts_with(id)) return false;
    std::string_view user = k.substr(store::kPrefixBytes);
    return user >= lo && (!hi || user < *hi);
  };
  bool ok;
  if (!a.reverse) {
    ok = cur->seek(id + lo);
  } else {
    std::string upper = hi ? id + *hi : store::prefix_successor(id);
    ok = upper.empty() ? cur->last() : (cur->seek(upper) ? cur->prev() : cur->last());
  }
  Table t({"KEY", "VALUE", "BYTES"});
  t.align_right(2);
  size_t n = 0;
  for (; ok && in_range(cur->key()) && (!a.limit || n < *a.limit);
       ok = a.reverse ? cur->prev() : cur->next()) {
    ++n;
    std::string_view key = cur->key().substr(store::kPrefixBytes);
    auto value = cur->opened();
    if (!value.is_ok()) return fail(value.status().with_context("object " + ref.id.to_hex()));
    if (g.json) {
      JsonWriter j;
      j.begin_object().bytes_field("key", key).bytes_field("value", *value);
      j.field("bytes", static_cast<uint64_t>(value->size())).end_object().print_line();
    } else {
      t.add({clip(display_bytes(key)), clip(display_bytes(*value)), std::to_string(value->size())});
    }
  }
  if (!cur->status().is_ok()) return fail(cur->status());
  if (!g.json) {
    if (n == 0)
      std::cout << "no keys\n";
    else
      t.print();
  }
  return kExitOk;
}

int cmd_alarms_list(const Globals& g, const std::optional<std::string>& obj, bool dead,
                    std::optional<size_t> limit) {
  auto in = inspect(g, obj ? &*obj : nullptr);
  if (!in.is_ok()) return fail(in.status());
  std::string prefix = obj ? store::object_prefix(in->object.number()) : std::string();
  // The records as the engine sees them (stored plus the log tail), read as
  // every other inspection reads them: a log tail that does not read fails
  // the listing too, instead of a list that only looks whole.
  auto tail = history::tail_records(in->txn.get(), *in->store);
  if (!tail.is_ok()) return fail(tail.status());
  // Keys name their object by number (store/keys.h (2)); `objects` holds
  // every object's from its creation on (records.h (5)).
  std::unordered_map<uint64_t, ObjectId> ids;
  if (obj) {
    ids.emplace(in->object.number().value, in->object.ref.id);
  } else {
    auto objects = ScanCursor::open(*in->store, in->txn, Db::kObjects);
    if (!objects.is_ok()) return fail(objects.status());
    for (bool ok = objects->first(); ok; ok = objects->next()) {
      auto r = store::ObjectRecord::decode(objects->value());
      if (objects->key().size() != store::kIdBytes || !r.is_ok()) {
        return fail("objects: the record under key " + store::key_hex(objects->key()) +
                    " does not read; run `carrel verify`");
      }
      ids.emplace(r->number.value, ObjectId::from_raw(objects->key()));
    }
    if (!objects->status().is_ok()) return fail(objects->status());
  }
  auto cur = ScanCursor::open(*in->store, in->txn, dead ? Db::kDead : Db::kAlarms);
  if (!cur.is_ok()) return fail(cur.status());
  struct Row {
    ObjectId id;
    DeadLetter d;  // d.entry for a live alarm
  };
  std::vector<Row> rows;
  for (bool ok = cur->seek(prefix); ok && cur->key().substr(0, prefix.size()) == prefix;
       ok = cur->next()) {
    Row row;
    if (cur->key().size() < store::kPrefixBytes) {
      return fail("alarms: key " + store::key_hex(cur->key()) +
                  " is too short; run `carrel verify`");
    }
    auto owner = ids.find(store::prefix_of(cur->key()).value);
    if (owner == ids.end()) {
      return fail("alarms: an entry of object number " +
                  std::to_string(store::prefix_of(cur->key()).value) +
                  ", which no object record holds; run `carrel verify`");
    }
    row.id = owner->second;
    std::string_view name = cur->key().substr(store::kPrefixBytes);
    auto value = cur->opened();
    if (!value.is_ok()) return fail(value.status().with_context("object " + row.id.to_hex()));
    if (dead) {
      auto d = alarm::decode_dead(name, *value);
      if (!d.is_ok()) return fail(d.status().with_context("object " + row.id.to_hex()));
      row.d = std::move(*d);
    } else {
      auto e = alarm::decode_entry(name, *value);
      if (!e.is_ok()) return fail(e.status().with_context("object " + row.id.to_hex()));
      row.d.entry = std::move(*e);
    }
    rows.push_back(std::move(row));
  }
  if (!cur->status().is_ok()) return fail(cur->status());
  std::stable_sort(rows.begin(), rows.end(), [&](const Row& x, const Row& y) {
    return dead ? x.d.failed_ms < y.d.failed_ms : x.d.entry.due_ms < y.d.entry.due_ms;
  });
  if (limit && rows.size() > *limit) rows.resize(*limit);  // the soonest (or oldest) N
  std::map<ObjectId, std::string> labels;
  auto label = [&](const ObjectId& id) {
    auto it = labels.find(id);
    if (it != labels.end()) return it->second;
    std::string l = id.to_hex();
    if (auto t = tail->find(id); t != tail->end()) return labels[id] = label_of(t->second, id);
    auto raw = in->txn.get(Db::kObjects, id.raw());
    if (raw.is_ok() && *raw) {
      if (auto r = store::ObjectRecord::decode(**raw); r.is_ok()) l = label_of(*r, id);
    }
    return labels[id] = l;
  };
  Table t(dead ? std::vector<std::string>{"OBJECT", "NAME", "FAILED", "DUE", "RETRIES", "ERROR"}
               : std::vector<std::string>{"OBJECT", "NAME", "DUE", "REPEAT", "RETRIES", "PAYLOAD"});
  t.align_right(4);
  for (const Row& row : rows) {
    const AlarmEntry& e = row.d.entry;
    if (g.json) {
      JsonWriter j;
      j.begin_object().field("object", label(row.id)).field("id", row.id.to_hex());
      j.bytes_field("name", e.name).field("due_ms", e.due_ms).field("due", format_time(e.due_ms));
      repeat_json(j, e.repeat);
      j.field("retries", e.retry_count).bytes_field("payload", e.payload);
      if (dead) {
        j.field("failed_ms", row.d.failed_ms).field("failed", format_time(row.d.failed_ms));
        j.field("last_error", row.d.last_error);
      }
      j.end_object().print_line();
      continue;
    }
    std::string name = e.name.empty() ? "(single)" : clip(display_bytes(e.name), 40);
    if (dead) {
      t.add({display_bytes(label(row.id)), name, format_time(row.d.failed_ms),
             format_time(e.due_ms), std::to_string(e.retry_count),
             clip(display_bytes(row.d.last_error))});
    } else {
      t.add({display_bytes(label(row.id)), name, format_time(e.due_ms), repeat_text(e.repeat),
             std::to_string(e.retry_count), clip(display_bytes(e.payload), 40)});
    }
  }
  if (!g.json) {
    if (rows.empty())
      std::cout << (dead ? "no dead letters\n" : "no alarms\n");
    else
      t.print();
  }
  return kExitOk;
}

int cmd_history(const Globals& g, const std::string& obj, std::optional<size_t> limit) {
  if (limit && *limit == 0) return fail("history: --limit must be > 0");
  auto in = inspect(g, &obj);
  if (!in.is_ok()) return fail(in.status());
  const ObjectRef& ref = in->object.ref;
  Table t({"SEQ", "TIME", "BOOKMARK", "CHANGED"});
  t.align_right(0);
  size_t n = 0;
  Status failed = Status::ok();
  Status walked = walk_history(*in, [&](const history::ChainWalk::Step& step) {
    if (limit && n >= *limit) return false;
    ++n;
    auto u = history::LogRecord::decode(step.bytes);
    if (!u.is_ok()) {
      failed = u.status();
      return false;
    }
    std::vector<std::string> kv, alarms, dead;
    size_t pages = 0;
    for (const history::UndoEntry& e : u->undo) {
      // store/keys.h (2): what follows the object's number.
      std::string_view suffix =
          std::string_view(e.key).substr(std::min(e.key.size(), store::kPrefixBytes));
      switch (e.db) {
        case Db::kKv:
          kv.emplace_back(suffix);
          break;
        case Db::kPages:
          ++pages;
          break;
        case Db::kAlarms:
          alarms.emplace_back(suffix);
          break;
        case Db::kDead:
          dead.emplace_back(suffix);
          break;
        default:
          break;
      }
    }
    const history::LogHeader& h = u->header;
    std::string bookmark = history::Bookmark{h.time_ms, h.seq, ref.id}.to_string();
    if (g.json) {
      JsonWriter j;
      j.begin_object().field("seq", h.seq).field("time_ms", h.time_ms);
      j.field("time", format_time(h.time_ms)).field("bookmark", bookmark);
      auto list = [&](std::string_view k, const std::vector<std::string>& v) {
        j.key(k).begin_array();
        for (const auto& s : v) j.text(display_bytes(s));
        j.end_array();
      };
      list("kv_keys", kv);
      j.field("sql_pages", static_cast<uint64_t>(pages));
      j.field("sql_pages_before", u->sql_pages_before);
      list("alarms", alarms);
      list("dead_letters", dead);
      j.end_object().print_line();
      return true;
    }
    auto names = [](const std::vector<std::string>& v) {
      std::string s;
      for (size_t i = 0; i < v.size() && i < 3; ++i) {
        s += (i ? ", " : "") +
             (v[i].empty() ? std::string("(single)") : clip(display_bytes(v[i]), 20));
      }
      if (v.size() > 3) s += ", ...";
      return s;
    };
    std::vector<std::string> parts;
    if (!kv.empty()) parts.push_back("kv: " + names(kv));
    if (pages > 0) parts.push_back("sql: " + count_of(pages, "page", "pages"));
    if (!alarms.empty()) parts.push_back("alarms: " + names(alarms));
    if (!dead.empty()) parts.push_back("dead letters: " + names(dead));
    std::string changed;
    for (const auto& p : parts) changed += (changed.empty() ? "" : "; ") + p;
    t.add(
        {std::to_string(h.seq), format_time(h.time_ms), bookmark, changed.empty() ? "-" : changed});
    return true;
  });
  if (walked.is_ok()) walked = failed;
  if (!walked.is_ok()) return fail(walked.with_context("history of " + ref.label()));
  if (!g.json) {
    if (n == 0)
      std::cout << "no history retained for " << display_bytes(ref.label()) << '\n';
    else
      t.print();
  }
  return kExitOk;
}

int cmd_bookmark(const Globals& g, const std::string& obj, const std::optional<std::string>& at) {
  std::optional<UnixMs> t;
  if (at) {
    auto parsed = parse_time(*at);
    if (!parsed.is_ok()) return fail(parsed.status());
    t = *parsed;
  }
  auto in = inspect(g, &obj);
  if (!in.is_ok()) return fail(in.status());
  const ObjectRef& ref = in->object.ref;
  in->txn.release();  // the engine reads its own snapshot
  auto b = t ? in->engine->bookmark_for_time(ref, *t) : in->engine->current_bookmark(ref);
  if (!b.is_ok()) return fail(b.status());
  auto parsed = history::Bookmark::parse(*b);
  if (!parsed.is_ok()) return fail(parsed.status());
  if (g.json) {
    JsonWriter j;
    j.begin_object().field("object", ref.label()).field("bookmark", *b);
    j.field("seq", parsed->seq).field("time_ms", parsed->time_ms);
    j.field("time", format_time(parsed->time_ms));
    if (t) j.field("at_ms", *t);
    j.end_object().print_line();
  } else {
    std::cout << *b << '\n';
  }
  return kExitOk;
}

int cmd_stats(const Globals& g) {
  auto in = inspect(g, nullptr);
  if (!in.is_ok()) return fail(in.status());
  store::Store& st = *in->store;
  MDB_envinfo info{};
  MDB_stat env_stat{};
  mdb_env_info(st.env(), &info);
  mdb_env_stat(st.env(), &env_stat);
  uint64_t objects = 0, kv_keys = 0, kv_bytes = 0, sql_pages = 0, alarms = 0, dead = 0;
  Status counted = history::for_each_record(
      in->txn.get(), st, [&](const ObjectId&, const store::ObjectRecord& r) {
        if (stop_requested()) return Status::aborted("stats: " + stop_reason());
        ++objects, kv_keys += r.kv_keys, kv_bytes += r.kv_bytes, sql_pages += r.sql_pages;
        alarms += r.alarms, dead += r.dead_letters;
        return Status::ok();
      });
  if (!counted.is_ok()) return fail(counted);
  struct DbFigures {
    std::string_view name;
    MDB_stat s;
  };
  std::vector<DbFigures> dbs;
  for (size_t i = 0; i < store::kDbCount; ++i) {
    DbFigures f{store::db_name(static_cast<Db>(i)), {}};
    int rc = mdb_stat(in->txn.get(), st.dbi(static_cast<Db>(i)), &f.s);
    if (rc != 0) return fail(store::from_mdb(rc, "stat " + std::string(f.name)));
    dbs.push_back(f);
  }
  uint64_t page = env_stat.ms_psize;
  uint64_t used_bytes = (static_cast<uint64_t>(info.me_last_pgno) + 1) * page;
  uint64_t sql_bytes = sql_pages * st.sql_page_bytes();
  // data.mdb may run on past LMDB's last committed page (pages of a commit
  // that failed after writing them; the file never shrinks).
  std::error_code size_error;
  const uint64_t file_bytes = std::filesystem::file_size(st.dir() + "/data.mdb", size_error);
  if (size_error) {
    return fail(Status::io_error("stat '" + st.dir() + "/data.mdb': " + size_error.message()));
  }
  const uint64_t ahead_bytes = file_bytes > used_bytes ? file_bytes - used_bytes : 0;
  if (g.json) {
    JsonWriter j;
    j.begin_object().field("dir", st.dir()).field("objects", objects);
    j.field("kv_keys", kv_keys).field("kv_bytes", kv_bytes);
    j.field("sql_pages", sql_pages).field("sql_bytes", sql_bytes);
    j.field("sql_page_bytes", st.sql_page_bytes());
    j.field("alarms", alarms).field("dead_letters", dead);
    j.field("map_bytes", static_cast<uint64_t>(info.me_mapsize)).field("used_bytes", used_bytes);
    j.field("file_bytes", file_bytes);
    j.field("lmdb_page_bytes", page)
        .field("last_txn_id", static_cast<uint64_t>(info.me_last_txnid));
    j.field("readers", static_cast<uint64_t>(info.me_numreaders));
    j.field("readers_max", static_cast<uint64_t>(info.me_maxreaders));
    j.field("dead_readers_cleared", static_cast<uint64_t>(st.dead_readers_at_open()));
    j.key("databases").begin_object();
    for (const auto& f : dbs) {
      j.key(f.name).begin_object();
      j.field("entries", static_cast<uint64_t>(f.s.ms_entries));
      j.field("depth", static_cast<uint64_t>(f.s.ms_depth));
      uint64_t pages = f.s.ms_branch_pages + f.s.ms_leaf_pages + f.s.ms_overflow_pages;
      j.field("pages", pages).field("bytes", pages * page).end_object();
    }
    j.end_object().end_object().print_line();
    return kExitOk;
  }
  std::cout << "directory     " << st.dir() << '\n'
            << "objects       " << objects << '\n'
            << "kv            " << count_of(kv_keys, "key", "keys") << ", "
            << format_bytes(kv_bytes) << '\n'
            << "sql           " << count_of(sql_pages, "page", "pages") << " of "
            << st.sql_page_bytes() << " B, " << format_bytes(sql_bytes) << '\n'
            << "alarms        " << alarms << " scheduled, "
            << count_of(dead, "dead letter", "dead letters") << '\n'
            << "lmdb          " << format_bytes(used_bytes) << " used of a "
            << format_bytes(info.me_mapsize) << " map, last txn " << info.me_last_txnid << ", "
            << count_of(info.me_numreaders, "reader slot", "reader slots") << " used ("
            << st.dead_readers_at_open()
            << " of dead processes freed now)\n"
            << "file          " << format_bytes(file_bytes) << " data.mdb";
  if (ahead_bytes > 0) {
    std::cout << ", " << format_bytes(ahead_bytes) << " of it past the last committed page";
  }
  std::cout << "\n\n";
  Table t({"DATABASE", "ENTRIES", "DEPTH", "PAGES", "SIZE"});
  for (size_t c : {1, 2, 3, 4}) t.align_right(c);
  for (const auto& f : dbs) {
    uint64_t pages = f.s.ms_branch_pages + f.s.ms_leaf_pages + f.s.ms_overflow_pages;
    t.add({std::string(f.name), std::to_string(f.s.ms_entries), std::to_string(f.s.ms_depth),
           std::to_string(pages), format_bytes(pages * page)});
  }
  t.print();
  return kExitOk;
}

}  // namespace carrel::cli
