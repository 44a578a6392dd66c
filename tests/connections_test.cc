// Connections (carrel/connections.h, engine/conn/conn_state.h): one rule per
// test, against a real engine in a temp dir and a transport that records what
// the engine hands it. Faults come through Options::commit_hook; every wait is
// bounded.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "carrel/carrel.h"
#include "engine/loop/engine_core.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using namespace std::chrono_literals;
constexpr auto kWait = 30s;

// The transport sees a frame just before the engine gives its held bytes back.
using testing::eventually;

// Records sends and closes; reports queued bytes and liveness as the test sets them.
class TestTransport : public ConnectionTransport {
 public:
  void send(ConnectionId id, FrameKind kind, std::string data) override {
    std::lock_guard l(m_);
    frames_[id].push_back((kind == FrameKind::kBinary ? "b:" : "") + data);
    cv_.notify_all();
  }
  void close(ConnectionId id, int code, std::string reason) override {
    std::lock_guard l(m_);
    closes_[id] = std::to_string(code) + " " + reason;
    cv_.notify_all();
  }
  size_t queued_bytes(ConnectionId id) override {
    std::lock_guard l(m_);
    auto it = queued_.find(id);
    return it == queued_.end() ? 0 : it->second;
  }
  bool holds(ConnectionId id) override {
    std::lock_guard l(m_);
    return open_.count(id) > 0;
  }

  void set_queued(ConnectionId id, size_t n) {
    std::lock_guard l(m_);
    queued_[id] = n;
  }
  void set_open(ConnectionId id) {
    std::lock_guard l(m_);
    open_.insert(id);
  }
  std::vector<std::string> frames(ConnectionId id) {
    std::lock_guard l(m_);
    return frames_[id];
  }
  // Waits until id has at least n frames; false after kWait.
  bool wait_frames(ConnectionId id, size_t n) {
    std::unique_lock l(m_);
    return cv_.wait_for(l, kWait, [&] { return frames_[id].size() >= n; });
  }
  bool wait_close(ConnectionId id, std::string* what) {
    std::unique_lock l(m_);
    bool ok = cv_.wait_for(l, kWait, [&] { return closes_.count(id) > 0; });
    if (ok) *what = closes_[id];
    return ok;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::map<ConnectionId, std::vector<std::string>> frames_;
  std::map<ConnectionId, std::string> closes_;
  std::map<ConnectionId, size_t> queued_;
  std::set<ConnectionId> open_;
};

// Holds commits while closed; fails them while a failure is set.
class Gate {
 public:
  CommitHook hook() {
    return [this](const CommitInfo&) {
      std::unique_lock l(m_);
      cv_.wait_for(l, kWait, [&] { return open_; });
      return fail_;
    };
  }
  void close() { set(false); }
  void open() { set(true); }
  void fail(Status s) {
    std::lock_guard l(m_);
    fail_ = std::move(s);
  }

 private:
  void set(bool open) {
    std::lock_guard l(m_);
    open_ = open;
    cv_.notify_all();
  }
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = true;
  Status fail_;
};

std::atomic<int> g_live_rooms{0};

// on_connect payload: "refuse" refuses; "big" tries an oversized attachment;
// anything else is accepted with tags {"all", payload} and the payload as
// attachment. Messages: "echo:X", "all:X" (broadcast), "tag:T:X", "fail:X"
// (sends X, then fails), "attach:X", "close", "list" (attachments, by id).
class Room final : public Handler {
 public:
  Room() { g_live_rooms.fetch_add(1); }
  ~Room() override { g_live_rooms.fetch_sub(1); }

