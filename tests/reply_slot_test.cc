// engine/loop/reply_slot.h: a reply reaches its waiter whether it arrives
// before or after the waiter sleeps, and the waiter may destroy the slot as
// soon as wait() returns (invariant (2)): the ASan and TSan stages of
// scripts/test run these too.
#include "engine/loop/reply_slot.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "engine/base/check.h"

namespace carrel::detail {
namespace {

TEST(ReplySlotTest, AReplyFilledBeforeTheWaitIsReturned) {
  ReplySlot<std::string> slot;
  slot.fill("early");
  EXPECT_EQ(slot.wait(), "early");
}

TEST(ReplySlotTest, AReplyFilledLaterWakesTheSleepingWaiter) {
  ReplySlot<std::unique_ptr<int>> slot;
  std::atomic<bool> waiting{false};
  std::thread filler([&] {
    // Bounded: the waiter announces itself before it waits.
    for (int i = 0; i < 10000 && !waiting.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // most likely asleep by now
    slot.fill(std::make_unique<int>(7));
  });
  waiting.store(true);
  std::unique_ptr<int> got = slot.wait();
  filler.join();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(*got, 7);
}

// Each slot lives on the waiter's stack and dies the moment wait() returns,
// while its filler may still be inside fill(): a write after the publishing
// exchange would be a use after scope under ASan, a race under TSan, or a
// wrong value read here.
TEST(ReplySlotTest, TheWaiterMayDestroyTheSlotAsSoonAsItsWaitReturns) {
  constexpr int kRounds = 20000;
  std::atomic<ReplySlot<int>*> current{nullptr};
  std::atomic<bool> done{false};
  std::thread filler([&] {
    int next = 0;
    while (!done.load(std::memory_order_acquire)) {
      ReplySlot<int>* slot = current.exchange(nullptr, std::memory_order_acq_rel);
      if (slot) slot->fill(next++);
    }
  });
  for (int i = 0; i < kRounds; ++i) {
    ReplySlot<int> slot;
    current.store(&slot, std::memory_order_release);
    const int got = slot.wait();
    EXPECT_EQ(got, i);
    if (got != i) break;  // the filler is joined below either way
  }
  done.store(true, std::memory_order_release);
  filler.join();
}

TEST(ReplySlotDeathTest, ASecondFillStopsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ReplySlot<int> slot;
  slot.fill(1);
  EXPECT_DEATH(slot.fill(2), "reply_slot.h \\(1\\): a reply slot is filled exactly once");
}

}  // namespace
}  // namespace carrel::detail
