// carrel-powercut: an LD_PRELOAD shim that models a disk which keeps only the
// bytes that were made durable, for the crash test's --powercut mode.
//
// With CARREL_POWERCUT_SHADOW=/path/shadow.mdb set, every descriptor that
// refers to a file named "data.mdb" (or one of the redo log's files,
// "redo.0", "redo.1", "redo.ckpt": engine/store/redo.h) is tracked. Each
// write to it goes through to the real file as usual (the process reads
// through its mmap and must keep working), and is also recorded:
//   - on a descriptor opened with O_DSYNC/O_SYNC (LMDB's meta page descriptor)
//     the write is applied to the file's shadow at once;
//   - otherwise it is kept in the file's pending list, in write order, until
//     an fdatasync/fsync of any descriptor of that file returns: that applies
//     to its shadow (pwrite, then fsync) every write recorded before the sync
//     began, and no later one (a write that lands while a sync runs may miss
//     it; the redo log's syncer syncs while the next record is written).
// A shadow starts as a copy of its file at the file's first open. data.mdb's
// shadow is the path given; a redo file's is that path, a dot and its name
// (shadow.mdb.redo.0). unlink of a tracked file drops its shadow (the
// engine syncs the directory after it), so a later open starts a new one.
// After SIGKILL the shadows hold what a disk that lost its unsynced writes
// would hold; the crash driver puts them in place before reopening.
//
// CARREL_POWERCUT_IGNORE_SYNC=1 (a check of the checker, never used by CTest)
// makes fdatasync/fsync drop the pending list instead of applying it, so the
// shadow only gets the O_DSYNC meta page writes: the checker must then see
// lost acknowledged turns. CARREL_POWERCUT_IGNORE_SYNC=2 drops the O_DSYNC
// writes too: the disk keeps nothing the process wrote.
//
// Not modelled: torn sector writes, reordering of the writes inside one
// fdatasync, drive caches that acknowledge a flush they did not do.
// One engine directory per process (LMDB opens data.mdb twice, both refer to
// one file).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { kMaxFd = 4096, kUntracked = 0, kTracked = 1, kTrackedSync = 2 };

struct pending {
  unsigned long long number;  // the file's writes recorded before this one, plus one
  off_t offset;               // a truncation: the length it left
  size_t length;
  int truncation;             // an ftruncate, not a write
  struct pending* next;
  unsigned char bytes[];
};

static const char* const kNames[] = {"data.mdb", "redo.0", "redo.1", "redo.ckpt"};
enum { kFiles = sizeof kNames / sizeof kNames[0] };

struct file {
  int shadow_fd;  // -1 before the first open
  struct pending* head;
  struct pending** tail;
  unsigned long long recorded;  // writes recorded so far
};

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static const char* shadow_path;  // NULL: the shim only passes calls through
static int ignore_sync;
static struct file files[kFiles];
static unsigned char tracked[kMaxFd];
static unsigned char file_of[kMaxFd];  // the tracked descriptor's index in kNames

#define REAL(name) real_##name
static int (*REAL(open))(const char*, int, ...);
static int (*REAL(open64))(const char*, int, ...);
static int (*REAL(openat))(int, const char*, int, ...);
static int (*REAL(close))(int);
static ssize_t (*REAL(pwrite))(int, const void*, size_t, off_t);
static ssize_t (*REAL(pwrite64))(int, const void*, size_t, off_t);
static ssize_t (*REAL(write))(int, const void*, size_t);
static ssize_t (*REAL(writev))(int, const struct iovec*, int);
static ssize_t (*REAL(pwritev))(int, const struct iovec*, int, off_t);
static ssize_t (*REAL(pwritev64))(int, const struct iovec*, int, off_t);
static int (*REAL(fsync))(int);
static int (*REAL(fdatasync))(int);
static int (*REAL(msync))(void*, size_t, int);
static int (*REAL(ftruncate))(int, off_t);
static off_t (*REAL(lseek))(int, off_t, int);
static int (*REAL(unlink))(const char*);

__attribute__((noreturn)) static void die(const char* what) {
  fprintf(stderr, "carrel-powercut: %s: %s\n", what, strerror(errno));
  abort();
}

