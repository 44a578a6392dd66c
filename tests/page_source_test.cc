// ObjectPageSource (engine/loop/page_source.h): where a turn reads one
// object's SQL pages from, and what it keeps for commits not yet durable.
#include "engine/loop/page_source.h"

#include <gtest/gtest.h>

#include "engine/loop/object.h"
#include "engine/store/checksum.h"
#include "engine/store/keys.h"
#include "engine/store/store.h"
#include "tests/test_util.h"

namespace carrel {
namespace {

using detail::Activation;
using detail::CommitBatch;
using detail::ObjectPageSource;
using detail::ObjectSql;

constexpr uint32_t kPageBytes = 1024;
constexpr size_t kTurnBytesMax = 64 * kPageBytes;

class PageSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store::StoreOptions o;
    o.dir = dir_.sub("engine");
    o.sql_page_bytes = kPageBytes;
    auto s = store::Store::open(o);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
    auto t = store_->begin_read();
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    snapshot_ = std::move(*t);
  }

  // Writes page 0 filled with fill in a turn and seals it as commit seq.
  void seal_page(ObjectPageSource& pages, char fill, uint64_t seq) {
    pages.begin_turn(&snapshot_, /*durable_pages=*/0);
    ASSERT_TRUE(pages.write_page(0, std::string(kPageBytes, fill)).is_ok());
    CommitBatch batch;
    batch.seq = seq;
    pages.take_turn_writes(&batch);
    ASSERT_EQ(batch.pages.size(), 1u);
    ASSERT_EQ(batch.sql_pages, std::optional<uint32_t>(1));
  }

  testing::TempDir dir_;
  std::unique_ptr<store::Store> store_;
  store::ReadTxn snapshot_;
  ObjectId id_ = id_from_name("Doc", "pages");
  store::ObjectNo no_{1};
};

TEST_F(PageSourceTest, PagesOfASealedCommitReadAsPendingUntilPrunedPastIt) {
  ObjectPageSource pages(id_, no_, kPageBytes, kTurnBytesMax);
  seal_page(pages, 'a', /*seq=*/3);
  std::string page;
  auto found = pages.read_page(0, &page);
  ASSERT_TRUE(found.is_ok() && *found);
  EXPECT_EQ(page, std::string(kPageBytes, 'a'));

  pages.prune(2);  // an older commit became durable: still pending
  found = pages.read_page(0, &page);
  ASSERT_TRUE(found.is_ok() && *found);
  EXPECT_EQ(page, std::string(kPageBytes, 'a'));
  pages.prune(3);  // LMDB holds commit 3 now: the snapshot decides (this one is empty)
  found = pages.read_page(0, &page);
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(*found);
}

// The VFS reads slices (PageSource::read_slice): the bytes read_page gives,
// from whichever layer holds the page, and false for a page that reads as
// absent, leaving the buffer as it was.
TEST_F(PageSourceTest, SlicesAreThePageBytesOfTheLayerThatHoldsThePage) {
  ObjectPageSource pages(id_, no_, kPageBytes, kTurnBytesMax);
  seal_page(pages, 'a', /*seq=*/3);  // page 0 pending
  std::string turn_page(kPageBytes, 'b');
  turn_page[100] = 'x';
  ASSERT_TRUE(pages.write_page(1, turn_page).is_ok());  // page 1 in the turn
  std::string slice(10, '-');
  auto found = pages.read_slice(0, 95, 10, slice.data());
  ASSERT_TRUE(found.is_ok() && *found) << found.status().to_string();
  EXPECT_EQ(slice, std::string(10, 'a'));
  found = pages.read_slice(1, 95, 10, slice.data());
  ASSERT_TRUE(found.is_ok() && *found) << found.status().to_string();
  EXPECT_EQ(slice, turn_page.substr(95, 10));
  std::string whole(kPageBytes, '-');
  found = pages.read_slice(1, 0, kPageBytes, whole.data());
  ASSERT_TRUE(found.is_ok() && *found) << found.status().to_string();
  EXPECT_EQ(whole, turn_page);
  found = pages.read_slice(2, 0, 10, slice.data());  // past the file
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(*found);
  EXPECT_EQ(slice, turn_page.substr(95, 10));
}

TEST_F(PageSourceTest, TheBoundPageCountIsTheSealedOneWithoutALookup) {
  // Invariant (4): the count comes from the caller (the activation), not from
  // the object record in the snapshot, which holds none here.
  ObjectPageSource pages(id_, no_, kPageBytes, kTurnBytesMax);
  pages.begin_turn(&snapshot_, /*sealed_pages=*/7);
  EXPECT_EQ(pages.page_count(), 7u);
  std::string page;
  auto found = pages.read_page(7, &page);
  ASSERT_TRUE(found.is_ok());
  EXPECT_FALSE(*found);
}

TEST_F(PageSourceTest, SealingAdvancesTheBoundCountForTheRestOfTheTurn) {
  // Invariant (4): after a mid-turn seal (ctx.call) the file keeps its new length.
  ObjectPageSource pages(id_, no_, kPageBytes, kTurnBytesMax);
  pages.begin_turn(&snapshot_, /*sealed_pages=*/1);
  ASSERT_TRUE(pages.write_page(3, std::string(kPageBytes, 'c')).is_ok());
  EXPECT_EQ(pages.page_count(), 4u);
  CommitBatch batch;
  batch.seq = 1;
  pages.take_turn_writes(&batch);
  EXPECT_EQ(batch.sql_pages, std::optional<uint32_t>(4));
  EXPECT_FALSE(pages.has_turn_writes());
  EXPECT_EQ(pages.page_count(), 4u);
}

// store/checksum.h (4): a sealed page is one buffer, shared by the batch and
// the pending pages, that opens under its own key.
TEST_F(PageSourceTest, TheBatchAndThePendingPagesShareOneSealedPage) {
  ObjectPageSource pages(id_, no_, kPageBytes, kTurnBytesMax);
  pages.begin_turn(&snapshot_, /*sealed_pages=*/0);
  ASSERT_TRUE(pages.write_page(0, std::string(kPageBytes, 'd')).is_ok());
  CommitBatch batch;
  batch.seq = 5;
  pages.take_turn_writes(&batch);
  ASSERT_EQ(batch.pages.size(), 1u);
  const store::SealedBytes& sealed = batch.pages[0].second;
  ASSERT_NE(sealed, nullptr);
  auto opened = store::open(store::Db::kPages, store::page_key(no_, 0), *sealed);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  EXPECT_EQ(*opened, std::string(kPageBytes, 'd'));
  EXPECT_EQ(sealed.use_count(), 2) << "the pending pages hold a copy of their own";
  pages.prune(5);
  EXPECT_EQ(sealed.use_count(), 1);
}

TEST_F(PageSourceTest, AnActivationMovesWithItsPendingPages) {
  Activation a;
  a.sql = std::make_unique<ObjectSql>(id_, no_, kPageBytes, kTurnBytesMax);
  seal_page(a.sql->pages, 'b', /*seq=*/1);
  Activation moved(std::move(a));
  Activation assigned;
  assigned = std::move(moved);
  std::string page;
  auto found = assigned.sql->pages.read_page(0, &page);
  ASSERT_TRUE(found.is_ok() && *found);
  EXPECT_EQ(page, std::string(kPageBytes, 'b'));
}

}  // namespace
}  // namespace carrel
