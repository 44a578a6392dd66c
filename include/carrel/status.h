// carrel/status.h — errors as values.
//
// Every fallible call in carrel's public API returns a Status or a Result<T>.
// Nothing thrown inside carrel crosses this API; handler code may throw, and
// the request loop turns the exception into a failed turn (code Aborted, the
// exception's message kept).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace carrel {

enum class Code : unsigned char {
  kOk = 0,
  kNotFound,         // the object, key, alarm or bookmark does not exist
  kInvalidArgument,  // bad input: the message names the input and the limit
  kCorruption,       // stored data is not what carrel wrote
  kIOError,          // the operating system refused a read, write or sync
  kNoSpace,          // the LMDB map or the disk is full
  kBusy,             // a bounded queue is full, or the directory is held by another engine
  kDeadlock,         // a call would re-enter an object already in the call chain
  kAborted,          // the turn failed (handler error, reset, shutdown)
};

// The code's name, e.g. "InvalidArgument".
std::string_view code_name(Code code);

// What an error knows beyond its code, for a caller that acts on it without
// reading the message (the `carrel` CLI looks for the damaged page). Most
// errors carry kNone; wrapping an error (with_context) keeps its detail.
enum class Detail : unsigned char {
  kNone = 0,
  // Corruption: LMDB met a page of data.mdb it cannot use (a page number past
  // the file, a page of the wrong type). The file is damaged: restore it.
  kDamagedPage,
  // IOError: LMDB refused a call because an earlier failure in the same
  // transaction ended it; that earlier failure (often a damaged page) is the
  // cause.
  kFailedTxn,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message, Detail detail = Detail::kNone)
      : code_(code), detail_(detail), message_(std::move(message)) {}

  static Status ok() { return {}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status no_space(std::string m) { return {Code::kNoSpace, std::move(m)}; }
  static Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status deadlock(std::string m) { return {Code::kDeadlock, std::move(m)}; }
  static Status aborted(std::string m) { return {Code::kAborted, std::move(m)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  Detail detail() const { return detail_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: key is 600 bytes; key_bytes_max is 495"
  std::string to_string() const;

  // Prefixes the message with context, keeping the code and the detail:
  // "object Room:a: <message>".
  Status with_context(std::string_view context) const;

 private:
  Code code_ = Code::kOk;
  Detail detail_ = Detail::kNone;
  std::string message_;
};

// A value or the Status that explains its absence. Never holds an ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).is_ok() && "Result built from an ok Status");
  }

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }

  // REQUIRES: is_ok()
  T& value() & { assert(is_ok()); return std::get<0>(v_); }
  const T& value() const& { assert(is_ok()); return std::get<0>(v_); }
  T&& value() && { assert(is_ok()); return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // The error, or an ok Status when a value is held.
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(v_); }

  T value_or(T fallback) const& { return is_ok() ? std::get<0>(v_) : std::move(fallback); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace carrel

// Internal convenience, also handy in handlers: return early on error.
#define CARREL_RETURN_IF_ERROR(expr)              \
  do {                                            \
    ::carrel::Status carrel_status_ = (expr);     \
    if (!carrel_status_.is_ok()) return carrel_status_; \
  } while (0)

#define CARREL_CONCAT_INNER_(a, b) a##b
#define CARREL_CONCAT_(a, b) CARREL_CONCAT_INNER_(a, b)
#define CARREL_ASSIGN_OR_RETURN(lhs, expr) \
  CARREL_ASSIGN_OR_RETURN_IMPL_(CARREL_CONCAT_(carrel_result_, __LINE__), lhs, expr)
#define CARREL_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.is_ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
