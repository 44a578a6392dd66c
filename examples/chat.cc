// examples/chat.cc — a chat room persisting messages in SQL, archiving old ones.
//
// Posts are rows in the room's SQL database; `recent` returns the latest 50.
// Past 200 live messages the oldest 100 move into one KV value per batch.
// Concurrent posters never lose a message: the room's turns run one at a time.
// A bookmark taken before a burst of posts restores the room to that point,
// and the bookmark restore() returns undoes the restore.
//
//   chat [--check] [--dir DIR]
#include "classes/chat.h"

#include <atomic>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "carrel/carrel.h"

using namespace carrel;
using namespace carrel::examples;

namespace {

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) {
    out.push_back(s.substr(start, nl - start));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ExampleArgs args = parse_args(argc, argv, "chat [--check] [--dir DIR]");
  ScratchDir scratch;
  auto engine = open_or_exit(args.dir.empty() ? scratch.path() : args.dir);
  Checker check;
  check.ok(register_chat(*engine), "register Chat");

  Stub lobby = engine->stub(kChatClass, "lobby");
  check.expect(lobby.call("init", "The Lobby").get().value_or("") == "created", "init lobby");
  check.expect(lobby.call("init", "The Lobby").get().value_or("") == "exists",
               "init is idempotent");

  for (int i = 1; i <= 250; ++i) {
    auto n =
        lobby.call("post", "user" + std::to_string(i % 7) + "|hello " + std::to_string(i)).get();
    if (!n.is_ok() || *n != std::to_string(i)) {
      check.expect(false, "post " + std::to_string(i) + ": " + n.status().to_string());
      break;
    }
  }
  auto recent = lines(lobby.call("recent", "").get().value_or(""));
  check.expect(recent.size() == 50, "recent returns 50 messages");
  check.expect(!recent.empty() && recent.front() == "250|user5|hello 250" &&
                   recent.back() == "201|user5|hello 201",
               "newest first: 250 down to 201");
  check.expect(lobby.call("stats", "").get().value_or("") == "150|1|100",
               "post 201 archived messages 1..100: 150 live, 1 batch");
  auto batch = lines(lobby.call("archive", "1").get().value_or(""));
  check.expect(batch.size() == 100 && batch.front() == "1|user1|hello 1" &&
                   batch.back() == "100|user2|hello 100",
               "archive batch 1 holds messages 1..100 in order");

  // A bookmark names this point of the room's history (point-in-time recovery).
  std::string before_crowd = check.value(engine->current_bookmark(lobby.object()), "bookmark");

  // 60 concurrent posters: every message lands exactly once.
  std::vector<std::future<Result<std::string>>> posts;
  for (int i = 0; i < 60; ++i) {
    posts.push_back(lobby.call("post", "crowd|message " + std::to_string(i)));
  }
  std::vector<bool> seen(400, false);
  bool distinct = true;
  for (auto& f : posts) {
    auto n = f.get();
    int v = n.is_ok() ? std::stoi(*n) : 0;
    if (v <= 250 || v > 310 || seen[v])
      distinct = false;
    else
      seen[v] = true;
  }
  check.expect(distinct, "60 concurrent posts got the distinct numbers 251..310");
  check.expect(lobby.call("stats", "").get().value_or("") == "110|2|200",
               "post 301 archived 101..200: 110 live, 2 batches");

  // Restore the room to the bookmark: messages, archive and all, in one
  // commit. The returned bookmark undoes the restore.
  std::string undo = check.value(engine->restore(lobby.object(), before_crowd), "restore");
  check.expect(lobby.call("stats", "").get().value_or("") == "150|1|100",
               "restored to before the crowd: 150 live, 1 batch");
  check.value(engine->restore(lobby.object(), undo), "undo the restore");
  check.expect(lobby.call("stats", "").get().value_or("") == "110|2|200",
               "undoing the restore brings the crowd back");
  check.expect(
      lines(engine->stub(kChatClass, "random").call("recent", "").get().value_or("x")).empty(),
      "another room is empty");

  check.ok(engine->close(), "close");
  int rc = check.exit_code();
  return args.check ? rc : 0;
}
