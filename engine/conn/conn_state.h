// Connections inside the engine: where they are stored, and the frames a turn holds.
//
// Invariants:
//  (1) An object's connections are stored in its own KV namespace under the
//      reserved prefix kReservedPrefix (kv/reserved.h: eight 0xff bytes,
//      "carrel.conn", a zero byte): the count at the prefix itself, one
//      record per connection at prefix ‖ id (big endian). They commit with
//      the turn that wrote them; users cannot name these keys (kv.cc refuses
//      them and lists around them).
//  (2) A frame sent in a turn is held in that turn's ConnTurnState and counted
//      in the hub's held bytes of its connection until the turn's commit
//      completes: ok releases it to the transport, in send order; anything
//      else (a failed turn, a failed commit) drops it. Every held byte is
//      given back exactly once, by release() or drop().
//  (3) held bytes + the transport's queued bytes of a connection never exceed
//      Options::connection_queued_bytes_max because of a send: hold() refuses
//      the frame instead.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "carrel/connections.h"
#include "carrel/options.h"
#include "engine/base/mutex.h"
#include "engine/commit/batch.h"
#include "engine/kv/reserved.h"
#include "engine/loop/turn_connections.h"

namespace carrel::detail {

class Turn;

// InvalidArgument naming connection_frame_bytes_max for a frame of n bytes over it.
Status check_frame_bytes(const Options& o, size_t n);
std::string conn_record_key(ConnectionId id);
std::string encode_conn_record(const ConnectionInfo& info);
Result<ConnectionInfo> decode_conn_record(ConnectionId id, std::string_view bytes);

struct HeldFrame {
  ConnectionId id = 0;
  bool close = false;  // a close frame (code, data = reason) instead of a message
  FrameKind kind = FrameKind::kText;
  int code = 0;
  std::string data;
};

// What one turn did to connections that is not a KV write.
struct ConnTurnState {
  ConnectionHub::Impl* hub = nullptr;
  std::optional<ConnectionId> connecting;  // the connect turn's id, until accepted
  bool accepted = false;
  std::vector<HeldFrame> frames;  // invariant (2)

  ~ConnTurnState();
  // The turn's state behind ctx.connections(), made on first use.
  static ConnTurnState& of(Connections& c) { return c.state(); }
  // Moves the turn's frames into one output of its commit.
  static bool hand_over(Connections& c, std::vector<Completion>& outputs);

  // A savepoint's mark and its roll back (engine/loop/turn_connections.h).
  using Mark = ConnectionsMark;
  static Mark mark(Connections& c);
  static void roll_back_to(Connections& c, const Mark& m, const Status& why);
};

}  // namespace carrel::detail

namespace carrel {

struct ConnectionHub::Impl {
  detail::EngineCore* core = nullptr;
  const Options* options = nullptr;
  uint64_t id_high = 0;
  std::atomic<uint64_t> id_counter{0};

  mutable Mutex mutex;
  std::shared_ptr<ConnectionTransport> transport GUARDED_BY(mutex);
  std::unordered_map<ConnectionId, size_t> held GUARDED_BY(mutex);

  std::atomic<uint64_t> accepted{0}, closed{0}, frames_sent{0}, frames_dropped{0}, sends_refused{0},
      held_bytes{0};

  std::shared_ptr<ConnectionTransport> current_transport() const;
  // Invariant (3): counts n more bytes for id, or Busy naming the limit.
  Status hold(ConnectionId id, size_t n);
  void unhold(ConnectionId id, size_t n);
  void release(std::vector<detail::HeldFrame>& frames, const Status& commit);
};

}  // namespace carrel
