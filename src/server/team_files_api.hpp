// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "server/api.hpp"
#include "server/multipart.hpp"
#include "stowage/base/error.hpp"
#include "stowage/service/service.hpp"

/// The team-files methods of the API (`file-storage.*`, the SDK's `api.file`), over
/// service/team_files.hpp. Wire shapes: docs/api-files.md. No sockets here: the server feeds
/// uploads to an UploadSink part by part and sends what a download names.
namespace stowage::server {

/// Every file-storage.* method, the streamed uploads among them.
std::span<const std::string_view> team_files_methods();
/// True for the JSON methods answered by handle_team_files().
bool team_files_handles(std::string_view method);
/// True for the streamed multipart uploads (file-storage.upload, file-storage.bulk.upload).
bool team_files_is_upload(std::string_view method);

/// Answers one JSON team-files method; `params` is the decoded body (or form, or query).
/// Blocking (store, catalog); errors become their status and JSON error body.
ApiResponse handle_team_files(service::Service& service, const ApiRequest& request,
                              const boost::json::value& params);

/// Receives a multipart body one part event at a time. Every call blocks (it writes to the
/// store) and runs on the server's workers, one at a time. Dropping the sink aborts the file in
/// flight; files already committed stay.
class UploadSink {
 public:
  virtual ~UploadSink() = default;
  virtual Status begin_part(const PartHeaders& headers) = 0;
  virtual Status part_data(std::span<const std::byte> bytes) = 0;
  virtual Status end_part() = 0;
  /// After the closing boundary: the JSON answer.
  virtual Result<std::string> finish() = 0;
};

/// The sink of a file-storage.upload / file-storage.bulk.upload request: ordered `name`, `path`
/// (the destination folder) and `file` parts, repeated, as the SDK's upload_bulk sends them; the
/// team is the `teamId` query parameter. `body_bytes` (the request's Content-Length, when
/// announced) bounds each file's size for the provider's part plan.
Result<std::unique_ptr<UploadSink>> team_files_upload(service::Service& service,
                                                      const ApiRequest& request,
                                                      std::optional<std::uint64_t> body_bytes);

}  // namespace stowage::server
