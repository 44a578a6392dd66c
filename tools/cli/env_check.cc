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
#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

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

// A meta page's fields from its first kPageHeaderBytes + kMetaBytes bytes.
Result<Meta> parse_meta(const unsigned char* buf, uint64_t page_no, const std::string& file,
                        const std::string& remedy) {
  std::string which = "meta page " + std::to_string(page_no);
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

Result<Meta> read_meta(int fd, uint64_t page_no, uint64_t offset, const std::string& file,
                       const std::string& remedy) {
  unsigned char buf[kPageHeaderBytes + kMetaBytes];
  ssize_t n = ::pread(fd, buf, sizeof(buf), static_cast<off_t>(offset));
  if (n < 0) return Status::io_error("read '" + file + "': " + std::strerror(errno));
  if (static_cast<size_t>(n) < sizeof(buf)) {
    return Status::corruption("'" + file + "' is too short to hold LMDB's meta page " +
                              std::to_string(page_no) + remedy);
  }
  return parse_meta(buf, page_no, file, remedy);
}

// Invariant (3): a walk of the B-trees of one snapshot with pread, checking
// every page header before any of its bytes are trusted.
class TreeWalker {
 public:
  TreeWalker(int fd, const std::string& file, uint32_t page_bytes, uint64_t last_page)
      : fd_(fd), file_(file), ps_(page_bytes), last_(last_page), seen_(last_page + 1, false) {}

  // Walks the tree under root (kInvalidPage: an empty database). named:
  // the main database, whose F_SUBDATA leaves are the named databases.
  Status walk(uint64_t root, const std::string& db, bool named, int depth = 0) {
    if (root == kInvalidPage) return Status::ok();
    if (depth > kDepthMax) return bad(db, root, "is deeper than " + std::to_string(kDepthMax));
    CARREL_RETURN_IF_ERROR(read(root, db));
    uint16_t flags = load<uint16_t>(page_.data() + 10);
    uint16_t lower = load<uint16_t>(page_.data() + 12);
    uint16_t upper = load<uint16_t>(page_.data() + 14);
    bool branch = (flags & kPageBranch) != 0, leaf = (flags & kPageLeaf) != 0;
    if (branch == leaf || (flags & (kPageOverflow | kPageMeta | kPageLeaf2 | kPageSub)) != 0) {
      return bad(db, root, "has flags " + std::to_string(flags) + ", not a branch or leaf page");
    }
    if (lower < kPageHeaderBytes || lower > upper || upper > ps_ || (lower & 1) != 0) {
      return bad(db, root,
                 "has free-space bounds " + std::to_string(lower) + ".." + std::to_string(upper) +
                     " outside the page");
    }
    size_t keys = (lower - kPageHeaderBytes) / 2;
    if (keys == 0) return bad(db, root, "holds no entries");
    // Copy what the recursion needs: page_ is reused below.
    std::vector<std::pair<uint64_t, std::string>> next;   // (child or sub-db root, name)
    std::vector<std::pair<uint64_t, uint64_t>> overflow;  // (first page, bytes)
    for (size_t i = 0; i < keys; ++i) {
      uint16_t at = load<uint16_t>(page_.data() + kPageHeaderBytes + 2 * i);
      if (at < upper || static_cast<size_t>(at) + kNodeBytes > ps_) {
        return bad(db, root, "has entry " + std::to_string(i) + " outside the page");
      }
      const unsigned char* node = page_.data() + at;
      uint64_t lo = load<uint16_t>(node), hi = load<uint16_t>(node + 2);
      uint16_t nflags = load<uint16_t>(node + 4), ksize = load<uint16_t>(node + 6);
      size_t end = static_cast<size_t>(at) + kNodeBytes + ksize;
      if (end > ps_) return bad(db, root, "has entry " + std::to_string(i) + " past the page");
      if (branch) {
        uint64_t child = lo | hi << 16 | static_cast<uint64_t>(nflags) << 32;
        next.emplace_back(child, db);
        continue;
      }
      uint64_t dsize = lo | hi << 16;
      if ((nflags & kNodeBigData) != 0) {
        if (end + 8 > ps_)
          return bad(db, root, "has entry " + std::to_string(i) + " past the page");
        overflow.emplace_back(load<uint64_t>(node + kNodeBytes + ksize), dsize);
        continue;
      }
      if (end + dsize > ps_) {
        return bad(db, root, "has entry " + std::to_string(i) + " whose value runs past the page");
      }
      if ((nflags & kNodeSubData) != 0) {
        if (!named || dsize != kDbBytes) {
          return bad(db, root, "has a sub-database entry where none can be");
        }
        std::string name(reinterpret_cast<const char*>(node + kNodeBytes), ksize);
        next.emplace_back(load<uint64_t>(node + kNodeBytes + ksize + 40), name);
      }
    }
    for (const auto& [first, bytes] : overflow)
      CARREL_RETURN_IF_ERROR(check_overflow(first, bytes, db));
    for (const auto& [child, name] : next) {
      bool sub = branch ? named : false;
      CARREL_RETURN_IF_ERROR(walk(child, name, sub, branch ? depth + 1 : 0));
    }
    return Status::ok();
  }

 private:
  static constexpr int kDepthMax = 32;
  static constexpr uint16_t kPageBranch = 0x01, kPageLeaf = 0x02, kPageOverflow = 0x04,
                            kPageMeta = 0x08, kPageLeaf2 = 0x20, kPageSub = 0x40;
  static constexpr uint16_t kNodeBigData = 0x01, kNodeSubData = 0x02;
  static constexpr size_t kNodeBytes = 8;

  Status bad(const std::string& db, uint64_t page, const std::string& why) const {
    return Status(Code::kCorruption,
                  "'" + file_ + "': page " + std::to_string(page) + " of database '" + db + "' " +
                      why + std::string(kPageRemedy),
                  Detail::kDamagedPage);
  }
  Status read(uint64_t page, const std::string& db) {
    if (page < 2 || page > last_) {
      return bad(db, page, "is outside pages 2.." + std::to_string(last_));
    }
    if (seen_[page]) return bad(db, page, "is reached twice (a cycle or a shared page)");
    seen_[page] = true;
    page_.resize(ps_);
    ssize_t n = ::pread(fd_, page_.data(), ps_, static_cast<off_t>(page * ps_));
    if (n != static_cast<ssize_t>(ps_)) return bad(db, page, "cannot be read whole");
    if (load<uint64_t>(page_.data()) != page) {
      return bad(db, page, "carries page number " + std::to_string(load<uint64_t>(page_.data())));
    }
    return Status::ok();
  }
  Status check_overflow(uint64_t first, uint64_t bytes, const std::string& db) {
    CARREL_RETURN_IF_ERROR(read(first, db));
    uint16_t flags = load<uint16_t>(page_.data() + 10);
    uint32_t pages = load<uint32_t>(page_.data() + 12);
    if ((flags & kPageOverflow) == 0)
      return bad(db, first, "is not the overflow page it should be");
    if (pages == 0 || first + pages - 1 > last_ ||
        bytes > static_cast<uint64_t>(pages) * ps_ - kPageHeaderBytes) {
      return bad(db, first,
                 "starts an overflow run of " + std::to_string(pages) +
                     " pages that does not fit the file or its value");
    }
    for (uint64_t p = first + 1; p < first + pages; ++p) seen_[p] = true;
    return Status::ok();
  }

  int fd_;
  const std::string& file_;
  uint32_t ps_;
  uint64_t last_;
  std::vector<bool> seen_;
  std::vector<unsigned char> page_;
};

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
  if (::fstat(fd, &st) != 0)
    return Status::io_error("stat '" + file + "': " + std::strerror(errno));
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
  // The size is taken after the metas: a writer extends the file before it
  // writes the meta that names the new pages, so a commit racing this check
  // cannot make a whole file look truncated.
  if (::fstat(fd, &st) != 0)
    return Status::io_error("stat '" + file + "': " + std::strerror(errno));
  f.file_bytes = static_cast<uint64_t>(st.st_size);
  if (f.file_bytes < needed) {
    return Status::corruption("'" + file + "' is " + std::to_string(f.file_bytes) +
                              " bytes but its last committed page ends at byte " +
                              std::to_string(needed) + " (the file is truncated)" + remedy);
  }
  return f;
}

