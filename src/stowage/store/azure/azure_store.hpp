// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "stowage/http/transport.hpp"
#include "stowage/store/azure/azure_options.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::store::azure {

/// Azure Blob Storage: buckets are containers of one storage account, objects are block blobs.
/// Authorizes with Shared Key or a SAS token and never makes an account- or container-level
/// call (GetProperties, ACLs), so a container-scoped SAS is enough. Thread-safe.
///
/// Writes: up to AzureOptions::single_put_max_bytes in one Put Blob; beyond, Put Block with at
/// most max_blocks_in_flight blocks uploading, then Put Block List (the atomic publish). Reads
/// pin the ETag (If-Match) on every request after the first.
class AzureStore final : public ObjectStore {
 public:
  /// A store over `transport` (owned). Makes no request.
  AzureStore(AzureOptions options, std::unique_ptr<http::Transport> transport);
  /// A store with a libcurl transport.
  static Result<std::unique_ptr<AzureStore>> open(AzureOptions options);

  std::string_view name() const override { return "azure"; }
  const Capabilities& capabilities() const override { return capabilities_; }

  Result<ObjectInfo> stat(const ObjectPath& path) override;
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& path,
                                                const ReadOptions& options) override;
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(const ObjectInfo& info) override;
  Result<std::unique_ptr<Writer>> open_write(const ObjectPath& path,
                                             const WriteOptions& options) override;
  /// Pages are served from List Blobs; the page token is Stowage's own (the service marker plus
  /// the last name returned), so start_after works although Azure has no such parameter.
  Result<ListPage> list(const ObjectPath& prefix, const ListOptions& options) override;
  Status remove(const ObjectPath& path) override;

  /// A writer whose blocks are named after `upload_id` and their content: when a process dies
  /// mid-upload, a new writer with the same id and the same bytes finds the staged blocks with
  /// Get Block List and skips sending them again. Blocks are always staged (never one Put Blob).
  Result<std::unique_ptr<Writer>> open_resumable_write(const ObjectPath& path,
                                                       std::string_view upload_id,
                                                       const WriteOptions& options);

  const AzureOptions& options() const { return options_; }

  // ---- for the writer and readers of this store (not part of the ObjectStore contract) ----

  /// Sends `request` (signing it afresh on every attempt), with retries; an Azure error status
  /// is translated into an Error for `op` on `path`.
  Result<http::Response> call(std::string_view op, const ObjectPath& path, http::Request request,
                              std::uint64_t max_body_bytes = 16 << 20);
  /// Like call(), but returns the body as a stream once the status is 2xx.
  Result<std::unique_ptr<http::ResponseStream>> call_streaming(std::string_view op,
                                                               const ObjectPath& path,
                                                               http::Request request);
  /// The URL of a blob (or a container when key is empty) with `query` (already encoded, may be
  /// empty) and the SAS, if any.
  std::string url(const ObjectPath& path, std::string_view query) const;

 private:
  Status check(std::string_view op, const ObjectPath& path, bool allow_empty_key) const;
  void authorize(http::Request& request) const;
  Result<std::unique_ptr<Writer>> make_writer(const ObjectPath& path, const WriteOptions& options,
                                              std::string tag, bool resumable);
  /// Whether any blob under `folder` (a common prefix) sorts after `after`.
  Result<bool> any_key_after(const ObjectPath& folder, const std::string& after);

  AzureOptions options_;
  std::unique_ptr<http::Transport> transport_;
  Capabilities capabilities_;
};

/// Opens the store of a Config with STORAGE_PROVIDER=azure.
Result<std::unique_ptr<ObjectStore>> open_azure_store(const config::Config& config);

}  // namespace stowage::store::azure
