// The zero-filled reserve at the end of data.mdb (engine/store/tail_reserve.h):
// where it writes, how far, when it refills, and that LMDB's data stays intact.
// Each test runs on a real LMDB environment in a temp dir.
#include "engine/store/tail_reserve.h"

#include <gtest/gtest.h>
#include <lmdb.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "tests/test_util.h"

namespace carrel::store {
namespace {

constexpr size_t kValueBytes = 1000;

class Env {
 public:
  explicit Env(const std::string& dir) {
    EXPECT_EQ(mdb_env_create(&env_), 0);
    EXPECT_EQ(mdb_env_set_mapsize(env_, size_t{1} << 30), 0);
    EXPECT_EQ(mdb_env_open(env_, dir.c_str(), MDB_NOTLS, 0644), 0);
    MDB_txn* txn = nullptr;
    EXPECT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    EXPECT_EQ(mdb_dbi_open(txn, nullptr, 0, &dbi_), 0);
    EXPECT_EQ(mdb_txn_commit(txn), 0);
  }
  ~Env() { mdb_env_close(env_); }
  MDB_env* get() const { return env_; }

  // Puts keys [first, first + n) with values of kValueBytes, in one commit.
  void put(uint32_t first, uint32_t n) {
    MDB_txn* txn = nullptr;
    ASSERT_EQ(mdb_txn_begin(env_, nullptr, 0, &txn), 0);
    for (uint32_t i = first; i < first + n; ++i) {
      std::string k = key(i), v = value(i);
      MDB_val kv{k.size(), k.data()}, vv{v.size(), v.data()};
      ASSERT_EQ(mdb_put(txn, dbi_, &kv, &vv, 0), 0);
    }
    ASSERT_EQ(mdb_txn_commit(txn), 0);
  }
  // Whether keys [0, n) read back as put.
  bool holds(uint32_t n) const {
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) return false;
    bool ok = true;
    for (uint32_t i = 0; i < n && ok; ++i) {
      std::string k = key(i);
      MDB_val kv{k.size(), k.data()}, vv{};
      ok = mdb_get(txn, dbi_, &kv, &vv) == 0 &&
           std::string(static_cast<char*>(vv.mv_data), vv.mv_size) == value(i);
    }
    mdb_txn_abort(txn);
    return ok;
  }
  // The bytes of data.mdb LMDB's newest meta page names.
  uint64_t used_bytes() const {
    MDB_envinfo info{};
    MDB_stat st{};
    EXPECT_EQ(mdb_env_info(env_, &info), 0);
    EXPECT_EQ(mdb_env_stat(env_, &st), 0);
    return (uint64_t{info.me_last_pgno} + 1) * st.ms_psize;
  }
  int fd() const {
    mdb_filehandle_t fd = -1;
    EXPECT_EQ(mdb_env_get_fd(env_, &fd), 0);
    return fd;
  }
  uint64_t file_bytes() const {
    struct stat st {};
    EXPECT_EQ(::fstat(fd(), &st), 0);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  static std::string key(uint32_t i) { return "key-" + std::to_string(1'000'000 + i); }
  static std::string value(uint32_t i) { return std::string(kValueBytes, static_cast<char>('a' + i % 26)); }
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

// Whether every byte of data.mdb in [from, to) is zero.
bool zeros(int fd, uint64_t from, uint64_t to) {
  std::string buf(1 << 16, '\0');
  for (uint64_t at = from; at < to;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), to - at));
    if (::pread(fd, buf.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) return false;
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] != '\0') return false;
    }
    at += n;
  }
  return true;
}

// The file system decides whether the reserve is on at all (tail_reserve.h (5));
// every test states what holds in either case.
TEST(TailReserveTest, OnOnlyForSyncCommitsOnExt4OrXfs) {
  testing::TempDir dir;
  Env env(dir.path());
  const bool gains = TailReserve::file_system_gains(env.fd());
  EXPECT_EQ(TailReserve(env.get(), true).on(), gains);
  EXPECT_FALSE(TailReserve(env.get(), false).on());
}

TEST(TailReserveTest, FillsZerosUpToTheReserveAheadOfLmdbsLastPage) {
  testing::TempDir dir;
  Env env(dir.path());
  TailReserve reserve(env.get(), true);
  env.put(0, 100);
  const uint64_t before = env.file_bytes();
  reserve.after_commit();
  if (!reserve.on()) {
    EXPECT_EQ(env.file_bytes(), before) << "an off reserve writes nothing";
    return;
  }
  const uint64_t used = env.used_bytes();
  EXPECT_GE(env.file_bytes(), used + TailReserve::reserve_for(used));
  EXPECT_LT(env.file_bytes(), used + TailReserve::reserve_for(used) + 65536) << "(3): bounded";
  EXPECT_TRUE(zeros(env.fd(), before, env.file_bytes())) << "(1): only past the old end";
  EXPECT_TRUE(env.holds(100));
}