  Result<std::string> on_request(Context& ctx, const Request& r) override {
    if (r.method == "broadcast") {
      CARREL_ASSIGN_OR_RETURN(size_t n, ctx.connections().broadcast(r.payload));
      return std::to_string(n);
    }
    return Status::invalid_argument("no method " + r.method);
  }
  Status on_connect(Context& ctx, const ConnectRequest& r) override {
    if (r.payload == "refuse") return Status::invalid_argument("refused");
    if (r.payload == "big") return ctx.connections().accept({}, std::string(3000, 'x'));
    return ctx.connections().accept({"all", r.payload}, r.payload);
  }
  Status on_connection_message(Context& ctx, const ConnectionMessage& m) override {
    Connections& c = ctx.connections();
    const std::string& d = m.data;
    CARREL_RETURN_IF_ERROR(ctx.kv().put("last", d));
    if (d.rfind("echo:", 0) == 0) return c.send(m.id, d.substr(5), m.kind);
    if (d.rfind("all:", 0) == 0) return c.broadcast(d.substr(4)).status();
    if (d.rfind("tag:", 0) == 0) {
      size_t colon = d.find(':', 4);
      return c.broadcast(d.substr(colon + 1), d.substr(4, colon - 4)).status();
    }
    if (d.rfind("fail:", 0) == 0) {
      CARREL_RETURN_IF_ERROR(c.send(m.id, d.substr(5)));
      return Status::aborted("told to fail");
    }
    if (d.rfind("savepoint:", 0) == 0) {
      CARREL_RETURN_IF_ERROR(c.send(m.id, "before"));
      Status inner = ctx.transaction([&] {
        CARREL_RETURN_IF_ERROR(c.send(m.id, d.substr(10)));
        return Status::aborted("the savepoint fails");
      });
      EXPECT_FALSE(inner.is_ok());
      return c.send(m.id, "after");
    }
    if (d.rfind("attach:", 0) == 0) return c.set_attachment(m.id, d.substr(7));
    if (d == "close") return c.close(m.id, 4000, "bye");
    if (d == "list") {
      CARREL_ASSIGN_OR_RETURN(auto all, c.list());
      std::string out;
      for (auto& info : all) out += info.attachment + ",";
      return c.send(m.id, out);
    }
    return Status::ok();
  }
  Status on_connection_close(Context& ctx, const ConnectionClose& c) override {
    return ctx.kv().put("closed/" + std::to_string(c.id), std::to_string(c.code) + " " + c.reason);
  }
};

class ConnectionsTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void TearDown() override {
    if (engine_) ASSERT_TRUE(engine_->close().is_ok());
  }
  void open() {
    Options o;
    o.dir = dir_.path() + "/db";
    o.workers = 2;
    o.commit_hook = gate_.hook();
    tweak(o);
    auto e = Engine::open(o);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
    ASSERT_TRUE(
        engine_->register_class("Room", [](const ObjectRef&) { return std::make_unique<Room>(); })
            .is_ok());
    engine_->connections().set_transport(transport_);
  }
  void reopen() {
    ASSERT_TRUE(engine_->close().is_ok());
    engine_.reset();
    open();
  }
  virtual void tweak(Options& o) { (void)o; }

  ConnectionHub& hub() { return engine_->connections(); }

  // Runs a hub call and waits for its done callback.
  template <typename Fn>
  Status wait(Fn&& fn) {
    auto p = std::make_shared<std::promise<Status>>();
    auto f = p->get_future();
    fn([p](Status s) { p->set_value(std::move(s)); });
    if (f.wait_for(kWait) != std::future_status::ready) return Status::aborted("timed out");
    return f.get();
  }
  Result<ConnectionId> connect(const std::string& payload) {
    ConnectionId id = hub().new_id();
    Status s = wait([&](auto done) { hub().connect(room_, id, payload, done); });
    if (!s.is_ok()) return s;
    transport_->set_open(id);
    return id;
  }
  Status message(ConnectionId id, const std::string& data, FrameKind kind = FrameKind::kText) {
    return wait([&](auto done) { hub().message(room_, id, kind, data, done); });
  }
  std::vector<ConnectionInfo> list() {
    std::vector<ConnectionInfo> out;
    Status s = engine_->run(room_, [&](Context& ctx) -> Status {
      CARREL_ASSIGN_OR_RETURN(out, ctx.connections().list());
      return Status::ok();
    });
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return out;
  }
  std::optional<std::string> kv(const std::string& key) {
    std::optional<std::string> v;
    EXPECT_TRUE(engine_
                    ->run(room_,
                          [&](Context& ctx) -> Status {
                            CARREL_ASSIGN_OR_RETURN(v, ctx.kv().get(key));
                            return Status::ok();
                          })
                    .is_ok());
    return v;
  }

