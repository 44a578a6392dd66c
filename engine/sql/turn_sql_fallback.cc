// A weak stand-in for detail::turn_sql, so the SQL part links and is tested
// before the request loop exists. The request loop's (strong) definition
// replaces it at link time; delete this file once that definition is merged.
#include "engine/sql/turn_sql.h"

namespace carrel::detail {

__attribute__((weak)) Result<sql::SqlDatabase*> turn_sql(Turn*) {
  return Status::aborted("SQL is not available: no request loop is linked into this build");
}

}  // namespace carrel::detail
