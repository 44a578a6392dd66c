#!/usr/bin/env python3
"""How many SQLite pages one INSERT of carrel-bench's sql-insert changes.

docs/design-notes.md ("What the trailing apply would change, and what it would
buy"): carrel stores each SQL page as one LMDB value, so every page an INSERT
changes is a leaf of data.mdb rewritten. This replays the bench's inserts into
a plain SQLite file with carrel's pragmas (engine/sql/sql_database.cc) and
compares the file page by page after each one.

  python3 bench/experiments/sql_pages_per_insert.py PAGE_BYTES CLIENTS [INSERTS]

CLIENTS is the number of insertion points: carrel-bench gives client c the row
ids (c + 1) * 10^9 + 1, 2, ..., so with 16 clients each object's table grows at
16 places at once. A change to page 1 that touches only its change counters
(bytes 24-27 and 92-99) is not counted. Prints the mean pages changed per
insert, the share of inserts that changed page 1 beyond its counters, the
distribution, and the page bytes changed per insert.
"""
import collections
import os
import random
import sqlite3
import sys
import tempfile


def pages(path, size):
    with open(path, "rb") as f:
        data = f.read()
    return [data[i:i + size] for i in range(0, len(data), size)]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    size, clients = int(sys.argv[1]), int(sys.argv[2])
    inserts = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.db")
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript(f"PRAGMA page_size={size}; PRAGMA auto_vacuum=NONE;"
                         "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=MEMORY;"
                         "PRAGMA synchronous=OFF;")
        db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        before = pages(path, size)
        counts = collections.Counter()
        total = header = 0
        seqs = [0] * clients
        rng = random.Random(1)
        for _ in range(inserts):
            c = rng.randrange(clients)
            seqs[c] += 1
            db.execute("INSERT INTO t(id, v) VALUES (?, ?)",
                       ((c + 1) * 10**9 + seqs[c], rng.randbytes(100)))
            after = pages(path, size)
            changed = [k for k in range(len(after)) if k >= len(before) or after[k] != before[k]]
            if 0 in changed:
                diff = [j for j in range(size) if before[0][j] != after[0][j]]
                if all(24 <= j < 28 or 92 <= j < 100 for j in diff):
                    changed.remove(0)
                else:
                    header += 1
            counts[len(changed)] += 1
            total += len(changed)
            before = after
        print(f"page {size} B, {clients} insertion points, {inserts} inserts: "
              f"{total / inserts:.2f} pages an insert ({total * size / inserts:.0f} B), "
              f"page 1 beyond its counters in {header / inserts:.0%}; "
              f"pages changed: count {sorted(counts.items())}")


if __name__ == "__main__":
    main()
