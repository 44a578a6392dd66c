// Checks of an engine directory made with pread(2), before LMDB maps
// data.mdb, so that a damaged or foreign file is refused with an error
// instead of faulting (reading a mapped page past the end of the file is
// SIGBUS).
//
// Invariants:
//  (1) Nothing here maps the file or writes anything: a refused directory is
//      left exactly as it was found (no lock.mdb, writer.lock or data.mdb is
//      created, a 0-byte data.mdb stays 0 bytes).
//  (2) A directory that passes holds a data.mdb whose two meta pages carry
//      LMDB's magic and version, a power-of-two page size, roots below the
//      last page, and whose size covers the last page of the newest meta:
//      every page a reader of that meta can reach lies inside the file.
//  (3) check_env_tree reads every page of one snapshot's trees with pread
//      and checks each header (its page number, flags, bounds, entries inside
//      the page, children and overflow runs inside the file, no page reached
//      twice) before following it: a damaged page is a Corruption error
//      naming the page and database, never a wild read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "carrel/status.h"

namespace carrel::cli {

// The end of every damaged-page error: the data past the page cannot be read.
constexpr std::string_view kPageRemedy =
    "; restore the directory from a backup (`carrel verify` lists every damaged part)";

// The figures of data.mdb's newest meta page.
struct EnvFileFigures {
  uint64_t file_bytes = 0;
  uint32_t page_bytes = 0;
  uint64_t last_page = 0;
  uint64_t txnid = 0;
};

// Corruption naming the file and the remedy when invariant (2) does not hold;
// NotFound when DIR or DIR/data.mdb does not exist (Engine::open words that).
Result<EnvFileFigures> check_env_file(const std::string& dir);

// Invariant (3) for the snapshot `txnid` (mdb_txn_id of a read transaction
// the caller holds, so its pages stay put). OK without checking when newer
// commits have replaced both meta pages.
Status check_env_tree(const std::string& dir, uint64_t txnid);
// The same walk, from a meta page kept elsewhere (the redo log's checkpoint,
// engine/store/redo.h (3)): the tree recovery will build on, whatever
// data.mdb's own meta pages now say.
Status check_env_tree_at(const std::string& dir, std::string_view meta_page);

// An LMDB error that means a damaged file (a Status with
// Detail::kDamagedPage, from MDB_PAGE_NOTFOUND or MDB_CORRUPTED, or with
// Detail::kFailedTxn, from MDB_BAD_TXN after one of them), met by any
// command, in the words of the checks above: the file, the page and database
// invariant (3) finds at fault, and the remedy. When the page check finds
// nothing (a newer commit replaced the snapshot, or the damage lies inside a
// page), a kDamagedPage error is Corruption naming the file, what LMDB
// reported and the remedy. Any other status is returned as it is.
Status explain_damage(const std::string& dir, const Status& s);

}  // namespace carrel::cli
