// A sealed turn, on its way to the committer.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "carrel/context.h"
#include "carrel/status.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"

namespace carrel::detail {

// What the committer reads and reports of the object a batch came from
// (committer.h (3), (4)). commit/ owns it and the loop's ObjectSlot derives
// from it, so commit/ never includes loop/.
struct CommitProgress {
  std::atomic<uint64_t> generation{0};   // bumped by the committer on a failed commit
  std::atomic<uint64_t> durable_seq{0};  // set by the committer after each commit
  std::atomic<uint64_t> sealed_seq{0};   // set by the worker that seals; >= durable_seq
};

// A durable one-way message between objects (ctx.send).
struct OutMessage {
  ObjectRef target;
  std::string method;
  std::string payload;
  std::string sender;  // the sender's label, for tools
};

// Runs after the batch's commit: ok once it is durable, or the failure.
using Completion = std::function<void(const Status&)>;

// Values arrive sealed and shared with the sealing object's pending overlay
// (store/checksum.h (4)); a null value is a delete.
template <typename K>
using WriteList = std::vector<std::pair<K, store::SealedBytes>>;

struct CommitBatch {
  std::shared_ptr<CommitProgress> slot;
  ObjectRef object;
  store::ObjectNo object_no;  // the prefix of its keys (store/keys.h (2)); set when seq != 0
  uint64_t generation = 0;  // the slot's generation when sealed; stale batches fail
  uint64_t seq = 0;         // the object's commit sequence; 0: the batch only carries outputs
  int64_t commit_ms = 0;    // commit time (engine clock at seal; never below the previous)

  bool kv_cleared = false;                   // delete_all() before the kv writes
  WriteList<std::string> kv;                 // user key -> value (null: delete)
  WriteList<std::string> alarms;             // alarm name -> encoded AlarmEntry
  WriteList<std::string> dead;               // alarm name -> encoded DeadLetter
  WriteList<uint32_t> pages;                 // SQL page images (null: truncated away)
  std::optional<uint32_t> sql_pages;         // new SQL file length in pages
  std::vector<OutMessage> messages;          // ctx.send() of this turn
  std::optional<uint64_t> consumed_message;  // outbox entry this turn processed
  std::optional<uint64_t> restore_to_seq;    // Engine::restore: undo commits after this seq

  std::vector<Completion> outputs;  // released in order after the commit

  bool has_writes() const {
    return seq != 0;
  }
  size_t bytes() const {
    size_t n = 0;
    for (auto& [k, v] : kv) n += k.size() + (v ? v->size() : 0);
    for (auto& [k, v] : alarms) n += k.size() + (v ? v->size() : 0);
    for (auto& p : pages) n += p.second ? p.second->size() : 0;
    for (auto& m : messages) n += m.payload.size() + m.method.size();
    return n;
  }
};

}  // namespace carrel::detail
