// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/system/result.hpp>

#include <string>
#include <string_view>

namespace stowage {

/// What went wrong, independent of the backend that reported it. The server maps each code to
/// one HTTP status (server/error_status); providers translate their own errors into these.
enum class ErrorCode {
  NotFound,
  AlreadyExists,
  PreconditionFailed,
  InvalidArgument,
  Unauthenticated,
  PermissionDenied,
  RangeNotSatisfiable,
  TooLarge,
  Unavailable,
  Timeout,
  Cancelled,
  IoError,
  Corrupt,
  Unsupported,
  Internal,
};

/// The code's name, e.g. "NotFound".
std::string_view to_string(ErrorCode code) noexcept;

/// An error as it travels through the library. `message` is for people and must never hold a
/// secret: it names the operation and the object ("stat local://b/k: No such file").
struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
  int http_status = 0;         ///< status the remote answered, 0 when there was none
  std::string provider_code;   ///< e.g. "SlowDown", "NoSuchKey"
  std::string request_id;      ///< the provider's request id, for support tickets
  bool retryable = false;      ///< a retry of the same request may succeed

  /// "NotFound: <message>", plus the provider code and request id when known.
  std::string to_string() const;
};

/// Builds an Error; the usual way to fail: `return make_error(ErrorCode::NotFound, "...")`.
Error make_error(ErrorCode code, std::string message);

/// Thrown by `Result<T>::value()` on an error; used by tests and `main`, never by library code.
class ErrorException : public std::exception {
 public:
  explicit ErrorException(Error error) : error_(std::move(error)), what_(error_.to_string()) {}
  const Error& error() const noexcept { return error_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  Error error_;
  std::string what_;
};

/// Found by ADL from boost::system::result::value().
[[noreturn]] void throw_exception_from_error(const Error& error, const boost::source_location& loc);

/// A value or an Error. Check before use; `.value()` throws ErrorException.
template <class T>
using Result = boost::system::result<T, Error>;

/// Success or an Error.
using Status = Result<void>;

/// Evaluates a Status-like expression and returns its error from the enclosing function.
#define STOWAGE_TRY(expr)                                  \
  do {                                                     \
    if (auto&& stowage_try_r_ = (expr); !stowage_try_r_) { \
      return std::move(stowage_try_r_).error();            \
    }                                                      \
  } while (false)

#define STOWAGE_CONCAT_INNER_(a, b) a##b
#define STOWAGE_CONCAT_(a, b) STOWAGE_CONCAT_INNER_(a, b)

/// `STOWAGE_ASSIGN_OR_RETURN(auto x, f());` declares x from f()'s value, or returns its error.
#define STOWAGE_ASSIGN_OR_RETURN(lhs, expr) \
  STOWAGE_ASSIGN_OR_RETURN_IMPL_(STOWAGE_CONCAT_(stowage_r_, __LINE__), lhs, expr)
#define STOWAGE_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp) return std::move(tmp).error();             \
  lhs = std::move(*tmp)

/// Coroutine twins of the two macros above.
#define STOWAGE_CO_TRY(expr)                               \
  do {                                                     \
    if (auto&& stowage_try_r_ = (expr); !stowage_try_r_) { \
      co_return std::move(stowage_try_r_).error();         \
    }                                                      \
  } while (false)
#define STOWAGE_CO_ASSIGN_OR_RETURN(lhs, expr) \
  STOWAGE_CO_ASSIGN_OR_RETURN_IMPL_(STOWAGE_CONCAT_(stowage_r_, __LINE__), lhs, expr)
#define STOWAGE_CO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                      \
  if (!tmp) co_return std::move(tmp).error();             \
  lhs = std::move(*tmp)

}  // namespace stowage
