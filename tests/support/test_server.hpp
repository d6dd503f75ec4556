// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "server/caches.hpp"
#include "server/console_api.hpp"
#include "server/server.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/links/link_resolver.hpp"
#include "stowage/service/service.hpp"
#include "stowage/store/object_store.hpp"
#include "support/http_client.hpp"

namespace stowage::testing {

/// A real Stowage server for one test: a temp data folder, a SQLite catalog, a store and the HTTP
/// server on an ephemeral loopback port. The store is the local disk, or, when
/// STOWAGE_TEST_STORE_ENV names a .env file (written by a test-server script such as
/// scripts/test-servers/radosgw.sh), the provider that file configures: so the same API tests
/// run unchanged against every provider. Everything local is removed on destruction.
/// Where a TestServer keeps its data, for tests that restart it.
struct TestServerSetup {
  /// The data folder; empty: a fresh temp folder, removed with the server. Given: kept, so
  /// that a server made again over it is a restart (the admin token is kept in it too).
  std::filesystem::path dir;
  /// Variables added to the configuration (e.g. CACHE_STORAGE_REVALIDATE,
  /// STOWAGE_METRICS_ACCESS).
  std::map<std::string, std::string> environment;
  /// Serve the web console too (its pages and its console.* methods), as `stowage serve` does.
  bool console = false;
};

class TestServer {
 public:
  /// `cache_ttl` is how long tokens and item locations are remembered (0: never, so that every
  /// request goes to the catalog).
  explicit TestServer(server::ServerOptions options = {},
                      std::chrono::milliseconds cache_ttl = std::chrono::milliseconds(0),
                      TestServerSetup setup = {});
  ~TestServer();

  unsigned short port() const { return port_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// The admin's token, from the catalog's bootstrap.
  const std::string& admin_token() const { return admin_token_; }
  HttpClient client() const { return HttpClient(base_url(), admin_token_); }
  catalog::Catalog& catalog() { return *catalog_; }
  store::ObjectStore& store() { return *store_; }
  /// The caches, the signer and the metrics of this server (server/caches.hpp).
  server::Caches& caches() { return *caches_; }
  const std::filesystem::path& data_path() const { return dir_; }
  const std::string& public_bucket() const { return public_bucket_; }
  /// How many objects the store holds for these bytes (by their base64 SHA-256), as an image or
  /// a video: 0 or 1.
  std::size_t objects_with_hash(const std::string& sdk_hash);

  /// Turns links on: they resolve through `config` (remote_links.yml's connections), and public
  /// URLs follow `url_options`.
  void enable_links(links::RemoteLinks config,
                    store::http_links::PublicUrlOptions url_options = {});

  /// A second user in a team of their own, with a token.
  std::string make_outsider_token();

 private:
  std::filesystem::path dir_;
  bool keep_dir_ = false;
  std::shared_ptr<void> database_;  ///< a ScratchDatabase when the catalog is on PostgreSQL
  std::unique_ptr<catalog::Catalog> catalog_;
  std::unique_ptr<store::ObjectStore> store_;
  std::unique_ptr<server::Caches> caches_;
  std::unique_ptr<service::Service> service_;
  std::unique_ptr<links::LinkResolver> links_;
  std::unique_ptr<config::Config> config_;
  std::unique_ptr<server::ConsoleApi> console_;
  std::unique_ptr<server::Server> server_;
  unsigned short port_ = 0;
  std::string admin_token_;
  std::string public_bucket_;
};

/// Image bytes made with libvips: a w x h picture whose pixels depend on `seed`, encoded as
/// "jpeg", "png", "webp" or "tiff".
/// A TCP port on 127.0.0.1 that nothing listened on a moment ago (for child processes that
/// must be told their port before they start).
unsigned short free_port();

std::string make_image(int width, int height, const std::string& format, int seed = 0);

/// The width and height of encoded image bytes, read with libvips; 0 x 0 when not an image.
struct Decoded {
  int width = 0;
  int height = 0;
};
Decoded decode(const std::string& bytes);

/// The value of one series ("name{labels}") in a Prometheus text body; 0 when absent.
double metric(const std::string& text, const std::string& series);

/// The path and query of an absolute URL ("http://host:port/p?q" -> "/p?q").
std::string path_of(std::string_view url);

/// base64(sha256(bytes)), as the SDK hashes files.
std::string sdk_hash(const std::string& bytes);

}  // namespace stowage::testing
