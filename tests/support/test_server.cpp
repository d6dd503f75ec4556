// SPDX-License-Identifier: Apache-2.0
#include "support/test_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vips/vips.h>

#include <atomic>
#include <fstream>
#include <random>
#include <stdexcept>

#include "stowage/config/config.hpp"
#include "stowage/io/checksum.hpp"
#include "stowage/store/registry.hpp"
#include "support/postgres.hpp"

namespace stowage::testing {
namespace {

std::filesystem::path make_temp_dir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("stowage-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
              std::to_string(rd() % 100000));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

TestServer::TestServer(server::ServerOptions options, std::chrono::milliseconds cache_ttl,
                       TestServerSetup setup)
    : dir_(setup.dir.empty() ? make_temp_dir() : setup.dir), keep_dir_(!setup.dir.empty()) {
  std::filesystem::create_directories(dir_);
  config::LoadOptions load;
  load.cwd = dir_;
  load.environment = std::move(setup.environment);
  load.environment["DATA_PATH"] = (dir_ / "data").string();
  if (const char* env = std::getenv("STOWAGE_TEST_STORE_ENV"); env != nullptr && *env != '\0') {
    load.env_file = env;
  } else {
    load.environment["STORAGE_BUCKET_PREFIX"] = "test";
  }
  auto config = config::load(load).value();
  config::resolve_bucket_prefix(config).value();
  public_bucket_ = config.public_bucket();
  // STOWAGE_TEST_CATALOG_ENV (the postgres fixture's .env): the catalog is a database of its
  // own on the test PostgreSQL (the API suite run once on that engine). A server restarted
  // over a kept folder keeps its SQLite catalog there.
  if (const char* env = std::getenv("STOWAGE_TEST_CATALOG_ENV");
      env != nullptr && *env != '\0' && !keep_dir_) {
    const std::string server = postgres_server_url("STOWAGE_TEST_CATALOG_ENV");
    if (server.empty()) throw std::runtime_error("STOWAGE_TEST_CATALOG_ENV: no test PostgreSQL");
    auto db = std::make_shared<ScratchDatabase>(ScratchDatabase::create(server).value());
    catalog_ = catalog::Catalog::open_postgres(db->url()).value();
    database_ = std::move(db);
  } else {
    catalog_ = catalog::Catalog::open_sqlite(dir_ / "stowage.db").value();
  }
  auto issued = catalog_->bootstrap().value();
  const auto token_file = dir_ / "admin-token";
  if (issued) {
    admin_token_ = issued->secret;
    std::ofstream(token_file) << admin_token_;
  } else if (!(std::ifstream(token_file) >> admin_token_)) {
    throw std::runtime_error("bootstrap issued no token and none was kept");
  }
  store_ = store::open_configured_store(config).value();
  const bool remote = config.provider != config::Provider::Http;
  caches_ = server::Caches::open(config, *store_, remote).value();
  service::ServiceOptions service_options;
  service_options.public_bucket = config.public_bucket();
  service_options.private_bucket = config.private_bucket();
  service_options.staging_dir = config.storage_root() / ".staging";
  service_options.token_cache_ttl = cache_ttl;
  service_options.item_cache_ttl = cache_ttl;
  caches_->configure(service_options);
  service_ = std::make_unique<service::Service>(*catalog_, caches_->store(), service_options);
  options.host = "127.0.0.1";
  options.port = 0;
  if (options.io_threads == 0) options.io_threads = 2;
  if (options.worker_threads == 0) options.worker_threads = 4;
  caches_->attach(*service_, options);
  if (config.sources.contains("STOWAGE_METRICS_ACCESS")) {
    options.metrics_access = config.metrics_access;
  }
  config_ = std::make_unique<config::Config>(config);
  if (setup.console) {
    console_ = std::make_unique<server::ConsoleApi>(*config_, *service_, caches_.get());
    options.console = console_.get();
  }
  server_ = std::make_unique<server::Server>(*service_, options);
  port_ = server_->start().value();
}

TestServer::~TestServer() {
  server_->stop();
  server_.reset();
  console_.reset();
  service_.reset();
  links_.reset();
  caches_.reset();
  store_.reset();
  catalog_.reset();
  database_.reset();
  if (keep_dir_) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

unsigned short free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::size_t TestServer::objects_with_hash(const std::string& hash) {
  const std::string hex = service::Service::hash_base64_to_hex(hash).value();
  std::size_t found = 0;
  for (const char* kind : {"images", "videos"}) {
    const std::string prefix = std::string(kind) + "/original/" + hex.substr(0, 2) + "/" +
                               hex.substr(2, 2) + "/" + hex;
    found += store_->list({public_bucket_, prefix}, {}).value().objects.size();
  }
  return found;
}

void TestServer::enable_links(links::RemoteLinks config,
                              store::http_links::PublicUrlOptions url_options) {
  links_ = std::make_unique<links::LinkResolver>(std::move(config), url_options);
  caches_->cache_links(*links_);  // as `stowage serve` does
  service_->set_link_resolver(links_.get());
}

std::string TestServer::make_outsider_token() {
  static std::atomic<int> n{0};
  const std::string login = "outsider" + std::to_string(n++);
  auto user = catalog_->create_user(login, false).value();
  auto team = catalog_->create_team(login + "'s team", "").value();
  catalog_->add_member(team.id, user.id, catalog::Role::Admin).value();
  return catalog_->create_token(user.id, "test").value().secret;
}

Decoded decode(const std::string& bytes) {
  VipsImage* img = vips_image_new_from_buffer(bytes.data(), bytes.size(), "", nullptr);
  if (img == nullptr) return {};
  Decoded d{vips_image_get_width(img), vips_image_get_height(img)};
  g_object_unref(img);
  return d;
}

double metric(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string path_of(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  const auto path = url.find('/', scheme + 3);
  return path == std::string_view::npos ? "/" : std::string(url.substr(path));
}

std::string make_image(int width, int height, const std::string& format, int seed) {
  static std::once_flag once;
  std::call_once(once, [] { VIPS_INIT("stowage-tests"); });
  VipsImage* base = nullptr;
  // A gradient plus a seed-dependent offset, so different seeds give different bytes.
  if (vips_xyz(&base, width, height, nullptr) != 0) throw std::runtime_error(vips_error_buffer());
  VipsImage* band = nullptr;
  vips_extract_band(base, &band, 0, nullptr);
  VipsImage* shifted = nullptr;
  vips_linear1(band, &shifted, 1.0, static_cast<double>(seed % 200), nullptr);
  VipsImage* u8 = nullptr;
  vips_cast_uchar(shifted, &u8, nullptr);
  void* buf = nullptr;
  size_t len = 0;
  int rc = -1;
  if (format == "jpeg")
    rc = vips_jpegsave_buffer(u8, &buf, &len, nullptr);
  else if (format == "png")
    rc = vips_pngsave_buffer(u8, &buf, &len, nullptr);
  else if (format == "webp")
    rc = vips_webpsave_buffer(u8, &buf, &len, nullptr);
  else if (format == "tiff")
    rc = vips_tiffsave_buffer(u8, &buf, &len, nullptr);
  g_object_unref(base);
  g_object_unref(band);
  g_object_unref(shifted);
  g_object_unref(u8);
  if (rc != 0) throw std::runtime_error(vips_error_buffer());
  std::string out(static_cast<const char*>(buf), len);
  g_free(buf);
  return out;
}

std::string sdk_hash(const std::string& bytes) {
  const auto digest = io::Sha256::of(std::as_bytes(std::span(bytes)));
  return io::to_base64(digest);
}

}  // namespace stowage::testing
