#include "tools/cli/output.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <iostream>

namespace carrel::cli {
namespace {

size_t display_width(std::string_view s) {
  size_t w = 0;
  for (char c : s) w += (static_cast<uint8_t>(c) & 0xc0) != 0x80;
  return w;
}

void append_hex_byte(std::string* out, uint8_t c, const char* prefix) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%s%02x", prefix, c);
  out->append(buf);
}

}  // namespace

std::string display_bytes(std::string_view s) {
  bool plain = is_valid_utf8(s);
  for (size_t i = 0; plain && i < s.size(); ++i) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    if (c < 0x20 || c == 0x7f) plain = false;
  }
  if (plain) return std::string(s);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    uint8_t c = static_cast<uint8_t>(s[i]);
    size_t n = transfer::utf8_sequence(s, i);
    if (n > 1) {
      out.append(s.substr(i, n));
      i += n;
      continue;
    }
    ++i;
    if (n == 0)
      append_hex_byte(&out, c, "\\x");
    else if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\\')
      out += "\\\\";
    else if (c < 0x20 || c == 0x7f)
      append_hex_byte(&out, c, "\\x");
    else
      out.push_back(static_cast<char>(c));
  }
  return out;
}

std::string format_time(UnixMs t) {
  if (t == 0) return "-";
  int64_t secs = t >= 0 ? t / 1000 : -((-t + 999) / 1000);
  int ms = static_cast<int>(t - secs * 1000);
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  if (gmtime_r(&tt, &tm) == nullptr) return std::to_string(t) + "ms";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

Result<UnixMs> parse_time(std::string_view text, std::string_view forms) {
  auto bad = [&](std::string_view why) {
    return Status::invalid_argument("time '" + std::string(text.substr(0, 100)) + "' " +
                                    std::string(why) + "; expected " + std::string(forms) + ", " +
                                    std::string(kTimeRange));
  };
  if (text.empty()) return bad("is empty");
  bool digits = true;
  for (char c : text) digits = digits && c >= '0' && c <= '9';
  if (digits) {
    static_assert(kTimeMsMax < 999'999'999'999'999, "15 digits hold every accepted time");
    if (text.size() > 15 || std::stoll(std::string(text)) > kTimeMsMax) {
      return bad("is out of range");
    }
    return static_cast<UnixMs>(std::stoll(std::string(text)));
  }
  if (text.size() > 1 && text[0] == '-' &&
      text.find_first_not_of("0123456789", 1) == std::string_view::npos) {
    return bad("is out of range (negative)");
  }
  size_t at = 0;
  auto number = [&](size_t width, int* out) {
    if (at + width > text.size()) return false;
    int v = 0;
    for (size_t i = 0; i < width; ++i) {
      char c = text[at + i];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    at += width;
    return true;
  };
  auto expect = [&](std::string_view chars) {
    if (at < text.size() && chars.find(text[at]) != std::string_view::npos) {
      ++at;
      return true;
    }
    return false;
  };
  int year, mon, day, hour, min, sec;
  if (!number(4, &year) || !expect("-") || !number(2, &mon) || !expect("-") || !number(2, &day) ||
      !expect("Tt ") || !number(2, &hour) || !expect(":") || !number(2, &min) || !expect(":") ||
      !number(2, &sec)) {
    return bad("is not a valid time");
  }
  int ms = 0;
  if (expect(".")) {
    int scale = 100;
    size_t digits_seen = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      ms += (text[at] - '0') * scale;
      scale /= 10;
      ++at, ++digits_seen;
    }
    if (digits_seen == 0) return bad("has an empty fraction of a second");
  }
  int offset_min = 0;
  if (expect("Zz")) {
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int sign = text[at] == '-' ? -1 : 1;
    ++at;
    int oh, om;
    if (!number(2, &oh) || !expect(":") || !number(2, &om) || oh > 23 || om > 59) {
      return bad("has a malformed UTC offset");
    }
    offset_min = sign * (oh * 60 + om);
  } else {
    return bad("lacks a time zone (Z or +HH:MM)");
  }
  if (at != text.size()) return bad("has trailing characters");
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60) {
    return bad("has a field out of range");
  }
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  time_t secs = timegm(&tm);
  // timegm normalizes Feb 30 to Mar 2: refuse dates that moved.
  struct tm check {};
  if (gmtime_r(&secs, &check) == nullptr || check.tm_mday != day) {
    return bad("names a day that does not exist");
  }
  UnixMs t = static_cast<UnixMs>(secs - offset_min * 60) * 1000 + ms;
  if (t < 0 || t > kTimeMsMax) return bad("is out of range");
  return t;
}