__attribute__((constructor)) static void init(void) {
  if (REAL(open)) return;
#define BIND(name)                                    \
  do {                                                \
    *(void**)(&REAL(name)) = dlsym(RTLD_NEXT, #name); \
    if (!REAL(name)) die("dlsym " #name);             \
  } while (0)
  BIND(open);
  BIND(open64);
  BIND(openat);
  BIND(close);
  BIND(pwrite);
  BIND(pwrite64);
  BIND(write);
  BIND(writev);
  BIND(pwritev);
  BIND(pwritev64);
  BIND(fsync);
  BIND(fdatasync);
  BIND(msync);
  BIND(ftruncate);
  BIND(lseek);
  BIND(unlink);
#undef BIND
  for (int i = 0; i < kFiles; ++i) {
    files[i].shadow_fd = -1;
    files[i].head = NULL;
    files[i].tail = &files[i].head;
  }
  const char* s = getenv("CARREL_POWERCUT_SHADOW");
  if (s && *s) shadow_path = s;
  const char* i = getenv("CARREL_POWERCUT_IGNORE_SYNC");
  ignore_sync = i ? atoi(i) : 0;
}

// The index in kNames of the file `path` names, or -1.
static int tracked_file(const char* path) {
  const char* slash = strrchr(path, '/');
  const char* name = slash ? slash + 1 : path;
  for (int i = 0; i < kFiles; ++i)
    if (strcmp(name, kNames[i]) == 0) return i;
  return -1;
}

// The shadow of file i (data.mdb's is shadow_path itself).
static void shadow_name(int i, char* out, size_t n) {
  int w = i == 0 ? snprintf(out, n, "%s", shadow_path) : snprintf(out, n, "%s.%s", shadow_path, kNames[i]);
  if (w < 0 || (size_t)w >= n) {
    errno = ENAMETOOLONG;
    die("shadow path too long");
  }
}

static int is_tracked(int fd) {
  return shadow_path && fd >= 0 && fd < kMaxFd && tracked[fd];
}

static void write_all(int fd, const unsigned char* p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t w = REAL(pwrite)(fd, p, n, off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write to the shadow file");
    p += w;
    n -= (size_t)w;
    off += w;
  }
}

// Called with the mutex held: file i's shadow begins as the file's content
// now. The copy is made under a temporary name and renamed when complete: a
// kill during the copy must leave no shadow (the file stays as it was), not a
// truncated one that would replace it.
static void start_shadow(int i, const char* data_path) {
  char final_path[4096], tmp_path[4200];
  shadow_name(i, final_path, sizeof final_path);
  snprintf(tmp_path, sizeof tmp_path, "%s.tmp", final_path);
  int shadow_fd = REAL(open)(tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (shadow_fd < 0) die("open the shadow file");
  files[i].shadow_fd = shadow_fd;
  int in = REAL(open)(data_path, O_RDONLY | O_CLOEXEC);
  if (in < 0) die("open the tracked file to copy it");
  unsigned char buf[1 << 16];
  off_t off = 0;
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) die("read the tracked file");
    if (r == 0) break;
    write_all(shadow_fd, buf, (size_t)r, off);
    off += r;
  }
  REAL(close)(in);
  if (REAL(fsync)(shadow_fd) != 0) die("fsync the shadow file");
  if (rename(tmp_path, final_path) != 0) die("rename the shadow file into place");
}

static void opened(const char* path, int flags, int fd) {
  int i = shadow_path && fd >= 0 ? tracked_file(path) : -1;
  if (i < 0) return;
  if (fd >= kMaxFd) {
    errno = EMFILE;
    die("tracked descriptor beyond the shim's table");
  }
  pthread_mutex_lock(&mutex);
  if (files[i].shadow_fd < 0) start_shadow(i, path);
  tracked[fd] = (flags & (O_DSYNC | O_SYNC)) ? kTrackedSync : kTracked;
  file_of[fd] = (unsigned char)i;
  pthread_mutex_unlock(&mutex);
}

static void drop_pending(struct file* f) {
  struct pending* p = f->head;
  f->head = NULL;
  f->tail = &f->head;
  while (p) {
    struct pending* next = p->next;
    free(p);
    p = next;
  }
}

// Records `n` bytes written at `off`, gathered from `iov`.
static void record(int fd, const struct iovec* iov, int iovcnt, size_t n, off_t off) {
  struct pending* p = malloc(sizeof *p + n);
  if (!p) die("malloc");
  p->offset = off;
  p->length = n;
  p->truncation = 0;
  p->next = NULL;
  size_t done = 0;
  for (int i = 0; i < iovcnt && done < n; ++i) {
    size_t take = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
    memcpy(p->bytes + done, iov[i].iov_base, take);
    done += take;
  }
  pthread_mutex_lock(&mutex);
  struct file* f = &files[file_of[fd]];
  if (!tracked[fd]) {  // unlinked meanwhile
    free(p);
  } else if (tracked[fd] == kTrackedSync && ignore_sync >= 2) {
    free(p);
  } else if (tracked[fd] == kTrackedSync) {  // O_DSYNC: durable when the write returned
    write_all(f->shadow_fd, p->bytes, p->length, p->offset);
    if (REAL(fdatasync)(f->shadow_fd) != 0) die("fdatasync the shadow file");
    free(p);
  } else {
    p->number = ++f->recorded;
    *f->tail = p;
    f->tail = &p->next;
  }
  pthread_mutex_unlock(&mutex);
}

static void record1(int fd, const void* buf, ssize_t n, off_t off) {
  if (n <= 0) return;
  struct iovec v = {(void*)buf, (size_t)n};
  record(fd, &v, 1, (size_t)n, off);
}

// The writes to fd's file recorded so far: what a sync beginning now covers.
static unsigned long long recorded(int fd) {
  pthread_mutex_lock(&mutex);
  unsigned long long n = tracked[fd] ? files[file_of[fd]].recorded : 0;
  pthread_mutex_unlock(&mutex);
  return n;
}

// A sync of a tracked file made every write to it recorded before the sync
// began (`upto`) durable: apply them in order.
static void synced(int fd, unsigned long long upto) {
  pthread_mutex_lock(&mutex);
  if (!tracked[fd]) {
    pthread_mutex_unlock(&mutex);
    return;
  }
  struct file* f = &files[file_of[fd]];
  while (f->head && f->head->number <= upto) {
    struct pending* p = f->head;
    f->head = p->next;
    if (!f->head) f->tail = &f->head;
    if (!ignore_sync && p->truncation && REAL(ftruncate)(f->shadow_fd, p->offset) != 0) {
      die("ftruncate the shadow file");
    }
    if (!ignore_sync && !p->truncation) write_all(f->shadow_fd, p->bytes, p->length, p->offset);
    free(p);
  }
  if (!ignore_sync && REAL(fsync)(f->shadow_fd) != 0) die("fsync the shadow file");
  pthread_mutex_unlock(&mutex);
}

static int mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, int) : 0;
}

