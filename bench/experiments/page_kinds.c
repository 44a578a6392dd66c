// Which LMDB pages a group commit writes to data.mdb, by kind (docs/design-notes.md,
// "Redo files lost by hand are found" and the session notes on bytes per commit): an
// LD_PRELOAD shim that looks at every page carrel-bench passes to pwrite/writev on
// data.mdb and, at exit, prints the pages per commit of each kind and the bytes per
// commit written to data.mdb and to the redo log.
//
//   cc -O2 -shared -fPIC -o page_kinds.so bench/experiments/page_kinds.c -ldl
//   LD_PRELOAD=$PWD/page_kinds.so build-release/bench/carrel-bench sql-insert
//       --objects 100 --clients 16 --durability sync --seconds 4 --engines carrel
//   (one command line)
//
// A commit is counted at each write of a meta page (a write of less than a page into
// the first two pages). A leaf's database is guessed from the key of its first node,
// which is carrel's layout (engine/store/keys.h), not something LMDB records:
//   8 bytes starting with three zero bytes: history (log numbers are big-endian);
//   other 8-byte keys: LMDB's free list (transaction ids, little-endian);
//   16 bytes: objects (an id); 12 bytes: pages (the object's number and the page
//   number, keys.h since format carrel-7) — a KV key of 4 bytes looks the same; a
//   database name: the main database; checkpoint_log_no, format, next_*: meta; other
//   keys longer than 8 bytes: kv.
// Counts are approximate for that reason; a run with --engines carrel only writes
// nothing else to a file named data.mdb.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

enum { kBranch, kOverflow, kPages, kHistory, kFree, kMain, kMeta, kObjects, kKv, kOther,
       kCommits, kDataBytes, kRedoBytes, kCounts };
static const char* const kNames[] = {"branch", "overflow", "pages", "history", "free",
                                     "main", "meta", "objects", "kv", "other"};
static atomic_long counts[kCounts];

// 1: data.mdb, 2: a redo file, 0: anything else.
static int file_kind(int fd) {
  char path[64], target[512];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = 0;
  if (n >= 8 && strcmp(target + n - 8, "data.mdb") == 0) return 1;
  return strstr(target, "/redo.") != NULL ? 2 : 0;
}

static int is_name(const unsigned char* key, int size, const char* name) {
  return size == (int)strlen(name) && memcmp(key, name, (size_t)size) == 0;
}

static void count_pages(const unsigned char* buf, size_t len) {
  for (size_t off = 0; off + 4096 <= len; off += 4096) {
    const unsigned char* p = buf + off;
    const int flags = p[10] | (p[11] << 8);
    if (flags & 1) { counts[kBranch]++; continue; }
    if (flags & 4) {  // an overflow run: its page count follows the flags
      uint32_t pages = 0;
      memcpy(&pages, p + 12, 4);
      counts[kOverflow]++;
      if (pages > 1) off += (size_t)(pages - 1) * 4096;
      continue;
    }
    if (!(flags & 2)) { counts[kOther]++; continue; }
    const int first = p[16] | (p[17] << 8);
    if (first + 8 > 4096) { counts[kOther]++; continue; }
    const unsigned char* node = p + first;
    const int ksize = node[6] | (node[7] << 8);
    const unsigned char* key = node + 8;
    if (first + 8 + ksize > 4096) counts[kOther]++;
    else if (ksize == 8) counts[key[0] == 0 && key[1] == 0 && key[2] == 0 ? kHistory : kFree]++;
    else if (ksize == 16) counts[kObjects]++;
    else if (ksize == 12) counts[kPages]++;
    else if (is_name(key, ksize, "alarms") || is_name(key, ksize, "dead") ||
             is_name(key, ksize, "history") || is_name(key, ksize, "kv"))
      counts[kMain]++;
    else if (ksize >= 5 && (memcmp(key, "checkpoint", ksize < 10 ? ksize : 10) == 0 ||
                            memcmp(key, "format", ksize < 6 ? ksize : 6) == 0 ||
                            memcmp(key, "next_", 5) == 0))
      counts[kMeta]++;
    else if (ksize > 8) counts[kKv]++;
    else counts[kOther]++;
  }
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t at) {
  static ssize_t (*real)(int, const void*, size_t, off_t);
  if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
  switch (file_kind(fd)) {
    case 1:
      if (at < 8192 && n < 4096) counts[kCommits]++;
      else count_pages(buf, n);
      counts[kDataBytes] += (long)n;
      break;
    case 2: counts[kRedoBytes] += (long)n; break;
  }
  return real(fd, buf, n, at);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t at) { return pwrite64(fd, buf, n, at); }

ssize_t writev(int fd, const struct iovec* iov, int count) {
  static ssize_t (*real)(int, const struct iovec*, int);
  if (!real) real = dlsym(RTLD_NEXT, "writev");
  const int kind = file_kind(fd);
  for (int i = 0; kind != 0 && i < count; ++i) {
    if (kind == 1) count_pages(iov[i].iov_base, iov[i].iov_len);
    counts[kind == 1 ? kDataBytes : kRedoBytes] += (long)iov[i].iov_len;
  }
  return real(fd, iov, count);
}

ssize_t write(int fd, const void* buf, size_t n) {
  static ssize_t (*real)(int, const void*, size_t);
  if (!real) real = dlsym(RTLD_NEXT, "write");
  if (file_kind(fd) == 2) counts[kRedoBytes] += (long)n;
  return real(fd, buf, n);
}

__attribute__((destructor)) static void report(void) {
  const long commits = counts[kCommits];
  if (commits == 0) return;
  fprintf(stderr, "page_kinds: %ld commits; pages per commit:", commits);
  for (int k = kBranch; k <= kOther; ++k) {
    fprintf(stderr, " %s %.2f", kNames[k], (double)counts[k] / (double)commits);
  }
  fprintf(stderr, "; bytes per commit: data.mdb %.0f, redo %.0f\n",
          (double)counts[kDataBytes] / (double)commits,
          (double)counts[kRedoBytes] / (double)commits);
}
