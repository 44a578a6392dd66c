// engine/store/tail_reserve.cc — see tail_reserve.h for the invariants.
#include "engine/store/tail_reserve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>

#include "engine/base/check.h"

namespace carrel::store {
namespace {

// Never written. Not const, so it lives in .bss (pages of the shared zero page
// until touched) instead of as a megabyte of zeros in the binary's .rodata.
alignas(4096) char zero_chunk[TailReserve::kChunkBytes];
// statfs(2) f_type values.
constexpr long kExt4Magic = 0xEF53;  // ext2, ext3 and ext4 share it
constexpr long kXfsMagic = 0x58465342;

}  // namespace

TailReserve::TailReserve(MDB_env* env, bool on) : env_(env), on_(on) {
  if (!on_) return;
  MDB_stat st{};
  mdb_filehandle_t fd = -1;
  on_ = mdb_env_stat(env_, &st) == 0 && mdb_env_get_fd(env_, &fd) == 0 && fd >= 0 &&
        file_system_gains(fd);
  fd_ = fd;
  page_bytes_ = st.ms_psize;
  // A reserve left by an earlier open counts as room.
  struct stat file {};
  if (on_ && ::fstat(fd_, &file) == 0) reserved_end_ = static_cast<uint64_t>(file.st_size);
}

bool TailReserve::file_system_gains(int fd) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0) return false;
  const auto type = static_cast<long>(fs.f_type);
  return type == kExt4Magic || type == kXfsMagic;
}

uint64_t TailReserve::reserve_for(uint64_t used_bytes) {
  return std::clamp(used_bytes / 2, kReserveMinBytes, kReserveMaxBytes);
}

void TailReserve::after_commit() {
  if (!on_) return;
  MDB_envinfo info{};
  if (mdb_env_info(env_, &info) != 0) {
    on_ = false;  // (4)
    return;
  }
  const uint64_t used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * page_bytes_;
  const uint64_t reserve = reserve_for(used);
  if (used + reserve / 4 <= reserved_end_) return;

  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    on_ = false;  // (4)
    return;
  }
  // (1): from the file's end only; whatever lies below it is LMDB's.
  const auto start = static_cast<uint64_t>(st.st_size);
  uint64_t end = (used + reserve + page_bytes_ - 1) / page_bytes_ * page_bytes_;
  end = std::min<uint64_t>(end, info.me_mapsize);
  reserved_end_ = std::max(start, end);
  if (end <= start) return;
  // (3): at most kReserveMaxBytes / kChunkBytes + 1 writes.
  for (uint64_t at = start; at < end;) {
    const size_t n = static_cast<size_t>(std::min(kChunkBytes, end - at));
    const ssize_t w = ::pwrite(fd_, zero_chunk, n, static_cast<off_t>(at));
    if (w <= 0) {
      on_ = false;  // (4): a full disk, or the file refused; LMDB grows it itself
      return;
    }
    at += static_cast<uint64_t>(w);
    zero_bytes_written_ += static_cast<uint64_t>(w);
  }
  // Start the zeros' writeback now, so the next commit's sync finds most of it done.
  (void)::sync_file_range(fd_, static_cast<off_t>(start), static_cast<off_t>(end - start),
                          SYNC_FILE_RANGE_WRITE);
}

}  // namespace carrel::store
