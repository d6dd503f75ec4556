// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/base/redacted.hpp"

/// `remote_links.yml`: the named connections through which links reach buckets, exactly in the
/// format of the Supervisely docs (provider minio | azure | google, endpoint, access_key,
/// secret_key or a SAS, iam_role, region, credentials_path, buckets), plus Stowage's `fs`
/// provider (path, storage_id). A link is served only through a connection that lists its
/// bucket.
namespace stowage::links {

struct Connection {
  std::string name;      ///< the top-level key
  std::string provider;  ///< "minio", "azure", "google" or "fs"
  std::string endpoint;
  std::string access_key;
  Redacted<> secret_key;  ///< an S3 secret, an Azure account key or SAS token
  std::string iam_role;
  std::string region;
  std::filesystem::path credentials_path;
  std::vector<std::string> buckets;  ///< for fs: the one storage id
  std::filesystem::path path;        ///< fs: the folder on this server
  bool force_path_style = false;     ///< minio: path-style requests
  /// Stowage's own `teams:` list: the teams (by name or id) whose users may use this connection
  /// through the API (remote-storage.*, links of items, links.sync). Empty: administrators only.
  std::vector<std::string> teams;

  /// True when this connection serves `bucket` for links of `provider`.
  bool serves(std::string_view provider_name, std::string_view bucket) const;
};

struct RemoteLinks {
  std::filesystem::path file;  ///< where it was read from; empty when there is none
  std::vector<Connection> connections;

  /// The connection for a link's provider and bucket, if any.
  const Connection* find(std::string_view provider, std::string_view bucket) const;

  /// Reads `file`. A missing file is an empty configuration (no link reaches any bucket).
  /// InvalidArgument with one message naming the file, the connection and the field for
  /// anything malformed. Secrets may be given as `env:NAME` or `file:PATH`.
  static Result<RemoteLinks> load(const std::filesystem::path& file,
                                  const std::map<std::string, std::string>& environment);
  /// Parses YAML text; `file` only names it in messages.
  static Result<RemoteLinks> parse(std::string_view yaml, const std::filesystem::path& file,
                                   const std::map<std::string, std::string>& environment);
};

}  // namespace stowage::links
