// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/auth/azure_shared_key.hpp"
#include "stowage/base/error.hpp"
#include "stowage/base/redacted.hpp"
#include "stowage/config/config.hpp"
#include "stowage/http/retry.hpp"

namespace stowage::store::azure {

/// Everything an AzureStore needs: where the blob service is, how to authorize, how to upload.
/// Built with one of the named constructors; secrets are Redacted.
struct AzureOptions {
  /// The blob endpoint without a trailing '/': "https://<account>.blob.core.windows.net", or an
  /// emulator's path-style "http://127.0.0.1:10000/devstoreaccount1". Containers and blobs are
  /// appended as "/<container>/<blob>".
  std::string endpoint;
  /// The storage account name (STORAGE_ACCESS_KEY). Not a secret.
  std::string account;
  /// Shared Key credentials, or nullopt when a SAS authorizes the requests.
  std::optional<auth::azure::SharedKeyCredentials> shared_key;
  /// A SAS query string without the leading '?' (e.g. "sv=...&sp=racwdl&sig=..."), appended to
  /// every request. Empty with Shared Key.
  Redacted<> sas;
  /// libcurl CONNECT_TO entries, for tests that send `<account>.blob.core.windows.net` to an
  /// emulator on 127.0.0.1.
  std::vector<std::string> connect_to;
  /// Verify TLS certificates (never turn off outside tests).
  bool verify_tls = true;

  /// Objects up to this size go up in one Put Blob; larger ones as blocks.
  std::uint64_t single_put_max_bytes = 4 << 20;
  /// The smallest block; grows for large or unknown sizes so that a blob fits in kMaxBlocks.
  std::uint64_t block_bytes = 4 << 20;
  /// Blocks uploading at once per writer; a full writer's write() blocks (memory stays at about
  /// (max_blocks_in_flight + 1) * block size).
  std::size_t max_blocks_in_flight = 4;
  /// Retries of one request (5xx, 429/ServerBusy, resets, timeouts).
  http::RetryPolicy retry;

  /// With the account key as the portal shows it (base64). InvalidArgument if it is not base64.
  static Result<AzureOptions> with_account_key(std::string endpoint, std::string account,
                                               std::string_view key);
  /// With a SAS token; a leading '?' is accepted and dropped.
  static Result<AzureOptions> with_sas(std::string endpoint, std::string account,
                                       std::string_view sas);
  /// As the docs' settings give it (.env or a remote_links.yml connection): `secret` is an
  /// account key, or a SAS token (recognized by its `sig=` parameter, with or without '?').
  /// An endpoint without a scheme gets https://; `port`, when set, is added to an endpoint that
  /// has none; an empty endpoint means https://<account>.blob.core.windows.net.
  static Result<AzureOptions> from_settings(std::string_view endpoint,
                                            std::optional<std::uint16_t> port, std::string account,
                                            std::string_view secret);
  /// From STORAGE_ENDPOINT, STORAGE_PORT, STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY.
  static Result<AzureOptions> from_config(const config::Config& config);
};

/// True when `secret` looks like a SAS token (it has a `sig=` parameter) rather than a key.
bool is_sas_token(std::string_view secret);

}  // namespace stowage::store::azure