  testing::TempDir dir_;
  Gate gate_;
  std::shared_ptr<TestTransport> transport_ = std::make_shared<TestTransport>();
  std::unique_ptr<Engine> engine_;
  ObjectRef room_ = ObjectRef::named("Room", "lobby");
};

TEST_F(ConnectionsTest, FramesSentInAFailedSavepointAreDropped) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  ASSERT_TRUE(message(*id, "savepoint:unsent").is_ok());
  ASSERT_TRUE(transport_->wait_frames(*id, 2));
  ASSERT_TRUE(message(*id, "echo:next").is_ok());
  ASSERT_TRUE(transport_->wait_frames(*id, 3));
  EXPECT_EQ(transport_->frames(*id), (std::vector<std::string>{"before", "after", "next"}));
}

TEST_F(ConnectionsTest, AcceptStoresTagsAndAttachmentWithTheObject) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok()) << id.status().to_string();
  reopen();
  auto all = list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, *id);
  EXPECT_EQ(all[0].tags, (std::vector<std::string>{"all", "alice"}));
  EXPECT_EQ(all[0].attachment, "alice");
}

TEST_F(ConnectionsTest, RefusedConnectionIsNotStored) {
  auto id = connect("refuse");
  EXPECT_FALSE(id.is_ok());
  EXPECT_TRUE(list().empty());
}

TEST_F(ConnectionsTest, ConnectWithoutOnConnectIsRefused) {
  class Plain final : public Handler {
    Result<std::string> on_request(Context&, const Request&) override { return std::string(); }
  };
  ASSERT_TRUE(
      engine_->register_class("Plain", [](const ObjectRef&) { return std::make_unique<Plain>(); })
          .is_ok());
  Status s = wait(
      [&](auto done) { hub().connect(ObjectRef::named("Plain", "p"), hub().new_id(), "", done); });
  EXPECT_EQ(s.code(), Code::kNotFound) << s.to_string();
}

TEST_F(ConnectionsTest, MessageRunsAsATurnOnTheObject) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(message(*id, "hello").is_ok());
  EXPECT_EQ(kv("last"), "hello");
}

TEST_F(ConnectionsTest, FramesLeaveOnlyAfterTheCommitIsDurable) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  gate_.close();
  std::promise<Status> p;
  hub().message(room_, *id, FrameKind::kText, "echo:hi", [&](Status s) { p.set_value(s); });
  std::this_thread::sleep_for(100ms);  // the turn has run; its commit waits at the gate
  EXPECT_TRUE(transport_->frames(*id).empty());
  gate_.open();
  ASSERT_TRUE(transport_->wait_frames(*id, 1));
  EXPECT_EQ(transport_->frames(*id), (std::vector<std::string>{"hi"}));
}

TEST_F(ConnectionsTest, FramesOfAFailedTurnAreDropped) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  EXPECT_FALSE(message(*id, "fail:lost").is_ok());
  ASSERT_TRUE(message(*id, "echo:kept").is_ok());
  ASSERT_TRUE(transport_->wait_frames(*id, 1));
  EXPECT_EQ(transport_->frames(*id), (std::vector<std::string>{"kept"}));
  EXPECT_TRUE(eventually([&] { return hub().stats().held_bytes == 0; }));
}

TEST_F(ConnectionsTest, FramesOfAFailedCommitAreDropped) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  gate_.fail(Status::io_error("injected commit failure"));
  EXPECT_FALSE(message(*id, "echo:lost").is_ok());
  gate_.fail(Status::ok());
  ASSERT_TRUE(message(*id, "echo:kept").is_ok());
  ASSERT_TRUE(transport_->wait_frames(*id, 1));
  EXPECT_EQ(transport_->frames(*id), (std::vector<std::string>{"kept"}));
  EXPECT_GE(hub().stats().frames_dropped, 1u);
}

