// Prepared statements of one connection, keyed by their SQL text.
//
// Invariants:
//  (1) The cache owns every statement in it and finalizes it on eviction,
//      clear() and destruction; callers never finalize a cached statement.
//  (2) At most capacity() statements are held; inserting past it finalizes the
//      least recently used one.
//  (3) A statement is handed out reset, with no bindings: callers reset and
//      clear it after use (SqlDatabase does so before returning from exec).
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

struct sqlite3_stmt;

namespace carrel::sql {

class StatementCache {
 public:
  explicit StatementCache(size_t capacity) : capacity_(capacity) {}
  ~StatementCache() { clear(); }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The statement prepared from exactly this text, now most recently used; or
  // nullptr.
  sqlite3_stmt* find(std::string_view sql);
  // Takes ownership of stmt, prepared from sql (which must not be cached yet).
  void insert(std::string sql, sqlite3_stmt* stmt);
  // Finalizes every statement.
  void clear();

  size_t size() const { return lru_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  using Entry = std::pair<std::string, sqlite3_stmt*>;
  size_t capacity_;
  std::list<Entry> lru_;  // most recently used first
  // Keys view the strings in lru_, whose nodes never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
};

}  // namespace carrel::sql
