// ctx.connections(): an object's connections during one turn (conn_state.h).
#include <algorithm>

#include "engine/conn/conn_state.h"
#include "engine/loop/engine_core.h"
#include "engine/loop/turn.h"
#include "engine/store/codec.h"
#include "engine/store/keys.h"

namespace carrel {
namespace detail {
namespace {

constexpr uint8_t kRecordVersion = 1;
// A WebSocket close reason fits a control frame: 125 bytes less the 2-byte code.
constexpr size_t kCloseReasonBytesMax = 123;
static_assert(kCloseReasonBytesMax + 2 <= 125);

}  // namespace

Status check_frame_bytes(const Options& o, size_t n) {
  if (n > o.connection_frame_bytes_max) {
    return Status::invalid_argument("frame of " + std::to_string(n) +
                                    " bytes exceeds connection_frame_bytes_max (" +
                                    std::to_string(o.connection_frame_bytes_max) + " bytes)");
  }
  return Status::ok();
}

std::string conn_record_key(ConnectionId id) {
  std::string key = kReservedPrefix;
  store::append_u64(&key, id);
  return key;
}

std::string encode_conn_record(const ConnectionInfo& info) {
  // Tag counts and lengths fit 16 bits: validate() caps connection_tags_max
  // and connection_tag_bytes_max below kStr16BytesMax.
  std::string out;
  store::Writer w(&out);
  w.version(kRecordVersion);
  w.u16(static_cast<uint16_t>(info.tags.size()));
  for (const std::string& tag : info.tags) w.str16(tag);
  w.str32(info.attachment);
  return out;
}

Result<ConnectionInfo> decode_conn_record(ConnectionId id, std::string_view b) {
  std::string what = "connection record " + std::to_string(id);
  store::Reader r(b, what.c_str());
  ConnectionInfo info;
  info.id = id;
  uint16_t tags = 0;
  if (!r.version(kRecordVersion) || !r.u16(&tags)) return r.corruption();
  for (size_t i = 0; i < tags; ++i) {
    if (!r.str16(&info.tags.emplace_back())) return r.corruption("tag " + std::to_string(i));
  }
  if (!r.str32(&info.attachment) || !r.done()) return r.corruption("attachment");
  return info;
}

ConnTurnState::~ConnTurnState() {
  // Invariant (2): frames still here belong to a turn that failed.
  if (!frames.empty()) hub->release(frames, Status::aborted("the turn failed"));
}

namespace {

// Frames handed to the output gate. Released by the commit's completion; a
// completion that never runs (the engine closed first) drops them.
struct HeldBatch {
  ConnectionHub::Impl* hub;
  std::vector<HeldFrame> frames;
  ~HeldBatch() {
    if (!frames.empty()) hub->release(frames, Status::aborted("the engine closed"));
  }
};

Result<uint64_t> read_count(Turn& turn) {
  CARREL_ASSIGN_OR_RETURN(auto raw, turn.kv().get(kReservedPrefix));
  if (!raw) return uint64_t{0};
  if (raw->size() != 8)
    return Status::corruption("connection count has " + std::to_string(raw->size()) +
                              " bytes, not 8");
  return store::read_u64(*raw, 0);
}

Status write_count(Turn& turn, uint64_t n) {
  if (n == 0) return turn.kv().del(kReservedPrefix).status();
  std::string v;
  store::append_u64(&v, n);
  return turn.kv().put(kReservedPrefix, v);
}

bool valid_close_code(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

}  // namespace

ConnTurnState::Mark ConnTurnState::mark(Connections& c) {
  if (!c.state_) return {};
  return {c.state_->frames.size(), c.state_->accepted};
}

void ConnTurnState::roll_back_to(Connections& c, const Mark& m, const Status& why) {
  if (!c.state_) return;
  auto& frames = c.state_->frames;
  // Frames only grow inside a savepoint (nested ones roll back their own first).
  size_t keep = std::min(m.frames, frames.size());
  std::vector<HeldFrame> dropped(
      std::make_move_iterator(frames.begin() + static_cast<std::ptrdiff_t>(keep)),
      std::make_move_iterator(frames.end()));
  frames.resize(keep);
  c.state_->accepted = m.accepted;
  if (!dropped.empty()) c.state_->hub->release(dropped, why);
}

// The loop's seam (engine/loop/turn_connections.h).
ConnectionsMark mark_connections(Connections& c) {
  return ConnTurnState::mark(c);
}

void roll_back_connections(Connections& c, const ConnectionsMark& m, const Status& why) {
  ConnTurnState::roll_back_to(c, m, why);
}

bool hold_frames_until_durable(Context& ctx, std::vector<Completion>& outputs) {
  return ConnTurnState::hand_over(ctx.connections(), outputs);
}

bool ConnTurnState::hand_over(Connections& c, std::vector<Completion>& outputs) {
  if (!c.state_ || c.state_->frames.empty()) return false;
  auto batch = std::make_shared<HeldBatch>();
  batch->hub = c.state_->hub;
  batch->frames = std::move(c.state_->frames);
  c.state_->frames.clear();
  outputs.push_back([batch](const Status& s) { batch->hub->release(batch->frames, s); });
  return true;
}

}  // namespace detail

using detail::Turn;

Connections::Connections(detail::Turn* turn) : turn_(turn) {}
Connections::~Connections() = default;

detail::ConnTurnState& Connections::state() {
  if (!state_) {
    state_ = std::make_unique<detail::ConnTurnState>();
    state_->hub = turn_->core().connection_hub().impl_.get();
  }
  return *state_;
}

namespace {

Status check_attachment(const Options& o, const std::string& attachment) {
  if (attachment.size() > o.connection_attachment_bytes_max) {
    return Status::invalid_argument("connection attachment of " +
                                    std::to_string(attachment.size()) +
                                    " bytes exceeds connection_attachment_bytes_max (" +
                                    std::to_string(o.connection_attachment_bytes_max) +
                                    " bytes); keep larger state in KV or SQL");
  }
  return Status::ok();
}

}  // namespace

Status Connections::accept(std::vector<std::string> tags, std::string attachment) {
  detail::ConnTurnState& st = state();
  const Options& o = turn_->core().options();
  if (!st.connecting) {
    return Status::invalid_argument("connections().accept() is valid only in on_connect");
  }
  if (st.accepted) return Status::invalid_argument("connection accepted twice in one on_connect");
  if (tags.size() > o.connection_tags_max) {
    return Status::invalid_argument(std::to_string(tags.size()) +
                                    " connection tags exceed connection_tags_max (" +
                                    std::to_string(o.connection_tags_max) + ")");
  }
  for (const std::string& tag : tags) {
    if (tag.empty() || tag.size() > o.connection_tag_bytes_max) {
      return Status::invalid_argument(
          "connection tag of " + std::to_string(tag.size()) + " bytes; tags must be 1.." +
          std::to_string(o.connection_tag_bytes_max) + " bytes (connection_tag_bytes_max)");
    }
  }
  CARREL_RETURN_IF_ERROR(check_attachment(o, attachment));
  CARREL_ASSIGN_OR_RETURN(uint64_t count, detail::read_count(*turn_));
  if (count >= o.connections_per_object_max) {
    return Status::busy("object " + turn_->object().label() + " holds " + std::to_string(count) +
                        " connections (connections_per_object_max " +
                        std::to_string(o.connections_per_object_max) + ")");
  }
  ConnectionInfo info{*st.connecting, std::move(tags), std::move(attachment)};
  CARREL_RETURN_IF_ERROR(
      turn_->kv().put(detail::conn_record_key(info.id), detail::encode_conn_record(info)));
  CARREL_RETURN_IF_ERROR(detail::write_count(*turn_, count + 1));
  st.accepted = true;
  return Status::ok();
}

Result<std::vector<ConnectionInfo>> Connections::list(std::string_view tag) {
  ListOptions lo;
  lo.prefix = detail::kReservedPrefix;
  lo.start_after = detail::kReservedPrefix;  // past the count
  CARREL_ASSIGN_OR_RETURN(Entries entries, turn_->kv().list(lo));
  std::vector<ConnectionInfo> out;
  out.reserve(entries.size());
  for (auto& [key, value] : entries) {
    if (key.size() != detail::kReservedPrefix.size() + 8) continue;
    ConnectionId id = store::read_u64(key, detail::kReservedPrefix.size());
    CARREL_ASSIGN_OR_RETURN(ConnectionInfo info, detail::decode_conn_record(id, value));
    if (!tag.empty() && std::find(info.tags.begin(), info.tags.end(), tag) == info.tags.end()) {
      continue;
    }
    out.push_back(std::move(info));
  }
  return out;
}

Result<ConnectionInfo> Connections::get(ConnectionId id) {
  CARREL_ASSIGN_OR_RETURN(auto raw, turn_->kv().get(detail::conn_record_key(id)));
  if (!raw) {
    return Status::not_found("object " + turn_->object().label() + " holds no connection " +
                             std::to_string(id));
  }
  return detail::decode_conn_record(id, *raw);
}

Status Connections::set_attachment(ConnectionId id, std::string attachment) {
  CARREL_RETURN_IF_ERROR(check_attachment(turn_->core().options(), attachment));
  CARREL_ASSIGN_OR_RETURN(ConnectionInfo info, get(id));
  info.attachment = std::move(attachment);
  return turn_->kv().put(detail::conn_record_key(id), detail::encode_conn_record(info));
}

Status Connections::send(ConnectionId id, std::string_view data, FrameKind kind) {
  CARREL_RETURN_IF_ERROR(detail::check_frame_bytes(turn_->core().options(), data.size()));
  CARREL_RETURN_IF_ERROR(get(id).status());
  detail::ConnTurnState& st = state();
  CARREL_RETURN_IF_ERROR(st.hub->hold(id, data.size()));
  st.frames.push_back({id, false, kind, 0, std::string(data)});
  return Status::ok();
}

Result<size_t> Connections::broadcast(std::string_view data, std::string_view tag, FrameKind kind) {
  CARREL_RETURN_IF_ERROR(detail::check_frame_bytes(turn_->core().options(), data.size()));
  CARREL_ASSIGN_OR_RETURN(auto conns, list(tag));
  detail::ConnTurnState& st = state();
  size_t sent = 0;
  for (const ConnectionInfo& c : conns) {
    if (!st.hub->hold(c.id, data.size()).is_ok()) continue;  // a slow reader misses this one
    st.frames.push_back({c.id, false, kind, 0, std::string(data)});
    ++sent;
  }
  return sent;
}

Status Connections::close(ConnectionId id, int code, std::string_view reason) {
  if (!detail::valid_close_code(code)) {
    return Status::invalid_argument("close code " + std::to_string(code) +
                                    " is not one a server may send (1000-1003, 1007-1014, "
                                    "3000-4999)");
  }
  if (reason.size() > detail::kCloseReasonBytesMax) {
    return Status::invalid_argument("close reason of " + std::to_string(reason.size()) +
                                    " bytes exceeds 123 bytes (a WebSocket control frame)");
  }
  CARREL_RETURN_IF_ERROR(get(id).status());
  CARREL_ASSIGN_OR_RETURN(uint64_t count, detail::read_count(*turn_));
  CARREL_RETURN_IF_ERROR(turn_->kv().del(detail::conn_record_key(id)).status());
  CARREL_RETURN_IF_ERROR(detail::write_count(*turn_, count > 0 ? count - 1 : 0));
  state().frames.push_back({id, true, FrameKind::kText, code, std::string(reason)});
  return Status::ok();
}

}  // namespace carrel