TEST_F(ConnectionsTest, FramesOfOneConnectionArriveInSendOrder) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  constexpr int kFrames = 100;
  std::vector<std::future<Status>> done;
  for (int i = 0; i < kFrames; ++i) {
    auto p = std::make_shared<std::promise<Status>>();
    done.push_back(p->get_future());
    hub().message(room_, *id, FrameKind::kText, "echo:" + std::to_string(i),
                  [p](Status s) { p->set_value(s); });
  }
  for (auto& f : done) {
    ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
    ASSERT_TRUE(f.get().is_ok());
  }
  ASSERT_TRUE(transport_->wait_frames(*id, kFrames));
  auto frames = transport_->frames(*id);
  for (int i = 0; i < kFrames; ++i) EXPECT_EQ(frames[i], std::to_string(i));
}

TEST_F(ConnectionsTest, BinaryFramesStayBinary) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(message(*id, "echo:\x01\x02", FrameKind::kBinary).is_ok());
  ASSERT_TRUE(transport_->wait_frames(*id, 1));
  EXPECT_EQ(transport_->frames(*id)[0], "b:\x01\x02");
}

TEST_F(ConnectionsTest, BroadcastReachesEveryConnectionOrThoseWithTheTag) {
  auto a = connect("a"), b = connect("b"), c = connect("a");
  ASSERT_TRUE(a.is_ok() && b.is_ok() && c.is_ok());
  ASSERT_TRUE(message(*b, "all:everyone").is_ok());
  ASSERT_TRUE(message(*b, "tag:a:only-a").is_ok());
  for (auto id : {*a, *c}) {
    ASSERT_TRUE(transport_->wait_frames(id, 2));
    EXPECT_EQ(transport_->frames(id), (std::vector<std::string>{"everyone", "only-a"}));
  }
  ASSERT_TRUE(transport_->wait_frames(*b, 1));
  EXPECT_EQ(transport_->frames(*b), (std::vector<std::string>{"everyone"}));
}

TEST_F(ConnectionsTest, RequestTurnsCanBroadcastToo) {
  auto a = connect("a");
  ASSERT_TRUE(a.is_ok());
  auto r = engine_->stub(room_).call("broadcast", "from-http").get();
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, "1");
  ASSERT_TRUE(transport_->wait_frames(*a, 1));
  EXPECT_EQ(transport_->frames(*a)[0], "from-http");
}

TEST_F(ConnectionsTest, AttachmentUpdateIsStored) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(message(*id, "attach:cursor=7").is_ok());
  reopen();
  auto all = list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].attachment, "cursor=7");
}

class ConnectionEvictionTest : public ConnectionsTest {
  void tweak(Options& o) override { o.idle_timeout_ms = 0; }
};

TEST_F(ConnectionEvictionTest, EvictedObjectWakesOnAMessageWithAttachmentsIntact) {
  constexpr int kSockets = 50;
  std::vector<ConnectionId> ids;
  for (int i = 0; i < kSockets; ++i) {
    auto id = connect("u" + std::to_string(i));
    ASSERT_TRUE(id.is_ok());
    ids.push_back(*id);
  }
  // Evict: idle long enough, the janitor's pass, no handler left.
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (g_live_rooms.load() != 0 && std::chrono::steady_clock::now() < deadline) {
    engine_->core()->evict_idle();
    std::this_thread::sleep_for(5ms);
  }
  ASSERT_EQ(g_live_rooms.load(), 0);
  ASSERT_TRUE(message(ids[7], "list").is_ok());
  ASSERT_TRUE(transport_->wait_frames(ids[7], 1));
  std::string listed = transport_->frames(ids[7])[0];
  for (int i = 0; i < kSockets; ++i) {
    EXPECT_NE(listed.find("u" + std::to_string(i) + ","), std::string::npos) << i;
  }
}

