// examples/classes/chat.h — a chat room that persists its messages in SQL.
//
// Every message is a row; `recent` returns the latest 50. When the room holds
// more than kChatLiveMax messages, the oldest kChatArchiveBatch of them move
// into one KV value ("archive/<first message number>") in a nested
// ctx.transaction: if archiving fails, it rolls back alone and the posted
// message still commits (archiving is retried on the next post).
//
// Methods (payload fields are '|'-separated):
//   init      room_name -> "created" or "exists"
//   post      user|content -> message number
//   recent    -> up to 50 "n|user|content" lines, newest first
//   stats     -> "live|archived_batches|archived_messages"
//   archive   first_n -> the archived batch: "n|user|content" lines
//
// Sockets (carrel/connections.h): the room accepts every connection; a text
// frame "user|content" posts like `post`, and every posted message (by socket
// or by request) reaches every socket of the room as "n|user|content" once its
// commit is durable. A malformed frame gets "error|<message>" back.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "classes/common.h"

namespace carrel::examples {

inline constexpr char kChatClass[] = "Chat";
inline constexpr int kChatRecent = 50;
inline constexpr int kChatLiveMax = 200;
inline constexpr int kChatArchiveBatch = 100;

class ChatRoom final : public Handler {
 public:
  Status on_start(Context& ctx) override {
    return ctx.sql()
        .exec(
            "CREATE TABLE IF NOT EXISTS messages ("
            "  n INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, content TEXT NOT NULL,"
            "  created INTEGER NOT NULL);"
            "CREATE INDEX IF NOT EXISTS messages_created ON messages(created)")
        .status();
  }

  Result<std::string> on_request(Context& ctx, const Request& request) override {
    const std::string& m = request.method;
    if (m == "init") {
      CARREL_ASSIGN_OR_RETURN(auto existing, ctx.kv().get("room_name"));
      if (existing) return std::string("exists");
      CARREL_RETURN_IF_ERROR(ctx.kv().put_many(
          {{"room_name", request.payload}, {"created", std::to_string(ctx.now_ms())}}));
      return std::string("created");
    }
    if (m == "post") return post(ctx, request);
    if (m == "recent") return recent(ctx);
    if (m == "stats") return stats(ctx);
    if (m == "archive") return archived_batch(ctx, request.payload);
    return unknown_method(ctx, request);
  }

  Status on_connect(Context& ctx, const ConnectRequest& request) override {
    (void)request;
    return ctx.connections().accept();
  }

  Status on_connection_message(Context& ctx, const ConnectionMessage& message) override {
    Request request{"post", message.data};
    Status valid = message.kind == FrameKind::kText
                       ? expect_fields(request, 2).status()
                       : Status::invalid_argument("chat frames are text, not binary");
    // A malformed frame writes nothing: only the refusal goes back to its socket.
    if (!valid.is_ok()) return ctx.connections().send(message.id, "error|" + valid.message());
    return post(ctx, request).status();
  }

 private:
  Result<std::string> post(Context& ctx, const Request& request) {
    CARREL_ASSIGN_OR_RETURN(auto f, expect_fields(request, 2));
    CARREL_ASSIGN_OR_RETURN(auto rows,
                            ctx.sql().exec("INSERT INTO messages (user, content, created)"
                                           " VALUES (?, ?, ?) RETURNING n",
                                           f[0], f[1], ctx.now_ms()));
    CARREL_ASSIGN_OR_RETURN(auto row, rows.one());
    CARREL_ASSIGN_OR_RETURN(int64_t n, row.get_int(0));
    CARREL_RETURN_IF_ERROR(
        ctx.connections().broadcast(std::to_string(n) + "|" + f[0] + "|" + f[1]).status());
    // A failed archive must not lose the message: it runs in its own savepoint.
    Status archived = ctx.transaction([&] { return archive_oldest(ctx); });
    if (!archived.is_ok()) {
      std::fprintf(stderr, "chat %s: archiving postponed: %s\n", ctx.object().label().c_str(),
                   archived.to_string().c_str());
    }
    return std::to_string(n);
  }

