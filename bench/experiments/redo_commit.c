// What a redo log beside LMDB would buy, measured on LMDB alone (the study in
// docs/design-notes.md, "A redo log beside LMDB: measured, not built").
//
//   cc -O2 -o redo_commit bench/experiments/redo_commit.c -llmdb
//   ./redo_commit sync 64 100 3000 0        # LMDB's own sync commit (two flushes)
//   ./redo_commit redo 64 100 3000 4096     # MDB_NOSYNC + one appended, fdatasynced
//                                           # record per commit, a reader pinning the
//                                           # last checkpoint, a checkpoint
//                                           # (mdb_env_sync) per 4096 pages of growth
//
// Arguments: mode, puts per commit, value bytes, commits, checkpoint pages.
// 1000 objects x 100 keys are loaded first; each put hits a random one.
// Writes under /tmp/carrel-exp/redo_commit.
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s sync|redo PUTS VALUE_BYTES COMMITS CHECKPOINT_PAGES\n", argv[0]);
    return 2;
  }
  const int redo = strcmp(argv[1], "redo") == 0;
  const int puts = atoi(argv[2]), vb = atoi(argv[3]), commits = atoi(argv[4]);
  const size_t ck = (size_t)atol(argv[5]);
  const char* dir = "/tmp/carrel-exp/redo_commit";
  if (system("rm -rf /tmp/carrel-exp/redo_commit && mkdir -p /tmp/carrel-exp/redo_commit")) return 1;
  MDB_env* e;
  mdb_env_create(&e);
  mdb_env_set_mapsize(e, 1UL << 36);
  mdb_env_set_maxdbs(e, 8);
  if (mdb_env_open(e, dir, MDB_NOTLS | (redo ? MDB_NOSYNC : 0), 0644)) return 1;
  int fd = open("/tmp/carrel-exp/redo_commit/redo.log", O_CREAT | O_WRONLY | O_APPEND, 0644);
  MDB_txn* t;
  MDB_dbi kv;
  mdb_txn_begin(e, 0, 0, &t);
  mdb_dbi_open(t, "kv", MDB_CREATE, &kv);
  char* v = malloc(vb);
  memset(v, 7, vb);
  for (int o = 0; o < 1000; o++)
    for (int i = 0; i < 100; i++) {
      char k[24];
      snprintf(k, sizeof k, "o%05d-%06d", o, i);
      MDB_val kk = {strlen(k), k}, vv = {vb, v};
      mdb_put(t, kv, &kk, &vv, 0);
    }
  mdb_txn_commit(t);
  mdb_env_sync(e, 1);
  char* buf = malloc((size_t)puts * (vb + 64));
  MDB_txn* pin = 0;
  if (redo) mdb_txn_begin(e, 0, MDB_RDONLY, &pin);
  MDB_envinfo info;
  mdb_env_info(e, &info);
  size_t last = info.me_last_pgno;
  int ckpts = 0;
  double ck_total = 0, ck_max = 0;
  srand(1);
  double t0 = now();
  for (int c = 0; c < commits; c++) {
    mdb_txn_begin(e, 0, 0, &t);
    size_t n = 0;
    for (int i = 0; i < puts; i++) {
      char k[24];
      snprintf(k, sizeof k, "o%05d-%06d", rand() % 1000, rand() % 100);
      MDB_val kk = {strlen(k), k}, vv = {vb, v};
      mdb_put(t, kv, &kk, &vv, 0);
      memcpy(buf + n, k, strlen(k));
      n += strlen(k);
      memcpy(buf + n, v, vb);
      n += vb;
    }
    if (redo && (write(fd, buf, n) != (ssize_t)n || fdatasync(fd))) return 3;
    mdb_txn_commit(t);
    if (!redo) continue;
    mdb_env_info(e, &info);
    if (info.me_last_pgno - last < ck) continue;
    double a = now();
    mdb_env_sync(e, 1);
    MDB_txn* next;
    mdb_txn_begin(e, 0, MDB_RDONLY, &next);
    if (ftruncate(fd, 0) || fdatasync(fd) || write(fd, buf, 4096) != 4096 || fdatasync(fd)) return 3;
    mdb_txn_abort(pin);
    pin = next;
    mdb_env_info(e, &info);
    last = info.me_last_pgno;
    ckpts++;
    double d = now() - a;
    ck_total += d;
    if (d > ck_max) ck_max = d;
  }
  double dt = now() - t0;
  mdb_env_info(e, &info);
  printf("%s puts=%d value=%d checkpoint_pages=%zu: %.0f commits/s, %.0f puts/s; "
         "%d checkpoints, %.1f ms mean, %.1f ms max; file %zu pages\n",
         argv[1], puts, vb, ck, commits / dt, commits * puts / dt, ckpts,
         ckpts ? ck_total * 1e3 / ckpts : 0, ck_max * 1e3, info.me_last_pgno);
  return 0;
}
