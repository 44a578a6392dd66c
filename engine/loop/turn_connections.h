// The seam between the request loop and connections (engine/conn/): what a
// turn does to connections besides its KV writes, the frames it holds and an
// accept. The loop owns these declarations and calls them at a savepoint and
// after a turn; conn/, on the layer above, defines them
// (engine/conn/connections.cc), so the loop includes nothing of conn/. The
// other seams point the same way: a lower part declares, the loop defines
// (detail::turn_kv, detail::turn_sql).
#pragma once

#include <cstddef>
#include <vector>

#include "carrel/connections.h"
#include "carrel/context.h"
#include "carrel/status.h"
#include "engine/commit/batch.h"

namespace carrel::detail {

// What connections hold when a savepoint (ctx.transaction) begins: the
// frames the turn has sent so far and whether it has accepted.
struct ConnectionsMark {
  size_t frames = 0;
  bool accepted = false;
};

// The mark for a savepoint beginning now.
ConnectionsMark mark_connections(Connections& c);
// A savepoint that fails undoes what it did to connections along with its KV
// writes: the frames it sent are dropped (their senders see why) and an
// accept inside it is undone, as its record is.
void roll_back_connections(Connections& c, const ConnectionsMark& m, const Status& why);
// After a turn that succeeded: hands its held frames to the output gate
// (outputs run after its commit). Frames of failed turns never get here; they
// are dropped with the turn. True when it held frames: their release must
// then go through the committer (engine/conn/conn_state.h (2): in commit
// order, on the committer's thread), never the loop's shortcut for a turn
// whose reads are already durable.
bool hold_frames_until_durable(Context& ctx, std::vector<Completion>& outputs);

}  // namespace carrel::detail
