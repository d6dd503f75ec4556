// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stowage/catalog/catalog.hpp"
#include "stowage/service/service.hpp"
#include "stowage/store/object_store.hpp"

/// The Supervisely-compatible API methods (shared/spec/api.md), as plain functions of a decoded
/// request: JSON in, JSON or a download description out. No sockets here; the server moves the
/// bytes. Everything blocks (catalog, disk) and runs on the server's worker pool.
namespace stowage::server {

struct ApiRequest {
  std::string method;                        ///< "images.list", from /public/api/v3/<method>
  bool is_get = false;                       ///< GET with a query string (else POST with a body)
  std::string content_type;                  ///< of the body
  std::string body;                          ///< JSON, or application/x-www-form-urlencoded
  std::map<std::string, std::string> query;  ///< decoded query string
  std::string base_url;                      ///< "http://host:port", for fullStorageUrl
  catalog::Principal principal;
};

/// One object to send back, whole or ranged (the server applies Range).
struct Download {
  /// The store of a linked item; null for the instance's own store.
  std::shared_ptr<store::ObjectStore> store;
  store::ObjectPath path;
  std::uint64_t size = 0;
  std::string content_type;
  std::string filename;
  std::string sha256_base64;  ///< sent as x-content-checksum-sha256 on full downloads
  std::string part_name;      ///< the form-data name of a bulk-download part (the item id)
};

struct ApiResponse {
  int status = 200;
  std::string json;                     ///< the body when no download is set
  std::optional<Download> download;     ///< a single object
  std::vector<Download> bulk_download;  ///< several objects as multipart/form-data
};

/// The methods handled by Api::handle (everything except streamed uploads).
class Api {
 public:
  explicit Api(service::Service& service);

  /// Every method the server answers at /public/api/v3/<method>, sorted, except the web
  /// console's (ConsoleApi::methods()): those of handle() and the streamed uploads. handles()
  /// and is_upload() answer from the same tables, so this list is what the dispatcher serves.
  static std::vector<std::string_view> methods();
  /// True when `method` is answered by handle().
  static bool handles(std::string_view method);
  /// True when `method` streams a multipart upload (the server parses it, see upload_*).
  static bool is_upload(std::string_view method);

  /// Answers one request. Never throws; errors become JSON error responses.
  ApiResponse handle(const ApiRequest& request);

  /// The id of an images.download request (JSON `{"id": N}` or form `id=N`), when the body
  /// is well-formed; for the server's download fast path.
  static std::optional<catalog::Id> download_id(const ApiRequest& request);
  /// The download description of an item source (as images.download answers).
  static Download download_of(const service::ItemSource& source);

  /// The JSON error body the SDK parses: {"error": "...", "details": {"message": "..."}}.
  static std::string error_json(std::string_view error, std::string_view message);
  /// An Error as an HTTP status and JSON body.
  static ApiResponse error_response(const Error& error);
  /// HTTP status for an error code (one table for the whole server).
  static int http_status(ErrorCode code);

 private:
  service::Service& service_;
};

}  // namespace stowage::server