TEST_F(ConnectionsTest, ObjectCloseRemovesTheConnectionAndSendsACloseFrame) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  ASSERT_TRUE(message(*id, "close").is_ok());
  std::string what;
  ASSERT_TRUE(transport_->wait_close(*id, &what));
  EXPECT_EQ(what, "4000 bye");
  EXPECT_TRUE(list().empty());
  EXPECT_EQ(message(*id, "echo:x").code(), Code::kNotFound);
}

TEST_F(ConnectionsTest, TransportCloseIsReportedToTheObject) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  Status s = wait([&](auto done) { hub().closed(room_, *id, 1001, "going away", done); });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_TRUE(list().empty());
  EXPECT_EQ(kv("closed/" + std::to_string(*id)), "1001 going away");
}

class ConnectionMailboxTest : public ConnectionsTest {
  void tweak(Options& o) override { o.mailbox_depth_max = 1; }
};

// connections.h: a close is never lost to a full mailbox.
TEST_F(ConnectionMailboxTest, CloseIsDeliveredPastAFullMailbox) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> running;
  auto busy = engine_->submit(room_, [&](Context&) -> Status {
    running.set_value();
    released.wait_for(kWait);
    return Status::ok();
  });
  ASSERT_EQ(running.get_future().wait_for(kWait), std::future_status::ready);
  auto queued = engine_->submit(room_, [](Context&) { return Status::ok(); });  // fills it
  // A message is refused now; the close is not.
  EXPECT_EQ(message(*id, "echo:x").code(), Code::kBusy);
  auto closed = std::make_shared<std::promise<Status>>();
  hub().closed(room_, *id, 1001, "going away", [closed](Status s) { closed->set_value(s); });
  release.set_value();
  auto f = closed->get_future();
  ASSERT_EQ(f.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(f.get().is_ok());
  EXPECT_TRUE(busy.get().is_ok());
  EXPECT_TRUE(queued.get().is_ok());
  EXPECT_TRUE(list().empty());
  EXPECT_EQ(kv("closed/" + std::to_string(*id)), "1001 going away");
}

TEST_F(ConnectionsTest, RestartReportsConnectionsTheTransportNoLongerHolds) {
  auto kept = connect("kept"), lost = connect("lost");
  ASSERT_TRUE(kept.is_ok() && lost.is_ok());
  reopen();
  transport_ = std::make_shared<TestTransport>();  // a fresh transport holding only `kept`
  transport_->set_open(*kept);
  hub().set_transport(transport_);
  auto n = hub().reconcile();
  ASSERT_TRUE(n.is_ok()) << n.status().to_string();
  EXPECT_EQ(*n, 1u);
  auto all = list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].id, *kept);
  EXPECT_EQ(kv("closed/" + std::to_string(*lost)).value_or("").substr(0, 5), "1006 ");
}

TEST_F(ConnectionsTest, AttachmentOverTheLimitIsRefused) {
  auto id = connect("big");
  ASSERT_FALSE(id.is_ok());
  EXPECT_NE(id.status().message().find("connection_attachment_bytes_max"), std::string::npos);
  EXPECT_TRUE(list().empty());
}

TEST_F(ConnectionsTest, IncomingFrameOverTheLimitIsRefused) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  Status s = message(*id, std::string(engine_->options().connection_frame_bytes_max + 1, 'x'));
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("connection_frame_bytes_max"), std::string::npos);
}

TEST_F(ConnectionsTest, SlowReaderSendIsRefusedAndBroadcastSkipsIt) {
  auto slow = connect("slow"), fast = connect("fast");
  ASSERT_TRUE(slow.is_ok() && fast.is_ok());
  transport_->set_queued(*slow, engine_->options().connection_queued_bytes_max);
  Status s = message(*slow, "echo:more");
  EXPECT_EQ(s.code(), Code::kBusy) << s.to_string();
  EXPECT_NE(s.message().find("connection_queued_bytes_max"), std::string::npos);
  ASSERT_TRUE(message(*fast, "all:news").is_ok());
  ASSERT_TRUE(transport_->wait_frames(*fast, 1));
  EXPECT_TRUE(transport_->frames(*slow).empty());
  EXPECT_GE(hub().stats().sends_refused, 2u);
  EXPECT_TRUE(eventually([&] { return hub().stats().held_bytes == 0; }));
}

