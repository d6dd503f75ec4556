// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "stowage/base/error.hpp"
#include "stowage/config/config.hpp"
#include "stowage/http/retry.hpp"

namespace stowage::store::gcs {

/// Resumable chunks other than the last must be a multiple of 256 KiB, or GCS answers 400
/// (https://cloud.google.com/storage/docs/performing-resumable-uploads#chunked-upload).
inline constexpr std::uint64_t kChunkQuantum = 256 * 1024;
/// Google's recommended chunk: large enough for throughput, small enough to buffer per writer.
inline constexpr std::uint64_t kDefaultChunkBytes = 8 * 1024 * 1024;
/// The public JSON API host, when STORAGE_ENDPOINT is unset.
inline constexpr std::string_view kDefaultEndpoint = "storage.googleapis.com";

/// Typed settings of the Google Cloud Storage provider.
struct GcsOptions {
  /// `scheme://host[:port]`, no path and no trailing '/'. https unless the configuration says
  /// http:// explicitly (the tests' fake server).
  std::string endpoint = "https://" + std::string(kDefaultEndpoint);
  /// The service-account JSON key file (STORAGE_CREDENTIALS_PATH).
  std::filesystem::path credentials_path;
  /// Bytes a writer buffers: objects up to this size go in one request, larger ones through a
  /// resumable session in chunks of this size. A multiple of kChunkQuantum; also bounds memory.
  std::uint64_t chunk_bytes = kDefaultChunkBytes;
  /// Retries of transport failures, 5xx, 408 and 429.
  http::RetryPolicy retry;
  /// Verify TLS certificates (always on outside tests).
  bool verify_tls = true;
  /// Where the resumable sessions of writers opened with a WriteOptions::resume_id are
  /// recorded, one file (mode 0600: a session URI is a capability) per upload, so that a writer
  /// in a later process continues the session instead of starting over. Empty: not recorded.
  std::filesystem::path sessions_dir;

  /// From STORAGE_ENDPOINT (default storage.googleapis.com), STORAGE_PORT and
  /// STORAGE_CREDENTIALS_PATH. InvalidArgument names the variable.
  static Result<GcsOptions> from_config(const config::Config& config);
  /// `storage.googleapis.com` -> `https://storage.googleapis.com`; keeps an explicit http:// or
  /// https://; appends `port` when the endpoint has none. InvalidArgument for a path or a query.
  static Result<std::string> normalize_endpoint(std::string_view endpoint,
                                                std::optional<std::uint16_t> port);
  /// InvalidArgument unless chunk_bytes is a positive multiple of kChunkQuantum.
  Status validate() const;
};

}  // namespace stowage::store::gcs
