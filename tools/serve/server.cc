// carrel-serve's HTTP/1.1 and WebSocket sessions: the only translation unit
// that includes Boost.Beast (it compiles slowly).
//
// Threads: one I/O thread runs every socket; engine threads only post work to
// it (replies, frames, closes). Invariants:
//  (1) Every socket is counted in Server::sockets_ while open, and there are
//      never more than ServeOptions::connections_max: past it a new socket is
//      closed at once.
//  (2) A WebSocket session reports its close to the engine exactly once
//      (finish()), and leaves the transport's table then.
//  (3) Outbound bytes queued on a session never exceed twice
//      Options::connection_queued_bytes_max (the engine refuses sends at
//      once): past it the session is closed with 1008.
//  (4) A session has at most ws_turns_in_flight_max message turns in flight;
//      beyond, it stops reading (backpressure to the peer through TCP).
//  (5) A session is destroyed on the I/O thread only (its destructor updates
//      the server's unguarded tables): an engine callback moves its reference
//      into the handler it posts, so the callback's own copy, destroyed on an
//      engine thread, is empty by then.
#include "tools/serve/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace carrel::serve {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr size_t kSegmentBytesMax = 512;

std::string json_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// {"error":{"code":…,"message":…}}
std::string error_body(std::string_view code, std::string_view message) {
  return "{\"error\":{\"code\":\"" + json_escape(code) + "\",\"message\":\"" +
         json_escape(message) + "\"}}\n";
}

http::status http_status_of(Code code) {
  switch (code) {
    case Code::kOk:
      return http::status::ok;
    case Code::kNotFound:
      return http::status::not_found;
    case Code::kInvalidArgument:
      return http::status::bad_request;
    case Code::kBusy:
      return http::status::service_unavailable;
    case Code::kDeadlock:
      return http::status::conflict;
    case Code::kNoSpace:
      return http::status::insufficient_storage;
    default:
      return http::status::internal_server_error;
  }
}

// Close code for a message turn that failed.
int close_code_of(Code code) {
  switch (code) {
    case Code::kBusy:
      return kCloseTryAgain;
    case Code::kInvalidArgument:
    case Code::kNotFound:
      return kClosePolicy;
    default:
      return kCloseInternal;
  }
}

// Percent-decodes one path segment; nullopt for a malformed escape.
std::optional<std::string> decode_segment(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= s.size()) return std::nullopt;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// /objects/CLASS/NAME/LAST -> {CLASS, NAME, LAST}; nullopt otherwise.
struct Route {
  std::string class_name, name, last;
};
std::optional<Route> parse_route(std::string_view target, std::string* error) {
  std::string_view path = target.substr(0, target.find('?'));
  constexpr std::string_view kPrefix = "/objects/";
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  std::vector<std::string> parts;
  while (!path.empty() || parts.size() < 3) {
    size_t slash = path.find('/');
    std::string_view seg = path.substr(0, slash);
    if (seg.empty() || seg.size() > kSegmentBytesMax || parts.size() == 3) {
      *error = "the path must be /objects/CLASS/NAME/METHOD with segments of 1.." +
               std::to_string(kSegmentBytesMax) + " bytes";
      return std::nullopt;
    }
    auto decoded = decode_segment(seg);
    if (!decoded) {
      *error = "malformed percent escape in the path";
      return std::nullopt;
    }
    parts.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
    if (path.empty()) break;
  }
  if (parts.size() != 3) {
    *error = "the path must be /objects/CLASS/NAME/METHOD";
    return std::nullopt;
  }
  return Route{parts[0], parts[1], parts[2]};
}

class Server;

// One WebSocket, connected to one object (ConnectionHub).
class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(Server& server, beast::tcp_stream&& stream, ObjectRef object, ConnectionId id)
      : server_(server), ws_(std::move(stream)), object_(std::move(object)), id_(id) {}

  void start(Request request);
  void enqueue(FrameKind kind, std::string data);        // any thread
  void close_from_engine(int code, std::string reason);  // any thread
  size_t queued_bytes() const { return queued_.load(std::memory_order_relaxed); }
  void shutdown();  // I/O thread: the server drains

 private:
  struct Out {
    FrameKind kind;
    std::string data;
  };
  void on_connected(Status s);
  void do_read();
  void on_read(beast::error_code ec);
  void push(FrameKind kind, std::string data);
  void do_write();
  void begin_close(int code, std::string reason);
  void finish(int code, std::string reason);

  Server& server_;
  websocket::stream<beast::tcp_stream> ws_;
  ObjectRef object_;
  const ConnectionId id_;
  Request request_;
  beast::flat_buffer buffer_;
  std::deque<Out> out_;
  std::atomic<size_t> queued_{0};
  bool open_ = false;  // handshake done
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;   // a close frame goes after the queue
  bool finished_ = false;  // invariant (2)
  int close_code_ = kCloseNormal;
  std::string close_reason_;
  size_t in_flight_ = 0;  // invariant (4)
};

