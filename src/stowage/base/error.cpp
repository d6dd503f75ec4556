// SPDX-License-Identifier: Apache-2.0
#include "stowage/base/error.hpp"

namespace stowage {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::NotFound: return "NotFound";
    case ErrorCode::AlreadyExists: return "AlreadyExists";
    case ErrorCode::PreconditionFailed: return "PreconditionFailed";
    case ErrorCode::InvalidArgument: return "InvalidArgument";
    case ErrorCode::Unauthenticated: return "Unauthenticated";
    case ErrorCode::PermissionDenied: return "PermissionDenied";
    case ErrorCode::RangeNotSatisfiable: return "RangeNotSatisfiable";
    case ErrorCode::TooLarge: return "TooLarge";
    case ErrorCode::Unavailable: return "Unavailable";
    case ErrorCode::Timeout: return "Timeout";
    case ErrorCode::Cancelled: return "Cancelled";
    case ErrorCode::IoError: return "IoError";
    case ErrorCode::Corrupt: return "Corrupt";
    case ErrorCode::Unsupported: return "Unsupported";
    case ErrorCode::Internal: return "Internal";
  }
  return "Unknown";
}

std::string Error::to_string() const {
  std::string out{stowage::to_string(code)};
  out += ": ";
  out += message;
  if (!provider_code.empty()) out += " [" + provider_code + "]";
  if (!request_id.empty()) out += " (request " + request_id + ")";
  return out;
}

Error make_error(ErrorCode code, std::string message) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

void throw_exception_from_error(const Error& error, const boost::source_location&) {
  throw ErrorException(error);
}

}  // namespace stowage
