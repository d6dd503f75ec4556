// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "stowage/base/error.hpp"
#include "stowage/base/redacted.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

/// Stowage's configuration: the `.env` variables of the Supervisely Remote Storage docs plus
/// Stowage's own (../docs/configuration.md lists them all).
namespace stowage::config {

enum class Provider { Http, Minio, Azure, Google };
std::string_view to_string(Provider provider) noexcept;

/// Where each setting came from, for `stowage where` and error messages.
enum class Source { Default, EnvFile, Environment };

/// Who may read `GET /metrics` (STOWAGE_METRICS_ACCESS). The series carry no team's data (cache
/// and request figures, method names), but they show how the instance is used, so not everyone.
enum class MetricsAccess {
  Loopback,  ///< "loopback", the default: a client on a loopback address, or any valid API token
  Token,     ///< "token": a valid API token (x-api-key), wherever the client is
  Open,      ///< "open": anyone who can reach the port (a scraper on a trusted network)
};

struct Config {
  /// The .env file in use; empty when none was found (all defaults).
  std::filesystem::path env_file;
  /// How env_file was chosen: "--env", "STOWAGE_ENV_FILE", "./.env" or "none".
  std::string env_file_origin;

  std::filesystem::path data_path;  ///< DATA_PATH, absolute
  Provider provider = Provider::Http;

  // Remote provider settings (unused by `http`).
  std::string storage_endpoint;
  std::optional<std::uint16_t> storage_port;
  std::string storage_access_key;  ///< an account name on Azure: not a secret
  Redacted<> storage_secret_key;
  std::string storage_iam_role;
  std::filesystem::path storage_credentials_path;
  std::string storage_region = "us-east-1";
  bool storage_force_path_style = false;
  /// STORAGE_BUCKET_PREFIX; empty until resolve_bucket_prefix() when unset.
  std::string bucket_prefix;

  // Caches.
  std::uint64_t cache_previews_bytes = 1ull << 30;
  std::chrono::seconds cache_previews_expires{12 * 3600};
  std::uint64_t cache_storage_bytes = 10ull << 30;
  std::chrono::seconds cache_storage_expires{7 * 24 * 3600};
  /// CACHE_STORAGE_REVALIDATE: how long a cached linked object is served with no request to its
  /// remote; then one stat confirms it (or the new version is fetched). 0: on every read.
  std::chrono::seconds cache_storage_revalidate{3600};

  std::filesystem::path remote_links_path;  ///< REMOTE_LINKS_PATH
  /// STOWAGE_LINKS_ALLOW_PRIVATE_NETWORKS: let public-URL links reach loopback and private
  /// addresses (off: such links are refused, against server-side request forgery).
  bool links_allow_private_networks = false;
  std::string listen_host = "127.0.0.1";    ///< from STOWAGE_LISTEN
  std::uint16_t listen_port = 8080;
  Redacted<> database_url;                  ///< may carry a password

  // Server limits (Stowage's own).
  std::uint64_t max_upload_bytes = 50ull << 30;    ///< STOWAGE_MAX_UPLOAD_SIZE, one request body
  std::uint64_t max_json_bytes = 16ull << 20;      ///< STOWAGE_MAX_JSON_SIZE
  std::chrono::seconds request_timeout{300};       ///< STOWAGE_REQUEST_TIMEOUT, idle time per I/O
  unsigned io_threads = 0;                         ///< STOWAGE_IO_THREADS, 0 = one per core
  unsigned worker_threads = 0;                     ///< STOWAGE_WORKER_THREADS, 0 = 4 per core
  MetricsAccess metrics_access = MetricsAccess::Loopback;  ///< STOWAGE_METRICS_ACCESS

  /// Where each variable's value came from (variable name -> source); unset names are defaults.
  std::map<std::string, Source> sources;

  /// `DATA_PATH/storage`: the two bucket folders of the local provider.
  std::filesystem::path storage_root() const { return data_path / "storage"; }
  std::string public_bucket() const { return bucket_prefix + "-public"; }
  std::string private_bucket() const { return bucket_prefix + "-private"; }
  /// The SQLite file when database_url is unset or a sqlite path.
  std::filesystem::path sqlite_path() const;
};

struct LoadOptions {
  /// `--env FILE` from the command line; wins over everything.
  std::optional<std::filesystem::path> env_file;
  /// Directory that relative paths and `./.env` are resolved against (the working directory).
  std::filesystem::path cwd = std::filesystem::current_path();
  /// Process environment (name -> value); variables here override the file, as with
  /// docker compose. Tests pass their own.
  std::map<std::string, std::string> environment;
};

/// Reads the process environment into a map.
std::map<std::string, std::string> process_environment();

/// Finds the .env file (--env, $STOWAGE_ENV_FILE, ./.env), parses it and validates every
/// variable. InvalidArgument with one message naming the variable and the file, e.g.
/// `CACHE_STORAGE_SIZE="10x" in /srv/.env: not a size (use a number with k, m, g or t)`.
/// Never includes a secret's value in a message.
Result<Config> load(const LoadOptions& options);

/// Parses `.env` text: KEY=VALUE lines, `#` comments, blank lines, optional `export `, single or
/// double quotes. InvalidArgument names the line number.
Result<std::map<std::string, std::string>> parse_env_text(std::string_view text);

/// "10g" -> bytes. Units k, m, g, t (powers of 1024), optional trailing 'b'/'B'.
Result<std::uint64_t> parse_size(std::string_view text);
/// "12h" -> seconds. Units s, m, h, d, w; a bare number is seconds.
Result<std::chrono::seconds> parse_duration(std::string_view text);

/// Reads STORAGE_BUCKET_PREFIX's stand-in from `DATA_PATH/bucket-prefix`, generating and saving
/// a random one ("stowage-" + 8 random lowercase letters/digits) the first time. No-op when
/// the prefix was configured.
Status resolve_bucket_prefix(Config& config);

/// A new random bucket prefix, as resolve_bucket_prefix() generates ("stowage-" + 8 random
/// lowercase letters/digits).
std::string generate_bucket_prefix();

/// True for a prefix that makes valid bucket/container names on every provider.
bool bucket_prefix_is_valid(std::string_view prefix);

/// The prefix an earlier resolve_bucket_prefix() saved in `DATA_PATH/bucket-prefix`, or
/// std::nullopt when none was saved yet. Only reads (for `stowage where` and `config check`);
/// Corrupt when the file does not hold a valid prefix, IoError when it cannot be read.
Result<std::optional<std::string>> read_saved_bucket_prefix(const Config& config);

/// `url` with any password (the userinfo's `:password` or a `password=` query parameter)
/// replaced by `***`, for printing a DATABASE_URL. Other text is returned unchanged.
std::string redact_database_url(std::string_view url);

}  // namespace stowage::config