// The engine's view of the sockets (carrel/connections.h).
class Transport final : public ConnectionTransport {
 public:
  void send(ConnectionId id, FrameKind kind, std::string data) override {
    if (auto s = find(id)) s->enqueue(kind, std::move(data));
  }
  void close(ConnectionId id, int code, std::string reason) override {
    if (auto s = find(id)) s->close_from_engine(code, std::move(reason));
  }
  size_t queued_bytes(ConnectionId id) override {
    auto s = find(id);
    return s ? s->queued_bytes() : 0;
  }
  bool holds(ConnectionId id) override { return find(id) != nullptr; }

  void add(ConnectionId id, std::shared_ptr<WsSession> s) {
    std::lock_guard l(mutex_);
    sessions_[id] = std::move(s);
  }
  void remove(ConnectionId id) {
    std::lock_guard l(mutex_);
    sessions_.erase(id);
  }
  std::vector<std::shared_ptr<WsSession>> all() {
    std::lock_guard l(mutex_);
    std::vector<std::shared_ptr<WsSession>> out;
    for (auto& [id, s] : sessions_) out.push_back(s);
    return out;
  }
  void clear() {
    std::lock_guard l(mutex_);
    sessions_.clear();
  }

 private:
  std::shared_ptr<WsSession> find(ConnectionId id) {
    std::lock_guard l(mutex_);
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second;
  }
  std::mutex mutex_;
  std::unordered_map<ConnectionId, std::shared_ptr<WsSession>> sessions_;
};

class HttpSession;

class Server {
 public:
  Server(Engine& engine, const ServeOptions& options)
      : engine_(engine),
        options_(options),
        transport_(std::make_shared<Transport>()),
        acceptor_(ioc_),
        signals_(ioc_, SIGINT, SIGTERM),
        drain_timer_(ioc_) {}
  ~Server() { transport_->clear(); }

  int run(const std::function<void(uint16_t)>& on_listening);

  Engine& engine() { return engine_; }
  const ServeOptions& options() const { return options_; }
  asio::io_context& ioc() { return ioc_; }
  Transport& transport() { return *transport_; }
  bool draining() const { return draining_; }
  // Invariant (1).
  void socket_closed() { --sockets_; }
  void add_http(HttpSession* s) { http_.insert(s); }
  void remove_http(HttpSession* s) { http_.erase(s); }
  void turn_started() { ++turns_in_flight_; }
  void turn_finished() { --turns_in_flight_; }

 private:
  void do_accept();
  void begin_drain();
  void check_drained();

  Engine& engine_;
  ServeOptions options_;
  // Declared before ioc_, so destroyed after it: handlers still queued when
  // ioc_ is destroyed (a turn that finished during close) hold sessions whose
  // destructors reach these.
  std::shared_ptr<Transport> transport_;
  std::unordered_set<HttpSession*> http_;
  size_t sockets_ = 0;
  size_t turns_in_flight_ = 0;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  asio::signal_set signals_;
  asio::steady_timer drain_timer_;
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_;
};