// Connections belong to the transport, not to the object's history: a
// restore rolls the KV back but leaves every connection record as it is now.
TEST_F(ConnectionsTest, RestoreLeavesTheConnectionsAsTheyAre) {
  auto alice = connect("alice");
  auto carol = connect("carol");
  ASSERT_TRUE(alice.is_ok() && carol.is_ok());
  ASSERT_TRUE(message(*alice, "attach:v1").is_ok());
  auto mark = engine_->current_bookmark(room_);
  ASSERT_TRUE(mark.is_ok()) << mark.status().to_string();
  auto bob = connect("bob");  // opened after the bookmark
  ASSERT_TRUE(bob.is_ok());
  ASSERT_TRUE(message(*alice, "attach:v2").is_ok());
  ASSERT_TRUE(message(*carol, "close").is_ok());  // closed after the bookmark
  auto undo = engine_->restore(room_, *mark);
  ASSERT_TRUE(undo.is_ok()) << undo.status().to_string();

  EXPECT_EQ(kv("last"), std::optional<std::string>("attach:v1"));  // the KV rolled back
  std::vector<std::string> attachments;
  for (auto& info : list()) attachments.push_back(info.attachment);
  std::sort(attachments.begin(), attachments.end());
  EXPECT_EQ(attachments, (std::vector<std::string>{"bob", "v2"}));
}

TEST_F(ConnectionsTest, ConnectionRecordsAreHiddenFromKv) {
  auto id = connect("alice");
  ASSERT_TRUE(id.is_ok());
  Status s = engine_->run(room_, [&](Context& ctx) -> Status {
    Entries all;
    CARREL_ASSIGN_OR_RETURN(all, ctx.kv().list());
    for (auto& [k, v] : all) {
      if (k.find("carrel.conn") != std::string::npos) {
        return Status::aborted("a connection record is visible");
      }
    }
    const std::string reserved = std::string(8, '\xff') + std::string("carrel.conn\0x", 13);
    if (ctx.kv().put(reserved, "v").is_ok()) {
      return Status::aborted("a reserved key was writable");
    }
    // Keys on both sides of the reserved range list in order, around it.
    CARREL_RETURN_IF_ERROR(ctx.kv().put(std::string(8, '\xff'), "below"));
    CARREL_RETURN_IF_ERROR(ctx.kv().put(std::string(9, '\xff'), "above"));
    CARREL_ASSIGN_OR_RETURN(all, ctx.kv().list());
    if (all.size() != 2 || all[0].second != "below" || all[1].second != "above") {
      return Status::aborted("keys around the reserved range listed wrongly");
    }
    ListOptions reverse;
    reverse.reverse = true;
    reverse.limit = 1;
    CARREL_ASSIGN_OR_RETURN(all, ctx.kv().list(reverse));
    if (all.size() != 1 || all[0].second != "above") return Status::aborted("reverse list wrong");
    return ctx.kv().delete_all();
  });
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(list().size(), 1u);  // delete_all() keeps the connections
}

class ConnectionLimitTest : public ConnectionsTest {
  void tweak(Options& o) override { o.connections_per_object_max = 2; }
};

TEST_F(ConnectionLimitTest, ConnectionsPerObjectAreBounded) {
  ASSERT_TRUE(connect("a").is_ok());
  ASSERT_TRUE(connect("b").is_ok());
  auto third = connect("c");
  ASSERT_FALSE(third.is_ok());
  EXPECT_EQ(third.status().code(), Code::kBusy);
  EXPECT_NE(third.status().message().find("connections_per_object_max"), std::string::npos);
}

}  // namespace
}  // namespace carrel
