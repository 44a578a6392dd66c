// Pre-mapping checks of data.mdb (invariants in env_check.h). The layout read
// here is LMDB's on-disk format (mdb.c, MDB_page and MDB_meta, 64-bit build):
//
//   page header (16 bytes): pgno u64 | pad u16 | flags u16 | lower u16 | upper u16
//   meta (after the header): magic u32 | version u32 | address u64 | mapsize u64
//                            | dbs[2] (48 bytes each) | last_pg u64 | txnid u64
//   MDB_db: pad u32 (the page size, in the free-pages db) | flags u16 | depth u16
//           | branch, leaf, overflow pages, entries, root: u64 each
//
// Meta page 0 is at offset 0 and meta page 1 at offset page size; LMDB reads
// the one with the larger txnid.
#include "tools/cli/env_check.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace carrel::cli {
namespace {

static_assert(sizeof(size_t) == 8, "the meta layout below is LMDB's 64-bit layout");

constexpr uint32_t kMdbMagic = 0xBEEFC0DE;
constexpr uint32_t kMdbDataVersion = 1;
constexpr uint16_t kPageMetaFlag = 0x08;
constexpr size_t kPageHeaderBytes = 16;
constexpr size_t kDbBytes = 48;
constexpr size_t kMetaBytes = 4 + 4 + 8 + 8 + 2 * kDbBytes + 8 + 8;
constexpr uint64_t kInvalidPage = ~uint64_t{0};
constexpr uint32_t kPageBytesMin = 512;
constexpr uint32_t kPageBytesMax = 65536;
static_assert(kPageHeaderBytes + kMetaBytes <= kPageBytesMin);

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

struct Meta {
  uint32_t page_bytes = 0;
  uint64_t free_root = 0, main_root = 0, last_page = 0, txnid = 0;
};

Result<Meta> read_meta(int fd, uint64_t page_no, uint64_t offset, const std::string& file,
                       const std::string& remedy) {
  unsigned char buf[kPageHeaderBytes + kMetaBytes];
  ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(offset));
  if (n < 0) return Status::io_error("read '" + file + "': " + std::strerror(errno));
  std::string which = "meta page " + std::to_string(page_no);
  if (static_cast<size_t>(n) < sizeof(buf)) {
    return Status::corruption("'" + file + "' is too short to hold LMDB's " + which + remedy);
  }
  const unsigned char* m = buf + kPageHeaderBytes;
  if (load<uint32_t>(m) != kMdbMagic) {
    return Status::corruption("'" + file + "' is not an LMDB environment (" + which +
                              " lacks LMDB's magic number)" + remedy);
  }
  if (load<uint32_t>(m + 4) != kMdbDataVersion) {
    return Status::corruption("'" + file + "' has LMDB data version " +
                              std::to_string(load<uint32_t>(m + 4)) + " in its " + which +
                              "; this build reads version 1" + remedy);
  }
  if (load<uint64_t>(buf) != page_no || (load<uint16_t>(buf + 10) & kPageMetaFlag) == 0) {
    return Status::corruption("'" + file + "': " + which + " has a damaged page header" + remedy);
  }
  Meta meta;
  const unsigned char* dbs = m + 24;
  meta.page_bytes = load<uint32_t>(dbs);  // the free-pages db's pad holds the page size
  meta.free_root = load<uint64_t>(dbs + 40);
  meta.main_root = load<uint64_t>(dbs + kDbBytes + 40);
  meta.last_page = load<uint64_t>(m + 24 + 2 * kDbBytes);
  meta.txnid = load<uint64_t>(m + 24 + 2 * kDbBytes + 8);
  return meta;
}

}  // namespace

Result<EnvFileFigures> check_env_file(const std::string& dir) {
  std::string file = dir + "/data.mdb";
  const std::string remedy =
      "; no command can read it: restore the directory from a backup (`carrel backup` copies)";
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("'" + file + "' does not exist");
    return Status::io_error("open '" + file + "': " + std::strerror(errno));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::io_error("stat '" + file + "': " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return Status::corruption("'" + file + "' is not a regular file");
  EnvFileFigures f;
  f.file_bytes = static_cast<uint64_t>(st.st_size);
  if (f.file_bytes == 0) {
    return Status::corruption("'" + file + "' is empty (0 bytes), not an LMDB environment" +
                              remedy);
  }
  CARREL_ASSIGN_OR_RETURN(Meta m0, read_meta(fd, 0, 0, file, remedy));
  uint32_t ps = m0.page_bytes;
  if (ps < kPageBytesMin || ps > kPageBytesMax || (ps & (ps - 1)) != 0) {
    return Status::corruption("'" + file + "': meta page 0 records a page size of " +
                              std::to_string(ps) + " bytes, not a power of two in [512, 65536]" +
                              remedy);
  }
  CARREL_ASSIGN_OR_RETURN(Meta m1, read_meta(fd, 1, ps, file, remedy));
  if (m1.page_bytes != ps) {
    return Status::corruption("'" + file + "': the meta pages disagree on the page size (" +
                              std::to_string(ps) + " and " + std::to_string(m1.page_bytes) + ")" +
                              remedy);
  }
  const Meta& m = m0.txnid < m1.txnid ? m1 : m0;  // LMDB's pick: the larger txnid
  f.page_bytes = ps;
  f.last_page = m.last_page;
  f.txnid = m.txnid;
  if (m.last_page < 1 || m.last_page > (uint64_t{1} << 48)) {
    return Status::corruption("'" + file + "': the newest meta page records last page " +
                              std::to_string(m.last_page) + ", which is out of range" + remedy);
  }
  for (uint64_t root : {m.free_root, m.main_root}) {
    if (root != kInvalidPage && (root < 2 || root > m.last_page)) {
      return Status::corruption("'" + file + "': the newest meta page has a root at page " +
                                std::to_string(root) + ", outside pages 2.." +
                                std::to_string(m.last_page) + remedy);
    }
  }
  uint64_t needed = (m.last_page + 1) * ps;
  if (f.file_bytes < needed) {
    return Status::corruption("'" + file + "' is " + std::to_string(f.file_bytes) +
                              " bytes but its last committed page ends at byte " +
                              std::to_string(needed) + " (the file is truncated)" + remedy);
  }
  return f;
}

}  // namespace carrel::cli