// One HTTP/1.1 connection: requests one at a time (no pipelining).
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Server& server, tcp::socket&& socket) : server_(server), stream_(std::move(socket)) {}
  ~HttpSession() {
    server_.remove_http(this);
    if (!upgraded_) server_.socket_closed();
  }
  void start() {
    server_.add_http(this);
    do_read();
  }
  // The server drains: an idle keep-alive socket closes now, a busy one after its reply.
  void shutdown() {
    if (idle_) {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_.close();
    }
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options().header_bytes_max));
    parser_->body_limit(server_.options().body_bytes_max);
    stream_.expires_after(std::chrono::milliseconds(server_.options().http_idle_ms));
    idle_ = true;
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    idle_ = false;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      return close();
    }
    if (ec) {
      // Malformed or oversized input: say which, then close.
      http::status st = ec == http::error::body_limit ? http::status::payload_too_large
                        : ec == http::error::header_limit
                            ? http::status::request_header_fields_too_large
                            : http::status::bad_request;
      return error(st, "InvalidArgument", "malformed request: " + ec.message(), false);
    }
    handle(parser_->release());
  }

  void handle(Request req) {
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    std::string_view target(req.target().data(), req.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (path == "/" || path == "/chat") {
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        return error(http::status::method_not_allowed, "InvalidArgument", "use GET", keep_alive_);
      }
      return reply(http::status::ok, kChatPage, "text/html; charset=utf-8");
    }
    if (path == "/healthz") return reply(http::status::ok, "ok\n", "text/plain");
    if (path == "/stats") return reply(http::status::ok, stats_json(), "application/json");
    std::string why;
    auto route = parse_route(target, &why);
    if (!route) {
      if (!why.empty())
        return error(http::status::bad_request, "InvalidArgument", why, keep_alive_);
      return error(http::status::not_found, "NotFound",
                   "no such path; use /objects/CLASS/NAME/METHOD", keep_alive_);
    }
    if (server_.draining()) {
      keep_alive_ = false;
      return error(http::status::service_unavailable, "Aborted", "the server is shutting down",
                   false);
    }
    ObjectRef object = ObjectRef::named(route->class_name, route->name);
    if (route->last == "ws") {
      if (!websocket::is_upgrade(req)) {
        return error(http::status::upgrade_required, "InvalidArgument",
                     "GET /objects/CLASS/NAME/ws needs a WebSocket upgrade", keep_alive_);
      }
      return upgrade(std::move(object), std::move(req));
    }
    if (req.method() != http::verb::post) {
      return error(http::status::method_not_allowed, "InvalidArgument",
                   "call methods with POST /objects/CLASS/NAME/METHOD", keep_alive_);
    }
    server_.turn_started();
    asio::io_context& ioc = server_.ioc();
    server_.engine().stub(object).call_async(
        route->last, req.body(),
        [self = shared_from_this(), &ioc](Result<std::string> r) mutable {
          // Invariant (5): the reference moves to the I/O thread.
          asio::post(ioc, [self = std::move(self), r = std::move(r)]() mutable {
            self->server_.turn_finished();
            if (r.is_ok()) return self->reply(http::status::ok, std::move(r).value(), "text/plain");
            self->error(http_status_of(r.status().code()),
                        std::string(code_name(r.status().code())), r.status().message(),
                        self->keep_alive_);
          });
        });
  }

  std::string stats_json() {
    EngineStats e = server_.engine().stats();
    ConnectionStats c = server_.engine().connections().stats();
    auto field = [](const char* name, uint64_t v) {
      return "\"" + std::string(name) + "\":" + std::to_string(v);
    };
    return "{" + field("active_objects", e.active_objects) + "," + field("evictions", e.evictions) +
           "," + field("turns_run", e.turns_run) + "," + field("commits", e.commits) + "," +
           field("connections_accepted", c.accepted) + "," + field("connections_closed", c.closed) +
           "," + field("frames_sent", c.frames_sent) + "," +
           field("frames_dropped", c.frames_dropped) + "," +
           field("sends_refused", c.sends_refused) + "}\n";
  }

  void upgrade(ObjectRef object, Request req) {
    upgraded_ = true;  // the socket's count moves to the WebSocket session
    ConnectionId id = server_.engine().connections().new_id();
    auto ws = std::make_shared<WsSession>(server_, std::move(stream_), std::move(object), id);
    server_.transport().add(id, ws);
    ws->start(std::move(req));
  }

  void error(http::status st, const std::string& code, const std::string& message,
             bool keep_alive) {
    keep_alive_ = keep_alive;
    reply(st, error_body(code, message), "application/json");
  }

  void reply(http::status st, std::string body, const char* content_type) {
    auto res = std::make_shared<Response>(st, version_ == 0 ? 11 : version_);
    res->set(http::field::server, "carrel-serve");
    res->set(http::field::content_type, content_type);
    res->keep_alive(keep_alive_ && !server_.draining());
    res->body() = std::move(body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::milliseconds(server_.options().http_idle_ms));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->do_read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  Server& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  bool idle_ = false;
  bool upgraded_ = false;
  unsigned version_ = 11;
};

void WsSession::start(Request request) {
  request_ = std::move(request);
  ws_.read_message_max(server_.engine().options().connection_frame_bytes_max);
  websocket::stream_base::timeout t{};
  t.handshake_timeout = std::chrono::milliseconds(server_.options().ws_handshake_ms);
  t.idle_timeout = std::chrono::milliseconds(server_.options().ws_idle_ms);
  t.keep_alive_pings = true;
  beast::get_lowest_layer(ws_).expires_never();
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "carrel-serve"); }));
  std::string payload(request_.target().data(), request_.target().size());
  asio::io_context& ioc = server_.ioc();
  server_.turn_started();
  server_.engine().connections().connect(object_, id_, std::move(payload),
                                         [self = shared_from_this(), &ioc](Status s) mutable {
                                           // Invariant (5).
                                           asio::post(ioc, [self = std::move(self),
                                                            s = std::move(s)]() mutable {
                                             self->server_.turn_finished();
                                             self->on_connected(std::move(s));
                                           });
                                         });
}