TEST(TailReserveTest, OffWritesNothing) {
  testing::TempDir dir;
  Env env(dir.path());
  TailReserve reserve(env.get(), false);
  env.put(0, 100);
  const uint64_t before = env.file_bytes();
  reserve.after_commit();
  EXPECT_EQ(env.file_bytes(), before);
  EXPECT_EQ(reserve.zero_bytes_written(), 0u);
}

TEST(TailReserveTest, ReserveIsHalfTheUsedBytesWithinItsBounds) {
  EXPECT_EQ(TailReserve::reserve_for(0), TailReserve::kReserveMinBytes);
  EXPECT_EQ(TailReserve::reserve_for(uint64_t{4} << 20), uint64_t{2} << 20);
  EXPECT_EQ(TailReserve::reserve_for(uint64_t{1} << 40), TailReserve::kReserveMaxBytes);
}

TEST(TailReserveTest, RefillsOnlyWhenLessThanAQuarterIsLeft) {
  testing::TempDir dir;
  Env env(dir.path());
  TailReserve reserve(env.get(), true);
  env.put(0, 10);
  reserve.after_commit();
  if (!reserve.on()) return;  // off on this file system: OnOnlyForSyncCommitsOnExt4OrXfs
  const uint64_t first_fill = reserve.zero_bytes_written();
  const uint64_t file = env.file_bytes();
  // About 100 KiB more data: lands inside the reserve, no refill, the file keeps its size.
  env.put(10, 30);
  reserve.after_commit();
  EXPECT_EQ(reserve.zero_bytes_written(), first_fill);
  EXPECT_EQ(env.file_bytes(), file) << "LMDB wrote inside the reserve";
  // Past the quarter mark: one refill, back to a whole reserve of room.
  uint32_t next = 40;
  while (env.used_bytes() + TailReserve::reserve_for(env.used_bytes()) / 4 <= file) {
    env.put(next, 20);
    next += 20;
  }
  EXPECT_EQ(env.file_bytes(), file) << "still inside the reserve before the refill";
  reserve.after_commit();
  EXPECT_GT(reserve.zero_bytes_written(), first_fill);
  EXPECT_GE(env.file_bytes(), env.used_bytes() + TailReserve::reserve_for(env.used_bytes()));
  EXPECT_TRUE(env.holds(next));
}

TEST(TailReserveTest, EnvironmentWithAReserveReopensAndWritesIntoIt) {
  testing::TempDir dir;
  uint64_t file = 0;
  {
    Env env(dir.path());
    TailReserve reserve(env.get(), true);
    env.put(0, 100);
    reserve.after_commit();
    file = env.file_bytes();
  }
  Env env(dir.path());
  EXPECT_TRUE(env.holds(100));
  env.put(100, 20);
  EXPECT_TRUE(env.holds(120));
  TailReserve reserve(env.get(), true);
  reserve.after_commit();
  if (reserve.on()) {
    EXPECT_EQ(reserve.zero_bytes_written(), 0u) << "the reserve left by the last open still has room";
    EXPECT_EQ(env.file_bytes(), file);
  }
}

// A zero write the file system refuses (here: past RLIMIT_FSIZE, so EFBIG)
// turns the reserve off for the open and fails no commit (tail_reserve.h (4)).
// In a child process, so the limit binds nothing else.
TEST(TailReserveTest, RefusedZeroWriteTurnsTheReserveOffAndCommitsGoOn) {
  testing::TempDir dir;
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    {
      Env env(dir.path());
      TailReserve reserve(env.get(), true);
      env.put(0, 10);
      if (reserve.on()) {
        ::signal(SIGXFSZ, SIG_IGN);
        const rlim_t limit = env.file_bytes() + 65536;
        struct rlimit rl {limit, limit};
        if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(10);
        reserve.after_commit();
        if (reserve.on()) code = 11;                 // (4): off after the refused write
        if (env.file_bytes() > limit) code = 12;     // nothing past the limit
        env.put(10, 5);                              // LMDB goes on inside the limit
        reserve.after_commit();                      // off: writes nothing
        if (!env.holds(15)) code = 13;
      }
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of a signal";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: setrlimit failed; 11: still on; 12: wrote past the "
                                       "limit; 13: data lost";
}

}  // namespace
}  // namespace carrel::store
