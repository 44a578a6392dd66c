#include "engine/sql/sql_text.h"

#include <cctype>

namespace carrel::sql {
namespace {

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

char closing_quote(char c) {
  switch (c) {
    case '"':
      return '"';
    case '`':
      return '`';
    case '[':
      return ']';
    case '\'':
      return '\'';
    default:
      return 0;
  }
}

}  // namespace

size_t skip_space_and_comments(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (std::isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
    } else if (s.substr(i, 2) == "--") {
      size_t end = s.find('\n', i);
      i = end == std::string_view::npos ? s.size() : end + 1;
    } else if (s.substr(i, 2) == "/*") {
      size_t end = s.find("*/", i + 2);
      i = end == std::string_view::npos ? s.size() : end + 2;
    } else {
      break;
    }
  }
  return i;
}

bool holds_no_statement(std::string_view s) {
  size_t i = skip_space_and_comments(s, 0);
  while (i < s.size() && s[i] == ';') i = skip_space_and_comments(s, i + 1);
  return i == s.size();
}

std::vector<SqlToken> first_tokens(std::string_view s, size_t max_tokens) {
  std::vector<SqlToken> tokens;
  size_t i = skip_space_and_comments(s, 0);
  while (i < s.size() && tokens.size() < max_tokens && s[i] != ';') {
    size_t end = i + 1;
    if (char close = closing_quote(s[i]); close != 0) {
      end = s.find(close, i + 1);
      end = end == std::string_view::npos ? s.size() : end + 1;
      size_t inner = end > i + 1 ? end - i - 2 : 0;
      tokens.push_back({s.substr(i + 1, inner), true});
    } else if (is_word_char(s[i])) {
      while (end < s.size() && is_word_char(s[end])) ++end;
      tokens.push_back({s.substr(i, end - i), false});
    } else {
      tokens.push_back({s.substr(i, 1), false});
    }
    i = skip_space_and_comments(s, end);
  }
  return tokens;
}

bool equals_ci(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool is_keyword(const SqlToken& t, std::string_view keyword) {
  return !t.quoted && equals_ci(t.text, keyword);
}

}  // namespace carrel::sql