std::string count_of(uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string format_bytes(uint64_t n) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[u]);
  return buf;
}

// JsonWriter

void JsonWriter::before_value() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

JsonWriter& JsonWriter::begin_object() {
  before_value();
  out_.push_back('{');
  first_.push_back(true);
  return *this;
}
JsonWriter& JsonWriter::end_object() {
  out_.push_back('}');
  first_.pop_back();
  return *this;
}
JsonWriter& JsonWriter::begin_array() {
  before_value();
  out_.push_back('[');
  first_.push_back(true);
  return *this;
}
JsonWriter& JsonWriter::end_array() {
  out_.push_back(']');
  first_.pop_back();
  return *this;
}

JsonWriter& JsonWriter::key(std::string_view k) {
  text(k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::text(std::string_view s) {
  before_value();
  transfer::append_json_string(&out_, s, transfer::InvalidUtf8::kReplace);  // invariant (1)
  return *this;
}

JsonWriter& JsonWriter::number(int64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}
JsonWriter& JsonWriter::number(uint64_t v) {
  before_value();
  out_ += std::to_string(v);
  return *this;
}
JsonWriter& JsonWriter::number(double v) {
  if (!std::isfinite(v)) return null();  // JSON has no NaN or infinity
  before_value();
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  out_ += buf;
  return *this;
}
JsonWriter& JsonWriter::boolean(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}
JsonWriter& JsonWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::bytes_field(std::string_view name, std::string_view bytes) {
  key(name);
  if (is_valid_utf8(bytes)) return text(bytes);
  text(base64_encode(bytes));
  key(std::string(name) + "_encoding");
  return text("base64");
}

JsonWriter& JsonWriter::sql_value(const SqlValue& v) {
  switch (v.index()) {
    case 0:
      return null();
    case 1:
      return number(std::get<int64_t>(v));
    case 2:
      return number(std::get<double>(v));
    case 3:
      return text(std::get<std::string>(v));
    default:
      begin_object();
      key("base64");
      text(base64_encode(std::get<Blob>(v).bytes));
      return end_object();
  }
}

void JsonWriter::print_line() const {
  std::cout << out_ << '\n';
}

// Table

void Table::print(std::ostream& os) const {
  std::vector<size_t> width(headers_.size(), 0);
  for (size_t c = 0; c < headers_.size(); ++c) width[c] = display_width(headers_[c]);
  for (const auto& row : rows_) {
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], display_width(row[c]));
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < width.size(); ++c) {
      std::string_view cell = c < cells.size() ? std::string_view(cells[c]) : "";
      size_t pad = width[c] - display_width(cell);
      bool last = c + 1 == width.size();
      if (right_[c]) out.append(pad, ' ');
      out.append(cell);
      if (!right_[c] && !last) out.append(pad, ' ');
      if (!last) out += "  ";
    }
    os << out << '\n';
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
}

std::string display_sql_value(const SqlValue& v) {
  switch (v.index()) {
    case 0:
      return "NULL";
    case 1:
      return std::to_string(std::get<int64_t>(v));
    case 2: {
      char buf[40];
      std::snprintf(buf, sizeof(buf), "%.15g", std::get<double>(v));
      return buf;
    }
    case 3:
      return display_bytes(std::get<std::string>(v));
    default: {
      std::string out = "x'";
      for (char c : std::get<Blob>(v).bytes) append_hex_byte(&out, static_cast<uint8_t>(c), "");
      return out + "'";
    }
  }
}

}  // namespace carrel::cli
