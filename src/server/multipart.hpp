// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"

namespace stowage::server {

/// The headers of one part of a multipart/form-data body (RFC 7578).
struct PartHeaders {
  std::string name;                     ///< Content-Disposition's name
  std::optional<std::string> filename;  ///< Content-Disposition's filename, when present
  std::string content_type;             ///< empty when the part has none
};

/// One step of a multipart body, produced in order: Begin, any number of Data, End; repeated for
/// every part. Data spans point into the parser's buffer and stay valid until the next feed().
struct PartEvent {
  enum class Kind { Begin, Data, End };
  Kind kind;
  PartHeaders headers;              ///< with Begin
  std::span<const std::byte> data;  ///< with Data
};

/// An incremental multipart/form-data parser: feed it the body as it arrives, in chunks of any
/// size, and it yields part events. Memory is bounded by the largest chunk fed plus the
/// delimiter and the header limit; part bodies are never accumulated.
class MultipartParser {
 public:
  /// `boundary` as given in the Content-Type header (without the leading "--").
  explicit MultipartParser(std::string boundary);
  ~MultipartParser();

  /// Takes the next bytes of the body and returns the events they complete. InvalidArgument on
  /// a malformed body (headers over 16 KiB, a part without a name, text after a boundary).
  Result<std::vector<PartEvent>> feed(std::span<const std::byte> bytes);
  /// Call at the end of the body: InvalidArgument unless the closing boundary was seen.
  Status finish() const;
  /// True once the closing boundary has been parsed.
  bool done() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The boundary parameter of a `multipart/form-data; boundary=...` Content-Type (quoted or not);
/// InvalidArgument when the type is not multipart/form-data or the boundary is missing or longer
/// than RFC 2046's 70 characters.
Result<std::string> multipart_boundary(std::string_view content_type);

/// Parses `form-data; name="x"; filename="y"`. Returns nullopt when it is not form-data.
std::optional<PartHeaders> parse_content_disposition(std::string_view value);

}  // namespace stowage::server
