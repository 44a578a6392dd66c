// carrel/connections.h — hibernatable connections (WebSocket-like), transport-agnostic.
//
// An object accepts a connection in a turn (Handler::on_connect), with tags and
// a small attachment that are stored with the object's state, in that turn's
// commit. The embedder's transport (a WebSocket server, a test harness) owns
// the sockets and delivers what happens on them as turns on the object:
// Handler::on_connection_message, on_connection_close, on_connection_error. An
// idle object is evicted like any other; its connections stay with the
// transport, and the next message wakes it with the attachments intact.
//
// In a turn, ctx.connections() lists the object's connections (all or by tag),
// updates attachments, sends to one, broadcasts, closes one. Outbound frames
// are held by the output gate: they reach the transport only after the turn's
// commit is durable, in order per connection; the frames of a turn that fails,
// or whose commit fails, are dropped.
//
// After an engine restart the embedder calls ConnectionHub::reconcile(): every
// stored connection the transport no longer holds is reported closed to its
// object (code 1006), so state never refers to a socket that is gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "carrel/status.h"

namespace carrel {

namespace detail {
class Turn;
class EngineCore;
struct ConnTurnState;
}  // namespace detail
struct ObjectRef;

// Chosen by the transport (ConnectionHub::new_id()); unique within an engine directory.
using ConnectionId = uint64_t;

enum class FrameKind : uint8_t { kText, kBinary };

// WebSocket close codes carrel itself uses.
inline constexpr int kCloseNormal = 1000;
inline constexpr int kCloseGoingAway = 1001;
inline constexpr int kCloseAbnormal = 1006;  // reported, never sent: the peer is gone
inline constexpr int kClosePolicy = 1008;
inline constexpr int kCloseTooBig = 1009;
inline constexpr int kCloseInternal = 1011;
inline constexpr int kCloseTryAgain = 1013;

struct ConnectionInfo {
  ConnectionId id = 0;
  std::vector<std::string> tags;
  std::string attachment;
};

// What on_connect sees: the connection's id and what the transport passed
// along (carrel-serve: the request path and query).
struct ConnectRequest {
  ConnectionId id = 0;
  std::string payload;
};

struct ConnectionMessage {
  ConnectionId id = 0;
  FrameKind kind = FrameKind::kText;
  std::string data;
};

struct ConnectionClose {
  ConnectionId id = 0;
  int code = kCloseNormal;
  std::string reason;
};

// The embedder's side of the sockets. The engine calls it after a commit is
// durable, on the thread that made the commit: the committer's, or (nosync)
// that of an Engine::run or call_blocking caller whose turn's commit it made
// itself. Calls must not block. For one connection, calls come in the order
// the object's turns committed.
class ConnectionTransport {
 public:
  virtual ~ConnectionTransport() = default;
  // Queue a frame for the peer.
  virtual void send(ConnectionId id, FrameKind kind, std::string data) = 0;
  // Close the connection with a close frame. The transport then reports the
  // close back (ConnectionHub::closed), which the object sees only when the
  // connection is still stored (a turn's own close() removes it at once).
  virtual void close(ConnectionId id, int code, std::string reason) = 0;
  // Bytes sent but not yet written to the peer (0 for an unknown id). A send
  // that would make these plus the frames the engine holds exceed
  // Options::connection_queued_bytes_max is refused.
  virtual size_t queued_bytes(ConnectionId id) = 0;
  // Whether the connection is still open (reconcile() asks after a restart).
  virtual bool holds(ConnectionId id) = 0;
};

// ctx.connections(): the object's connections, during one turn.
class Connections {
 public:
  ~Connections();
  // In on_connect only: accept the connection being opened, with at most
  // Options::connection_tags_max tags and an attachment of at most
  // Options::connection_attachment_bytes_max bytes. Busy past
  // Options::connections_per_object_max.
  Status accept(std::vector<std::string> tags = {}, std::string attachment = {});
  // The object's connections, by id; with a tag, only those that carry it.
  Result<std::vector<ConnectionInfo>> list(std::string_view tag = {});
  // NotFound for an id the object does not hold.
  Result<ConnectionInfo> get(ConnectionId id);
  Status set_attachment(ConnectionId id, std::string attachment);
  // Held until this turn's commit is durable. InvalidArgument past
  // Options::connection_frame_bytes_max; Busy when the connection's queue
  // would pass Options::connection_queued_bytes_max (a slow reader).
  Status send(ConnectionId id, std::string_view data, FrameKind kind = FrameKind::kText);
  // Sends to every connection (with a tag: those carrying it). Connections
  // whose queue is full are skipped; returns how many got the frame.
  Result<size_t> broadcast(std::string_view data, std::string_view tag = {},
                           FrameKind kind = FrameKind::kText);
  // Removes the connection in this turn; the close frame follows the turn's
  // other frames once the commit is durable.
  Status close(ConnectionId id, int code = kCloseNormal, std::string_view reason = {});

 private:
  friend class Context;
  friend class detail::Turn;
  friend struct detail::ConnTurnState;
  explicit Connections(detail::Turn* turn);
  detail::ConnTurnState& state();
  detail::Turn* turn_;
  std::unique_ptr<detail::ConnTurnState> state_;
};

struct ConnectionStats {
  uint64_t accepted = 0;
  uint64_t closed = 0;
  uint64_t frames_sent = 0;     // frames released to the transport
  uint64_t frames_dropped = 0;  // frames of failed turns or commits
  uint64_t sends_refused = 0;   // over connection_queued_bytes_max
  uint64_t held_bytes = 0;      // frames waiting for their commit, now
};

// The transport's way in: Engine::connections().
class ConnectionHub {
 public:
  explicit ConnectionHub(detail::EngineCore* core);
  ~ConnectionHub();

  // Set once, before the first connection. The engine keeps it alive.
  void set_transport(std::shared_ptr<ConnectionTransport> transport);
  // A fresh id: random high bits per engine open, a counter below.
  ConnectionId new_id();

  // Runs on_connect as a turn; done gets ok once the acceptance is durable,
  // or the reason it was refused (the transport then closes the socket).
  void connect(const ObjectRef& object, ConnectionId id, std::string payload,
               std::function<void(Status)> done);
  // Each runs as a turn on the object, waking it when it was evicted. done
  // (optional) gets the turn's result once its commit is durable. InvalidArgument
  // (via done) for a frame over connection_frame_bytes_max. A full mailbox
  // refuses message and error (Busy via done) but never closed: a close is
  // delivered whatever the mailbox holds, so state never keeps a socket
  // that is gone (at most one close per stored connection).
  void message(const ObjectRef& object, ConnectionId id, FrameKind kind, std::string data,
               std::function<void(Status)> done = {});
  void closed(const ObjectRef& object, ConnectionId id, int code, std::string reason,
              std::function<void(Status)> done = {});
  void error(const ObjectRef& object, ConnectionId id, std::string message,
             std::function<void(Status)> done = {});

  // After open (classes registered, transport set): reports every stored
  // connection the transport does not hold as closed (kCloseAbnormal) to its
  // object, and waits for those turns. Returns how many were closed.
  Result<size_t> reconcile();

  ConnectionStats stats() const;

  struct Impl;  // engine-internal (engine/conn/conn_state.h)

 private:
  friend class Connections;
  std::unique_ptr<Impl> impl_;
};

}  // namespace carrel
