// How LMDB packs SQL pages appended in key order (docs/design-notes.md, "The
// 100-insert turn: where its time and bytes go"): LMDB alone, one thread,
// MDB_NOSYNC, N values under 12-byte keys in increasing order (carrel's `pages`
// keys: the object's number and the page number, engine/store/keys.h), G puts
// a write transaction, with mdb_put and with MDB_APPEND.
//
//   cc -O2 -o leaf_packing bench/experiments/leaf_packing.c -llmdb
//   ./leaf_packing 1032 3000 12 /tmp/leaf-packing   # a 1 KiB SQL page + checksum trailer
//   ./leaf_packing 998 3000 12 /tmp/leaf-packing    # the largest value four of which fit a leaf
//
// A put past a full leaf's last node splits it: without MDB_APPEND the old leaf
// keeps all nodes but its last, which moves to the new leaf beside the new node;
// with MDB_APPEND the new node goes alone to the new leaf. With three values a
// leaf, appending leaves every leaf two-thirds full.
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run(const char* dir, size_t value_bytes, int n, int per_txn, unsigned flags) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
  if (system(cmd) != 0) return 1;
  MDB_env* env = NULL;
  MDB_txn* txn = NULL;
  MDB_dbi dbi;
  if (mdb_env_create(&env) || mdb_env_set_mapsize(env, (size_t)1 << 32) ||
      mdb_env_open(env, dir, MDB_NOSYNC, 0644) || mdb_txn_begin(env, NULL, 0, &txn) ||
      mdb_dbi_open(txn, NULL, 0, &dbi)) {
    fprintf(stderr, "cannot open an LMDB environment in %s\n", dir);
    return 1;
  }
  char key[12];
  char* value = malloc(value_bytes);
  memset(value, 'v', value_bytes);
  for (int i = 0; i < n; ++i) {
    memset(key, 0, sizeof key);
    for (int b = 0; b < 4; ++b) key[11 - b] = (char)((uint32_t)i >> (8 * b));
    MDB_val k = {sizeof key, key}, v = {value_bytes, value};
    int rc = mdb_put(txn, dbi, &k, &v, flags);
    if (rc == 0 && (i + 1) % per_txn == 0) {
      rc = mdb_txn_commit(txn);
      if (rc == 0) rc = mdb_txn_begin(env, NULL, 0, &txn);
    }
    if (rc != 0) {
      fprintf(stderr, "put %d: %s\n", i, mdb_strerror(rc));
      return 1;
    }
  }
  MDB_stat st;
  if (mdb_txn_commit(txn) || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) ||
      mdb_stat(txn, dbi, &st)) {
    fprintf(stderr, "cannot read the database's stat\n");
    return 1;
  }
  mdb_txn_abort(txn);
  printf(
      "%-10s %zu-byte values, %d puts, %d a transaction: %zu leaves (%.2f values a leaf), "
      "%zu branches\n",
      flags ? "MDB_APPEND" : "mdb_put", value_bytes, n, per_txn, st.ms_leaf_pages,
      (double)n / (double)st.ms_leaf_pages, st.ms_branch_pages);
  mdb_env_close(env);
  free(value);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s VALUE_BYTES N PUTS_PER_TXN DIR\n", argv[0]);
    return 2;
  }
  const size_t value_bytes = strtoul(argv[1], NULL, 10);
  const int n = atoi(argv[2]), per_txn = atoi(argv[3]);
  if (value_bytes == 0 || value_bytes > 2000 || n <= 0 || per_txn <= 0) {
    fprintf(stderr, "VALUE_BYTES must be 1..2000 (a leaf node), N and PUTS_PER_TXN positive\n");
    return 2;
  }
  return run(argv[4], value_bytes, n, per_txn, 0) ||
         run(argv[4], value_bytes, n, per_txn, MDB_APPEND);
}
