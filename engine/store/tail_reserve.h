// engine/store/tail_reserve.h — zero-filled room at the end of data.mdb, so a
// sync commit's fdatasync flushes data and not the file system's journal.
//
// LMDB grows data.mdb by writing past its end whenever a commit needs more
// pages than its freelist holds (a growing history, a growing SQL database).
// On ext4, as on other journaling file systems, an fdatasync after a write
// that extends the file or lands on blocks not yet allocated must also commit
// the journal (the new size and block map are needed to read the data back):
// a second write and device flush on the commit's path. TailReserve keeps the
// file written with zeros ahead of LMDB's last page, so the pages of a sync
// commit land on blocks that already exist. The zeros reach the disk with the
// next commit's sync (their writeback is started at once), one journal commit
// per refill instead of one per commit.
//
// Invariants:
//  (1) Zeros are written only at offsets at or past the file's size as fstat
//      gives it just before, and only on the committer thread between write
//      transactions (committer.h (1)): every page a meta page names lies below
//      the file's size, and no commit runs meanwhile that could put one there.
//  (2) The reserve holds no data: a page LMDB later writes there replaces zeros
//      that no meta page names; a crash that loses the zeros loses nothing.
//  (3) Bounded and proportional: the reserve is half the bytes LMDB uses,
//      clamped to [kReserveMinBytes, kReserveMaxBytes] (a small directory
//      gets a small one); a refill starts when less than a quarter of it is
//      left and writes up to it (rounded up to a page, never past the map), so
//      the file never runs more than kReserveMaxBytes past LMDB's last page.
//  (4) A failed write or fstat switches the reserve off for this open without
//      failing any commit: LMDB then grows the file itself, as without it.
//  (5) On only where writing over zeros lands on the same blocks: ext4 and XFS.
//      A copy-on-write file system (btrfs, ZFS) writes new blocks anyway, so
//      zeros would only double the bytes written; tmpfs has no journal.
#pragma once

#include <lmdb.h>

#include <cstdint>

namespace carrel::store {

class TailReserve {
 public:
  static constexpr uint64_t kReserveMinBytes = uint64_t{256} << 10;
  static constexpr uint64_t kReserveMaxBytes = uint64_t{8} << 20;
  static constexpr uint64_t kChunkBytes = uint64_t{1} << 20;
  static_assert(kReserveMinBytes <= kReserveMaxBytes, "(3)");
  static_assert(kReserveMinBytes >= 65536, "(3): a refill covers more than one commit's growth");

  // Invariant (3): the reserve for a file whose LMDB pages end at `used_bytes`.
  static uint64_t reserve_for(uint64_t used_bytes);

  // Off (never writes) unless `on` (only sync commits gain from it) and the
  // file system is one of (5)'s.
  TailReserve(MDB_env* env, bool on);
  // Invariant (5): whether data.mdb (descriptor fd) lies on ext4 or XFS.
  static bool file_system_gains(int fd);

  // Invariant (1): called by the committer after a commit that wrote pages.
  void after_commit();

  bool on() const { return on_; }
  // Zero bytes written since the open (tests read it).
  uint64_t zero_bytes_written() const { return zero_bytes_written_; }

 private:
  MDB_env* env_;
  bool on_;
  int fd_ = -1;
  uint64_t page_bytes_ = 0;
  uint64_t reserved_end_ = 0;  // the file's size at the open or after the last refill
  uint64_t zero_bytes_written_ = 0;
};

}  // namespace carrel::store
