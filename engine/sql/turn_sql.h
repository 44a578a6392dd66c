// The seam between the request loop and the SQL part.
#pragma once

#include "carrel/status.h"

namespace carrel {
namespace detail {
class Turn;
}  // namespace detail
namespace sql {
class SqlDatabase;
}  // namespace sql

namespace detail {
// The object's SQL database for this turn: opened on first use (lazily), with
// the turn's SQL transaction begun. Defined by the request loop.
Result<sql::SqlDatabase*> turn_sql(Turn* turn);
}  // namespace detail

}  // namespace carrel