  // Moves the oldest kChatArchiveBatch messages into one KV value once the
  // room holds more than kChatLiveMax.
  Status archive_oldest(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto count, ctx.sql().exec("SELECT count(*) FROM messages"));
    CARREL_ASSIGN_OR_RETURN(auto count_row, count.one());
    CARREL_ASSIGN_OR_RETURN(int64_t live, count_row.get_int(0));
    if (live <= kChatLiveMax) return Status::ok();
    CARREL_ASSIGN_OR_RETURN(
        auto oldest, ctx.sql().exec("SELECT n, user, content FROM messages ORDER BY n LIMIT ?",
                                    kChatArchiveBatch));
    std::string body;
    int64_t first = -1;
    int64_t last = -1;
    for (const SqlRow& row : oldest) {
      CARREL_ASSIGN_OR_RETURN(int64_t n, row.get_int(0));
      CARREL_ASSIGN_OR_RETURN(auto user, row.get_text(1));
      CARREL_ASSIGN_OR_RETURN(auto content, row.get_text(2));
      if (first < 0) first = n;
      last = n;
      body += std::to_string(n) + "|" + user + "|" + content + "\n";
    }
    CARREL_RETURN_IF_ERROR(ctx.kv().put(archive_key(first), body));
    CARREL_RETURN_IF_ERROR(ctx.sql().exec("DELETE FROM messages WHERE n <= ?", last).status());
    CARREL_ASSIGN_OR_RETURN(auto archived, kv_string(ctx, "archived_messages", "0"));
    return ctx.kv().put("archived_messages",
                        std::to_string(std::stoll(archived) + static_cast<int64_t>(oldest.size())));
  }

  // Zero-padded so that KV's bytewise order is numeric order.
  static std::string archive_key(int64_t first_n) {
    char key[40];
    std::snprintf(key, sizeof key, "archive/%012lld", static_cast<long long>(first_n));
    return key;
  }

  Result<std::string> recent(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(
        auto rows, ctx.sql().exec("SELECT n, user, content FROM messages ORDER BY n DESC LIMIT ?",
                                  kChatRecent));
    std::string out;
    for (const SqlRow& row : rows) {
      CARREL_ASSIGN_OR_RETURN(int64_t n, row.get_int(0));
      CARREL_ASSIGN_OR_RETURN(auto user, row.get_text(1));
      CARREL_ASSIGN_OR_RETURN(auto content, row.get_text(2));
      out += std::to_string(n) + "|" + user + "|" + content + "\n";
    }
    return out;
  }

  Result<std::string> stats(Context& ctx) {
    CARREL_ASSIGN_OR_RETURN(auto count, ctx.sql().exec("SELECT count(*) FROM messages"));
    CARREL_ASSIGN_OR_RETURN(auto row, count.one());
    CARREL_ASSIGN_OR_RETURN(int64_t live, row.get_int(0));
    ListOptions batches;
    batches.prefix = "archive/";
    CARREL_ASSIGN_OR_RETURN(auto entries, ctx.kv().list(batches));
    CARREL_ASSIGN_OR_RETURN(auto archived, kv_string(ctx, "archived_messages", "0"));
    return std::to_string(live) + "|" + std::to_string(entries.size()) + "|" + archived;
  }

  Result<std::string> archived_batch(Context& ctx, const std::string& first_n) {
    CARREL_ASSIGN_OR_RETURN(auto body, ctx.kv().get(archive_key(std::stoll(first_n))));
    if (!body) {
      return Status::not_found("chat " + ctx.object().label() + " has no archive batch at " +
                               first_n);
    }
    return *body;
  }
};

inline Status register_chat(Engine& engine) {
  return engine.register_class(kChatClass,
                               [](const ObjectRef&) { return std::make_unique<ChatRoom>(); });
}

}  // namespace carrel::examples
