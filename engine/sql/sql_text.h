// Just enough SQL lexing to split a query into statements and find keywords.
//
// Invariants:
//  (1) These helpers never decide what SQLite will execute: statement
//      boundaries come from sqlite3_prepare's tail. They only classify text
//      SQLite has already split, or text that holds no statement at all.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace carrel::sql {

// Index of the first character at or after i that is not whitespace or a
// comment (-- to end of line, /* to */).
size_t skip_space_and_comments(std::string_view s, size_t i);

// True when s holds no statement: only whitespace, comments and semicolons.
bool holds_no_statement(std::string_view s);

struct SqlToken {
  std::string_view text;  // without quotes for a quoted token
  bool quoted;            // "x", `x`, [x] or 'x': never a keyword
};

// Up to max_tokens tokens of the first statement of s (stops at ';').
std::vector<SqlToken> first_tokens(std::string_view s, size_t max_tokens);

// True when t is the (unquoted) keyword, in any case.
bool is_keyword(const SqlToken& t, std::string_view keyword);

// ASCII case-insensitive equality.
bool equals_ci(std::string_view a, std::string_view b);

}  // namespace carrel::sql