int open(const char* path, int flags, ...) {
  init();  // another library's constructor may open files before ours ran
  va_list ap;
  va_start(ap, flags);
  int mode = mode_arg(flags, ap);
  va_end(ap);
  int fd = REAL(open)(path, flags, mode);
  opened(path, flags, fd);
  return fd;
}

int open64(const char* path, int flags, ...) {
  init();  // another library's constructor may open files before ours ran
  va_list ap;
  va_start(ap, flags);
  int mode = mode_arg(flags, ap);
  va_end(ap);
  int fd = REAL(open64)(path, flags, mode);
  opened(path, flags, fd);
  return fd;
}

int openat(int dirfd, const char* path, int flags, ...) {
  init();  // another library's constructor may open files before ours ran
  va_list ap;
  va_start(ap, flags);
  int mode = mode_arg(flags, ap);
  va_end(ap);
  int fd = REAL(openat)(dirfd, path, flags, mode);
  opened(path, flags, fd);
  return fd;
}

int close(int fd) {
  if (is_tracked(fd)) {
    pthread_mutex_lock(&mutex);
    tracked[fd] = kUntracked;
    pthread_mutex_unlock(&mutex);
  }
  return REAL(close)(fd);
}

ssize_t pwrite(int fd, const void* buf, size_t n, off_t off) {
  ssize_t w = REAL(pwrite)(fd, buf, n, off);
  if (is_tracked(fd)) record1(fd, buf, w, off);
  return w;
}

