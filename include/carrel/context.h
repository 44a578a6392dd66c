// carrel/context.h — what a handler sees during one turn.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "carrel/alarms.h"
#include "carrel/clock.h"
#include "carrel/connections.h"
#include "carrel/id.h"
#include "carrel/kv.h"
#include "carrel/sql.h"
#include "carrel/status.h"

namespace carrel {

namespace detail {
class Turn;
}

// The longest class name and object name carrel accepts. Both are stored in
// the object's record, its first log record and outbox messages (with the
// sender's "Class:name" label), each with a 16-bit length; a longer one is
// InvalidArgument wherever it enters (register_class, a call, a send).
inline constexpr size_t kClassNameBytesMax = 1024;
inline constexpr size_t kObjectNameBytesMax = 32 * 1024;

// Names one object: its class, its id, and (for ids made by id_from_name) its name.
struct ObjectRef {
  std::string class_name;
  ObjectId id;
  std::string name;  // empty for new_unique_id objects

  // id = id_from_name(class_name, name)
  static ObjectRef named(std::string_view class_name, std::string_view name);
  static ObjectRef of(std::string_view class_name, const ObjectId& id);
  // "Class:name", or "Class:<hex id>" when there is no name.
  std::string label() const;
};

class Context {
 public:
  const ObjectRef& object() const;
  const ObjectId& id() const { return object().id; }

  Kv& kv() { return kv_; }
  Sql& sql() { return sql_; }
  Alarms& alarms() { return alarms_; }
  Connections& connections() { return connections_; }

  // Runs fn as a nested savepoint: when fn returns an error (or throws), its KV,
  // SQL and alarm writes roll back and the error is returned; the turn goes on.
  Status transaction(const std::function<Status()>& fn);

  // A durable one-way message: stored in this turn's commit, delivered after
  // it, processed exactly once by the target (whose commit records it done).
  Status send(const ObjectRef& target, std::string_view method, std::string_view payload);

  // Calls the target and waits for its reply inside this turn. An outgoing call
  // is an output: this turn's writes so far are committed (durably) first, so a
  // later failure of this turn rolls back only what it wrote after the call.
  // Deadlock when the target is already in the call chain.
  Result<std::string> call(const ObjectRef& target, std::string_view method,
                           std::string_view payload);

  // The engine clock.
  UnixMs now_ms() const;

  // The bookmark of this object's last commit (including commits in flight).
  Result<std::string> current_bookmark();

 private:
  friend class detail::Turn;
  explicit Context(detail::Turn* turn)
      : turn_(turn), kv_(turn), sql_(turn), alarms_(turn), connections_(turn) {}
  detail::Turn* turn_;
  Kv kv_;
  Sql sql_;
  Alarms alarms_;
  Connections connections_;
};

}  // namespace carrel