void WsSession::on_connected(Status s) {
  if (!s.is_ok()) {
    // Refused: an HTTP error instead of the 101, then the socket closes.
    finished_ = true;
    server_.transport().remove(id_);
    auto res = std::make_shared<Response>(http_status_of(s.code()), request_.version());
    res->set(http::field::content_type, "application/json");
    res->keep_alive(false);
    res->body() = error_body(code_name(s.code()), s.message());
    res->prepare_payload();
    beast::get_lowest_layer(ws_).expires_after(
        std::chrono::milliseconds(server_.options().http_idle_ms));
    http::async_write(ws_.next_layer(), *res,
                      [self = shared_from_this(), res](beast::error_code, size_t) {
                        beast::error_code ec;
                        self->ws_.next_layer().socket().shutdown(tcp::socket::shutdown_both, ec);
                        self->ws_.next_layer().close();
                        self->server_.socket_closed();
                      });
    return;
  }
  ws_.async_accept(request_, [self = shared_from_this()](beast::error_code ec) {
    if (ec) return self->finish(kCloseAbnormal, "handshake failed: " + ec.message());
    self->open_ = true;
    self->request_ = {};
    if (self->server_.draining()) return self->begin_close(kCloseGoingAway, "server shutting down");
    self->do_read();
    self->do_write();
  });
}

void WsSession::do_read() {
  if (reading_ || finished_ || closing_ ||
      in_flight_ >= server_.options().ws_turns_in_flight_max) {
    return;
  }
  reading_ = true;
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
    self->reading_ = false;
    self->on_read(ec);
  });
}

void WsSession::on_read(beast::error_code ec) {
  if (ec) {
    if (ec == websocket::error::closed) {
      auto r = ws_.reason();
      return finish(r.code, std::string(r.reason.data(), r.reason.size()));
    }
    return finish(kCloseAbnormal, ec.message());
  }
  // A message after a failed one is not posted: the object must not apply
  // message N+1 without N while the socket closes.
  if (closing_) return;
  FrameKind kind = ws_.got_text() ? FrameKind::kText : FrameKind::kBinary;
  std::string data = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  buffer_.shrink_to_fit();  // an idle socket keeps no read buffer
  ++in_flight_;
  server_.turn_started();
  asio::io_context& ioc = server_.ioc();
  server_.engine().connections().message(
      object_, id_, kind, std::move(data), [self = shared_from_this(), &ioc](Status s) mutable {
        // Invariant (5).
        asio::post(ioc, [self = std::move(self), s = std::move(s)] {
          self->server_.turn_finished();
          --self->in_flight_;
          if (!s.is_ok() && !self->finished_) {
            self->begin_close(close_code_of(s.code()), s.message().substr(0, 120));
          }
          self->do_read();
        });
      });
  do_read();
}

void WsSession::enqueue(FrameKind kind, std::string data) {
  queued_.fetch_add(data.size(), std::memory_order_relaxed);
  asio::post(server_.ioc(), [self = shared_from_this(), kind, data = std::move(data)]() mutable {
    self->push(kind, std::move(data));
  });
}

void WsSession::push(FrameKind kind, std::string data) {
  if (finished_ || closing_) {
    queued_.fetch_sub(data.size(), std::memory_order_relaxed);
    return;
  }
  out_.push_back({kind, std::move(data)});
  // Invariant (3).
  if (queued_.load() > 2 * server_.engine().options().connection_queued_bytes_max) {
    return begin_close(kClosePolicy, "the peer reads too slowly");
  }
  do_write();
}

void WsSession::do_write() {
  if (!open_ || writing_ || finished_) return;
  if (out_.empty()) {
    if (closing_) {
      writing_ = true;
      websocket::close_reason why;
      why.code = static_cast<uint16_t>(close_code_);
      why.reason = close_reason_;
      ws_.async_close(why, [self = shared_from_this()](beast::error_code) {
        self->finish(self->close_code_, self->close_reason_);
      });
    }
    return;
  }
  writing_ = true;
  ws_.text(out_.front().kind == FrameKind::kText);
  ws_.async_write(
      asio::buffer(out_.front().data), [self = shared_from_this()](beast::error_code ec, size_t) {
        self->writing_ = false;
        self->queued_.fetch_sub(self->out_.front().data.size(), std::memory_order_relaxed);
        self->out_.pop_front();
        if (ec) return self->finish(kCloseAbnormal, ec.message());
        self->do_write();
      });
}

