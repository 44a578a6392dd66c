// What creation-ordered object keys would do to many-objects (the study in
// docs/design-notes.md, "Where many-objects' bytes go"): LMDB alone, one
// thread, MDB_NOSYNC, the writes carrel's many-objects workload makes.
//
//   cc -O2 -o ordered_keys bench/experiments/ordered_keys.c -llmdb
//   ./ordered_keys id 1000000 4 /tmp/ordered-study              # today's layout
//   ./ordered_keys ordered 1000000 4 /tmp/ordered-study         # keys by creation number
//   ./ordered_keys ordered-append 1000000 4 /tmp/ordered-study  # the same with MDB_APPEND
//
// N objects, each written once, G objects per write transaction (carrel's
// many-objects run commits ~4 turns a group). Per object, as carrel writes it:
//   objects: 16-byte random id -> 30-byte record (ordered: 34, the record also
//            holds the object's 4-byte varint number);
//   kv:      id + "k" (ordered: the 8-byte big-endian number + "k"; ordered-append
//            puts it with MDB_APPEND) -> 100-byte value + 8-byte checksum trailer;
//   history: 8-byte big-endian log number -> 38-byte record, MDB_APPEND.
// Prints, per database, its pages and bytes per object, the data file's bytes
// per object beyond the 101 bytes of key and value (carrel-bench's
// dir_bytes_per_object_beyond_data), and objects written per second.
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CK(x)                                                            \
  do {                                                                   \
    int rc_ = (x);                                                       \
    if (rc_) {                                                           \
      fprintf(stderr, "%s: %s\n", #x, mdb_strerror(rc_));                \
      exit(1);                                                           \
    }                                                                    \
  } while (0)

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_random(void) {  // xorshift64*: the ids are hashes in carrel
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

static void be64(unsigned char* out, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = (unsigned char)v;
}

static void report(MDB_txn* txn, MDB_dbi dbi, const char* name, long n) {
  MDB_stat st;
  CK(mdb_stat(txn, dbi, &st));
  size_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
  printf("  %-8s %8zu pages (%zu leaves), %6.1f B/object, %.1f entries a leaf\n", name, pages,
         st.ms_leaf_pages, pages * 4096.0 / n, st.ms_leaf_pages ? (double)st.ms_entries / st.ms_leaf_pages : 0);
}

int main(int argc, char** argv) {
  if (argc != 5 || (strcmp(argv[1], "id") != 0 && strcmp(argv[1], "ordered") != 0 &&
                    strcmp(argv[1], "ordered-append") != 0)) {
    fprintf(stderr, "usage: %s id|ordered|ordered-append OBJECTS PER_TXN DIR\n", argv[0]);
    return 2;
  }
  const int ordered = strcmp(argv[1], "id") != 0;
  const unsigned kv_flags = strcmp(argv[1], "ordered-append") == 0 ? MDB_APPEND : 0;
  const long n = atol(argv[2]), per_txn = atol(argv[3]);
  const char* dir = argv[4];
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (n <= 0 || per_txn <= 0 || system(cmd) != 0) return 2;

  MDB_env* env;
  CK(mdb_env_create(&env));
  CK(mdb_env_set_mapsize(env, 16ull << 30));
  CK(mdb_env_set_maxdbs(env, 4));
  CK(mdb_env_open(env, dir, MDB_NOSYNC | MDB_NOTLS, 0644));
  MDB_txn* txn;
  MDB_dbi objects, kv, history;
  CK(mdb_txn_begin(env, NULL, 0, &txn));
  CK(mdb_dbi_open(txn, "objects", MDB_CREATE, &objects));
  CK(mdb_dbi_open(txn, "kv", MDB_CREATE, &kv));
  CK(mdb_dbi_open(txn, "history", MDB_CREATE, &history));
  CK(mdb_txn_commit(txn));

  unsigned char id[16], kkey[32], hkey[8], record[34], value[108], undo[38];
  memset(record, 'r', sizeof record);
  memset(value, 'v', sizeof value);
  memset(undo, 'u', sizeof undo);
  const double start = now();
  for (long i = 0; i < n;) {
    CK(mdb_txn_begin(env, NULL, 0, &txn));
    for (long j = 0; j < per_txn && i < n; ++j, ++i) {
      uint64_t a = next_random(), b = next_random();
      memcpy(id, &a, 8), memcpy(id + 8, &b, 8);
      MDB_val k = {16, id}, v = {ordered ? 34 : 30, record};
      CK(mdb_put(txn, objects, &k, &v, 0));
      size_t klen;
      if (ordered) {
        be64(kkey, (uint64_t)i + 1);
        klen = 8;
      } else {
        memcpy(kkey, id, 16);
        klen = 16;
      }
      kkey[klen++] = 'k';
      k.mv_size = klen, k.mv_data = kkey, v.mv_size = sizeof value, v.mv_data = value;
      CK(mdb_put(txn, kv, &k, &v, kv_flags));
      be64(hkey, (uint64_t)i + 1);
      k.mv_size = 8, k.mv_data = hkey, v.mv_size = sizeof undo, v.mv_data = undo;
      CK(mdb_put(txn, history, &k, &v, MDB_APPEND));
    }
    CK(mdb_txn_commit(txn));
  }
  const double secs = now() - start;

  MDB_envinfo info;
  CK(mdb_env_info(env, &info));
  CK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  printf("%s: %ld objects, %ld a transaction: %.0f objects/s\n", argv[1], n, per_txn, n / secs);
  report(txn, objects, "objects", n);
  report(txn, kv, "kv", n);
  report(txn, history, "history", n);
  const double file = (info.me_last_pgno + 1.0) * 4096.0;
  printf("  data.mdb %.0f MiB: %.0f B/object, %.0f beyond the 101 of key and value\n",
         file / 1048576, file / n, file / n - 101);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return 0;
}
