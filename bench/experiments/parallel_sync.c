// How many fdatasyncs per second one file takes when several run at once
// (docs/design-notes.md, "Several syncs of the redo log at once"): N threads
// each write a record into one preallocated, already written file (as the
// redo log's segments are after their first round) and fdatasync it, again
// and again, for a few seconds.
//
//   cc -O2 -o parallel_sync bench/experiments/parallel_sync.c -lpthread
//   for n in 1 2 4 8 16; do ./parallel_sync /tmp/carrel-exp/sync.dat $n 4096 3; done
//
// Arguments: file, threads, record bytes, seconds. The file is 64 MiB; it is
// written whole first (and kept for later runs).
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { kThreadsMax = 64 };
static const long kFileBytes = 64L << 20;
static int fd;
static long record_bytes;
static atomic_long next_offset, syncs;
static atomic_int stop;

static void* run(void* arg) {
  char* buf = malloc((size_t)record_bytes);
  if (!buf) exit(1);
  memset(buf, 'x', (size_t)record_bytes);
  while (!atomic_load(&stop)) {
    long at = atomic_fetch_add(&next_offset, record_bytes) % (kFileBytes - record_bytes);
    if (pwrite(fd, buf, (size_t)record_bytes, at) != record_bytes) { perror("pwrite"); exit(1); }
    if (fdatasync(fd) != 0) { perror("fdatasync"); exit(1); }
    atomic_fetch_add(&syncs, 1);
  }
  free(buf);
  return arg;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s FILE THREADS RECORD_BYTES SECONDS\n", argv[0]);
    return 2;
  }
  int threads = atoi(argv[2]);
  record_bytes = atol(argv[3]);
  int seconds = atoi(argv[4]);
  if (threads < 1 || threads > kThreadsMax || record_bytes < 1 || record_bytes > (1L << 20) ||
      seconds < 1) {
    fprintf(stderr, "threads 1..%d, record bytes 1..1048576, seconds >= 1\n", kThreadsMax);
    return 2;
  }
  fd = open(argv[1], O_RDWR | O_CREAT, 0644);
  if (fd < 0) { perror("open"); return 1; }
  struct stat st;
  if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
  if (st.st_size < kFileBytes) {
    char* zeros = calloc(1, 1 << 20);
    for (long at = 0; at < kFileBytes; at += 1 << 20)
      if (!zeros || pwrite(fd, zeros, 1 << 20, at) != 1 << 20) { perror("fill"); return 1; }
    free(zeros);
  }
  if (fdatasync(fd) != 0) { perror("fdatasync"); return 1; }
  pthread_t t[kThreadsMax];
  for (int i = 0; i < threads; ++i) pthread_create(&t[i], NULL, run, NULL);
  sleep((unsigned)seconds);
  atomic_store(&stop, 1);
  for (int i = 0; i < threads; ++i) pthread_join(t[i], NULL);
  printf("threads %d, record %ld B: %.0f syncs/s\n", threads, record_bytes,
         (double)atomic_load(&syncs) / seconds);
  return 0;
}
