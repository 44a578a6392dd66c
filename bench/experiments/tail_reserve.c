// What the zero-filled reserve at the end of data.mdb buys a sync commit (the study in
// docs/design-notes.md, "A zero-filled reserve ahead of LMDB's pages").
//
//   cc -O2 -o tail_reserve bench/experiments/tail_reserve.c -llmdb
//   ./tail_reserve 3000 /tmp/reserve-study     # 3000 commits in each of two environments
//
// Two environments in one process, commits alternating between them, so both see the same
// machine: "plain" is LMDB's sync commit, "reserve" the same plus the reserve as carrel
// kept it while it was built (half the used bytes, 256 KiB to 8 MiB, refilled at a quarter). Per commit: 64 random updates of 100 B among 20,000 keys and 8 appended values of
// 900 B (the file grows ~10 KB per commit, as carrel's history and SQL pages make it grow).
// Prints each one's commit latency (mean, p50, p90, p99, max) and commits per second.
#define _GNU_SOURCE
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define CK(x) do { int rc_ = (x); if (rc_) { fprintf(stderr, "%s: %s\n", #x, mdb_strerror(rc_)); exit(1); } } while (0)
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static char zeros[1 << 20];
struct E { MDB_env* env; MDB_dbi dbi; unsigned long long grow, reserved_end; unsigned seed; double* lat; double zero_time; };
static void reserve(struct E* e) {
  MDB_envinfo info; mdb_env_info(e->env, &info); MDB_stat st; mdb_env_stat(e->env, &st);
  unsigned long long used = (info.me_last_pgno + 1ull) * st.ms_psize;
  unsigned long long r = used / 2; if (r < (256 << 10)) r = 256 << 10; if (r > (8 << 20)) r = 8 << 20;
  if (used + r / 4 <= e->reserved_end) return;
  int fd; mdb_env_get_fd(e->env, &fd); struct stat fs; fstat(fd, &fs);
  unsigned long long start = fs.st_size, end = used + r;
  e->reserved_end = start > end ? start : end;
  for (unsigned long long at = start; at < end;) { size_t n = end - at < sizeof zeros ? end - at : sizeof zeros; at += pwrite(fd, zeros, n, at); }
  if (end > start) sync_file_range(fd, start, end - start, SYNC_FILE_RANGE_WRITE);
}
static void open_env(struct E* e, const char* dir, int n) {
  char cmd[1024]; snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (system(cmd) != 0) exit(1);
  CK(mdb_env_create(&e->env)); CK(mdb_env_set_mapsize(e->env, 4ull << 30)); CK(mdb_env_open(e->env, dir, MDB_NOTLS, 0644));
  MDB_txn* txn; CK(mdb_txn_begin(e->env, NULL, 0, &txn)); CK(mdb_dbi_open(txn, NULL, 0, &e->dbi));
  char val[100]; memset(val, 'v', sizeof val);
  for (unsigned k = 0; k < 20000; k++) { unsigned key = __builtin_bswap32(k); MDB_val kk = {4, &key}, vv = {100, val}; CK(mdb_put(txn, e->dbi, &kk, &vv, 0)); }
  CK(mdb_txn_commit(txn));
  e->grow = 0xFF00000000000000ull; e->seed = 1; e->reserved_end = 0; e->lat = calloc(n, sizeof(double));
}
static void commit(struct E* e, int c, int mode) {
  char val[1000]; memset(val, 'v', sizeof val);
  double t0 = now();
  MDB_txn* txn; CK(mdb_txn_begin(e->env, NULL, 0, &txn));
  for (int p = 0; p < 64; p++) { e->seed = e->seed * 1103515245 + 12345; unsigned key = __builtin_bswap32((e->seed >> 8) % 20000); MDB_val kk = {4, &key}, vv = {100, val}; CK(mdb_put(txn, e->dbi, &kk, &vv, 0)); }
  for (int p = 0; p < 8; p++) { unsigned long long key = __builtin_bswap64(e->grow++); MDB_val kk = {8, &key}, vv = {900, val}; CK(mdb_put(txn, e->dbi, &kk, &vv, MDB_APPEND)); }
  CK(mdb_txn_commit(txn));
  if (mode) reserve(e);
  e->lat[c] = now() - t0;
}
static int cmp(const void* a, const void* b) { double x = *(double*)a, y = *(double*)b; return x < y ? -1 : x > y; }
static void report(const char* name, struct E* e, int n) {
  double sum = 0; for (int i = 0; i < n; i++) sum += e->lat[i];
  qsort(e->lat, n, sizeof(double), cmp);
  printf("%s mean=%.3fms p50=%.3fms p90=%.3fms p99=%.3fms max=%.1fms commits/s=%.0f\n", name, sum / n * 1e3, e->lat[n / 2] * 1e3, e->lat[n * 9 / 10] * 1e3, e->lat[n * 99 / 100] * 1e3, e->lat[n - 1] * 1e3, n / sum);
}
int main(int argc, char** argv) {
  if (argc != 3 || atoi(argv[1]) < 100) {
    fprintf(stderr, "usage: %s COMMITS(>=100) DIR\n", argv[0]);
    return 2;
  }
  int n = atoi(argv[1]);
  char da[400], db[400];
  snprintf(da, sizeof da, "%s/plain", argv[2]);
  snprintf(db, sizeof db, "%s/reserve", argv[2]);
  struct E a, b; open_env(&a, da, n); open_env(&b, db, n);
  for (int c = 0; c < n; c++) { if (c & 1) { commit(&b, c, 1); commit(&a, c, 0); } else { commit(&a, c, 0); commit(&b, c, 1); } }
  report("plain  ", &a, n); report("reserve", &b, n);
  return 0;
}
