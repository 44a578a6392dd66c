#include "engine/sql/statement_cache.h"

#include <sqlite3.h>

namespace carrel::sql {

sqlite3_stmt* StatementCache::find(std::string_view sql) {
  auto it = index_.find(sql);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

void StatementCache::insert(std::string sql, sqlite3_stmt* stmt) {
  lru_.emplace_front(std::move(sql), stmt);
  index_.emplace(lru_.front().first, lru_.begin());
  while (lru_.size() > capacity_) {
    index_.erase(lru_.back().first);
    sqlite3_finalize(lru_.back().second);
    lru_.pop_back();
  }
}

void StatementCache::clear() {
  index_.clear();
  for (Entry& e : lru_) sqlite3_finalize(e.second);
  lru_.clear();
}

}  // namespace carrel::sql