void WsSession::close_from_engine(int code, std::string reason) {
  asio::post(server_.ioc(),
             [self = shared_from_this(), code, reason = std::move(reason)]() mutable {
               self->begin_close(code, std::move(reason));
             });
}

void WsSession::begin_close(int code, std::string reason) {
  if (closing_ || finished_) return;
  closing_ = true;
  close_code_ = code;
  close_reason_ = std::move(reason);
  if (!open_) return;  // on_connected closes it
  do_write();
}

void WsSession::shutdown() {
  if (!open_) return;
  begin_close(kCloseGoingAway, "server shutting down");
}

void WsSession::finish(int code, std::string reason) {
  if (finished_) return;
  finished_ = true;
  beast::error_code ec;
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(ws_).close();
  server_.socket_closed();
  // The frame an async_write is still sending stays until its handler pops it.
  size_t keep = writing_ && !out_.empty() ? 1 : 0;
  for (size_t i = keep; i < out_.size(); ++i) {
    queued_.fetch_sub(out_[i].data.size(), std::memory_order_relaxed);
  }
  out_.erase(out_.begin() + static_cast<std::ptrdiff_t>(keep), out_.end());
  server_.transport().remove(id_);
  // The object learns of it in a turn; its close() already removed it when it closed first.
  server_.turn_started();
  asio::io_context& ioc = server_.ioc();
  Server* server = &server_;
  server_.engine().connections().closed(
      object_, id_, code, std::move(reason),
      [server, &ioc](Status) { asio::post(ioc, [server] { server->turn_finished(); }); });
}

void Server::do_accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      return do_accept();
    }
    if (draining_ || sockets_ >= options_.connections_max) {
      // Invariant (1): refuse at once rather than queue.
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      ++sockets_;
      std::make_shared<HttpSession>(*this, std::move(socket))->start();
    }
    do_accept();
  });
}

void Server::begin_drain() {
  if (draining_) return;
  draining_ = true;
  std::fprintf(stderr, "carrel-serve: draining (%zu sockets, %zu turns in flight)\n", sockets_,
               turns_in_flight_);
  beast::error_code ec;
  acceptor_.close(ec);
  std::vector<HttpSession*> idle(http_.begin(), http_.end());
  for (HttpSession* s : idle) s->shutdown();
  for (auto& ws : transport_->all()) ws->shutdown();
  drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.drain_ms);
  check_drained();
}

void Server::check_drained() {
  if ((sockets_ == 0 && turns_in_flight_ == 0) ||
      std::chrono::steady_clock::now() > drain_deadline_) {
    return ioc_.stop();
  }
  drain_timer_.expires_after(std::chrono::milliseconds(10));
  drain_timer_.async_wait([this](beast::error_code) { check_drained(); });
}

int Server::run(const std::function<void(uint16_t)>& on_listening) {
  beast::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(options_.host, ec), options_.port);
  if (ec) {
    std::fprintf(stderr, "carrel-serve: bad listen address %s: %s\n", options_.host.c_str(),
                 ec.message().c_str());
    return 2;
  }
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "carrel-serve: cannot listen on %s:%u: %s\n", options_.host.c_str(),
                 options_.port, ec.message().c_str());
    return 1;
  }
  engine_.connections().set_transport(transport_);
  // Sockets of an earlier run are gone: their objects hear so now.
  auto lost = engine_.connections().reconcile();
  if (!lost.is_ok()) {
    std::fprintf(stderr, "carrel-serve: %s\n", lost.status().to_string().c_str());
    return 1;
  }
  if (*lost > 0)
    std::fprintf(stderr, "carrel-serve: %zu connections of the last run closed\n", *lost);
  signals_.async_wait([this](beast::error_code, int) { begin_drain(); });
  on_listening(acceptor_.local_endpoint().port());
  do_accept();
  ioc_.run();
  return 0;
}

}  // namespace

int serve(Engine& engine, const ServeOptions& options,
          const std::function<void(uint16_t port)>& on_listening) {
  Server server(engine, options);
  int rc = server.run(on_listening);
  // Turns still queued finish before the engine closes; the sockets go with the server.
  Status s = engine.close();
  if (!s.is_ok()) {
    std::fprintf(stderr, "carrel-serve: close: %s\n", s.to_string().c_str());
    if (rc == 0) rc = 1;
  }
  return rc;
}

}  // namespace carrel::serve