ssize_t pwrite64(int fd, const void* buf, size_t n, off_t off) {
  ssize_t w = REAL(pwrite64)(fd, buf, n, off);
  if (is_tracked(fd)) record1(fd, buf, w, off);
  return w;
}

ssize_t write(int fd, const void* buf, size_t n) {
  if (!is_tracked(fd)) return REAL(write)(fd, buf, n);
  off_t off = REAL(lseek)(fd, 0, SEEK_CUR);
  ssize_t w = REAL(write)(fd, buf, n);
  record1(fd, buf, w, off);
  return w;
}

ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  if (!is_tracked(fd)) return REAL(writev)(fd, iov, iovcnt);
  off_t off = REAL(lseek)(fd, 0, SEEK_CUR);
  ssize_t w = REAL(writev)(fd, iov, iovcnt);
  if (w > 0) record(fd, iov, iovcnt, (size_t)w, off);
  return w;
}

ssize_t pwritev(int fd, const struct iovec* iov, int iovcnt, off_t off) {
  ssize_t w = REAL(pwritev)(fd, iov, iovcnt, off);
  if (w > 0 && is_tracked(fd)) record(fd, iov, iovcnt, (size_t)w, off);
  return w;
}

ssize_t pwritev64(int fd, const struct iovec* iov, int iovcnt, off_t off) {
  ssize_t w = REAL(pwritev64)(fd, iov, iovcnt, off);
  if (w > 0 && is_tracked(fd)) record(fd, iov, iovcnt, (size_t)w, off);
  return w;
}

int fsync(int fd) {
  if (!is_tracked(fd)) return REAL(fsync)(fd);
  unsigned long long upto = recorded(fd);
  int rc = REAL(fsync)(fd);
  if (rc == 0) synced(fd, upto);
  return rc;
}

int fdatasync(int fd) {
  if (!is_tracked(fd)) return REAL(fdatasync)(fd);
  unsigned long long upto = recorded(fd);
  int rc = REAL(fdatasync)(fd);
  if (rc == 0) synced(fd, upto);
  return rc;
}

// The engine syncs the directory after removing a redo file: the file and
// its shadow are gone, its descriptors are no longer followed.
int unlink(const char* path) {
  init();
  int rc = REAL(unlink)(path);
  int i = rc == 0 && shadow_path ? tracked_file(path) : -1;
  if (i < 0) return rc;
  pthread_mutex_lock(&mutex);
  for (int fd = 0; fd < kMaxFd; ++fd)
    if (tracked[fd] && file_of[fd] == i) tracked[fd] = kUntracked;
  drop_pending(&files[i]);
  if (files[i].shadow_fd >= 0) {
    REAL(close)(files[i].shadow_fd);
    files[i].shadow_fd = -1;
    char name[4096];
    shadow_name(i, name, sizeof name);
    REAL(unlink)(name);
  }
  pthread_mutex_unlock(&mutex);
  return rc;
}

// LMDB uses msync only with MDB_WRITEMAP, which carrel does not set; writes
// through a shared mapping would escape this model, so say so if it happens.
int msync(void* addr, size_t n, int flags) {
  if (shadow_path) fprintf(stderr, "carrel-powercut: msync is not modelled\n");
  return REAL(msync)(addr, n, flags);
}

// A truncation is pending like a write, in order with them, until a sync
// covers it (the redo log empties its files in place: redo.h (9)).
int ftruncate(int fd, off_t length) {
  int rc = REAL(ftruncate)(fd, length);
  if (rc != 0 || !is_tracked(fd)) return rc;
  struct pending* p = malloc(sizeof *p);
  if (!p) die("malloc");
  p->offset = length;
  p->length = 0;
  p->truncation = 1;
  p->next = NULL;
  pthread_mutex_lock(&mutex);
  struct file* f = &files[file_of[fd]];
  if (!tracked[fd]) {  // unlinked meanwhile
    free(p);
  } else {
    p->number = ++f->recorded;
    *f->tail = p;
    f->tail = &p->next;
  }
  pthread_mutex_unlock(&mutex);
  return 0;
}
