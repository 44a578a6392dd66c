#include "engine/transfer/json_line.h"

#include <array>
#include <charconv>

namespace carrel::transfer {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_decode_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (size_t i = 0; i < kAlphabet.size(); ++i)
    t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = make_decode_table();

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | cp >> 6));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | cp >> 12));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | cp >> 18));
    out->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// A cursor over one line; every error names the 1-based column.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  Status error(std::string_view what) const {
    return Status::invalid_argument(std::string(what) + " at column " + std::to_string(at_ + 1));
  }
  void skip_space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\r')) ++at_;
  }
  bool done() const { return at_ >= s_.size(); }
  bool eat(char c) {
    skip_space();
    if (at_ < s_.size() && s_[at_] == c) {
      ++at_;
      return true;
    }
    return false;
  }
  char peek() {
    skip_space();
    return at_ < s_.size() ? s_[at_] : '\0';
  }

  Result<uint32_t> hex4() {
    if (at_ + 4 > s_.size()) return error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[at_++];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return error("bad hex digit in \\u escape");
      v = v << 4 | static_cast<uint32_t>(d);
    }
    return v;
  }

  Result<std::string> string() {
    if (!eat('"')) return error("expected a string");
    std::string out;
    while (at_ < s_.size()) {
      char c = s_[at_++];
      if (c == '"') return out;
      if (static_cast<uint8_t>(c) < 0x20) return error("control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (at_ >= s_.size()) break;
      char e = s_[at_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          CARREL_ASSIGN_OR_RETURN(uint32_t cp, hex4());
          if (cp >= 0xd800 && cp < 0xdc00) {
            if (at_ + 2 > s_.size() || s_[at_] != '\\' || s_[at_ + 1] != 'u') {
              return error("unpaired surrogate");
            }
            at_ += 2;
            CARREL_ASSIGN_OR_RETURN(uint32_t low, hex4());
            if (low < 0xdc00 || low >= 0xe000) return error("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return error("unpaired surrogate");
          }
          append_utf8(&out, cp);
          break;
        }
        default:
          return error("unknown escape");
      }
    }
    return error("unterminated string");
  }

  Result<JsonLine::Value> value() {
    char c = peek();
    if (c == '"') {
      CARREL_ASSIGN_OR_RETURN(std::string s, string());
      return JsonLine::Value{std::move(s)};
    }
    if (s_.substr(at_, 4) == "true") {
      at_ += 4;
      return JsonLine::Value{true};
    }
    if (s_.substr(at_, 5) == "false") {
      at_ += 5;
      return JsonLine::Value{false};
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(s_.data() + at_, s_.data() + s_.size(), v);
      if (ec != std::errc()) return error("integer out of range");
      at_ = static_cast<size_t>(end - s_.data());
      if (at_ < s_.size() && (s_[at_] == '.' || s_[at_] == 'e' || s_[at_] == 'E')) {
        return error("only integers are allowed");
      }
      return JsonLine::Value{v};
    }
    return error("expected a string, an integer, true or false");
  }

 private:
  std::string_view s_;
  size_t at_ = 0;
};

}  // namespace

size_t utf8_sequence(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf)
    n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    n = 4, cp = c & 0x07;
  else
    return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(i + k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_json_string(std::string* out, std::string_view s, InvalidUtf8 invalid) {
  out->push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    auto u = static_cast<uint8_t>(c);
    if (u >= 0x80) {
      size_t n = invalid == InvalidUtf8::kPassThrough ? 1 : utf8_sequence(s, i);
      if (n == 0) {
        out->append("\\ufffd");
      } else {
        out->append(s.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (u < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xf]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16 | static_cast<uint8_t>(bytes[i + 1]) << 8 |
                 static_cast<uint8_t>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[v >> s & 0x3f]);
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[v >> 18 & 0x3f]);
    out.push_back(kAlphabet[v >> 12 & 0x3f]);
    out.push_back(rest == 2 ? kAlphabet[v >> 6 & 0x3f] : '=');
    out.push_back('=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return Status::invalid_argument("base64 text of " + std::to_string(text.size()) +
                                    " characters is not a multiple of 4");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=') : 0;
    if (pad == 1 && text[i + 2] == '=') pad = -1;  // "x=" then a non-pad: misplaced
    uint32_t v = 0;
    for (int j = 0; j < 4; ++j) {
      char c = text[i + j];
      int8_t d = kDecode[static_cast<uint8_t>(c)];
      if (j >= 4 - pad && c == '=')
        d = 0;
      else if (d < 0) {
        return Status::invalid_argument("base64 text has '" + std::string(1, c) + "' at position " +
                                        std::to_string(i + j + 1));
      }
      v = v << 6 | static_cast<uint32_t>(d);
    }
    out.push_back(static_cast<char>(v >> 16));
    if (pad < 2) out.push_back(static_cast<char>(v >> 8 & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(v & 0xff));
  }
  return out;
}

void JsonLine::key(std::string_view k) {
  text_.push_back(text_.empty() ? '{' : ',');
  append_json_string(&text_, k, InvalidUtf8::kPassThrough);
  text_.push_back(':');
}

JsonLine& JsonLine::add(std::string_view k, std::string_view value) {
  if (!text_.empty()) text_.pop_back();  // the closing brace
  key(k);
  append_json_string(&text_, value, InvalidUtf8::kPassThrough);
  text_.push_back('}');
  return *this;
}

JsonLine& JsonLine::add(std::string_view k, int64_t value) {
  if (!text_.empty()) text_.pop_back();
  key(k);
  text_.append(std::to_string(value));
  text_.push_back('}');
  return *this;
}

JsonLine& JsonLine::add(std::string_view k, bool value) {
  if (!text_.empty()) text_.pop_back();
  key(k);
  text_.append(value ? "true" : "false");
  text_.push_back('}');
  return *this;
}

Result<std::map<std::string, JsonLine::Value, std::less<>>> JsonLine::parse(std::string_view line) {
  Reader r(line);
  std::map<std::string, Value, std::less<>> out;
  if (!r.eat('{')) return r.error("expected '{'");
  if (!r.eat('}')) {
    for (;;) {
      CARREL_ASSIGN_OR_RETURN(std::string k, r.string());
      if (!r.eat(':')) return r.error("expected ':'");
      CARREL_ASSIGN_OR_RETURN(Value v, r.value());
      if (!out.emplace(k, std::move(v)).second) return r.error("repeated key \"" + k + "\"");
      if (r.eat('}')) break;
      if (!r.eat(',')) return r.error("expected ',' or '}'");
    }
  }
  r.skip_space();
  if (!r.done()) return r.error("text after the object");
  return out;
}

}  // namespace carrel::transfer