namespace {

// Walks the trees `meta` names (invariant (3)); with `pick`, the meta is
// instead the slot of data.mdb that pick chooses, or nothing is checked when
// it chooses none.
Status walk_trees(const std::string& dir, const std::optional<Meta>& meta,
                  const std::function<const Meta*(const Meta&, const Meta&)>& pick) {
  std::string file = dir + "/data.mdb";
  const std::string remedy(kPageRemedy);
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::io_error("open '" + file + "': " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const Meta* m = meta ? &*meta : nullptr;
  Meta m0, m1;
  if (!meta) {
    CARREL_ASSIGN_OR_RETURN(m0, read_meta(fd, 0, 0, file, remedy));
    CARREL_ASSIGN_OR_RETURN(m1, read_meta(fd, 1, m0.page_bytes, file, remedy));
    m = pick(m0, m1);
    if (m == nullptr) return Status::ok();
  }
  TreeWalker w(fd, file, m->page_bytes, m->last_page);
  CARREL_RETURN_IF_ERROR(w.walk(m->free_root, "(free pages)", /*named=*/false));
  return w.walk(m->main_root, "(main)", /*named=*/true);
}

}  // namespace

Status check_env_tree(const std::string& dir, uint64_t txnid) {
  // Newer commits may have replaced both metas: then there is nothing to check.
  return walk_trees(dir, std::nullopt, [txnid](const Meta& m0, const Meta& m1) -> const Meta* {
    return m0.txnid == txnid ? &m0 : m1.txnid == txnid ? &m1 : nullptr;
  });
}

Status check_env_tree_at(const std::string& dir, std::string_view meta_page) {
  if (meta_page.size() < kPageHeaderBytes + kMetaBytes) {
    return Status::corruption("the redo log's checkpoint holds " +
                              std::to_string(meta_page.size()) + " bytes of a meta page; " +
                              std::to_string(kPageHeaderBytes + kMetaBytes) + " are needed");
  }
  const auto* buf = reinterpret_cast<const unsigned char*>(meta_page.data());
  CARREL_ASSIGN_OR_RETURN(
      Meta m, parse_meta(buf, load<uint64_t>(buf), dir + "/data.mdb", std::string(kPageRemedy)));
  return walk_trees(dir, m, nullptr);
}

Status explain_damage(const std::string& dir, const Status& s) {
  // A failed transaction (MDB_BAD_TXN) follows an earlier failure in it:
  // damage only when the page check finds it.
  bool damage = s.detail() == Detail::kDamagedPage;
  if (!damage && s.detail() != Detail::kFailedTxn) return s;
  auto figures = check_env_file(dir);
  if (!figures.is_ok()) return figures.status().code() == Code::kNotFound ? s : figures.status();
  CARREL_RETURN_IF_ERROR(check_env_tree(dir, figures->txnid));
  if (!damage) return s;
  return Status(Code::kCorruption,
                "'" + dir + "/data.mdb' is damaged: " + s.message() + std::string(kPageRemedy),
                Detail::kDamagedPage);
}

}  // namespace carrel::cli
