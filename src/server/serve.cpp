// SPDX-License-Identifier: Apache-2.0
#include "server/serve.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "server/caches.hpp"
#include "server/console_api.hpp"
#include "stowage/service/shared_settings.hpp"
#include "server/server.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/io/file.hpp"
#include "stowage/links/link_resolver.hpp"
#include "stowage/service/service.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::server {
namespace {

/// Writes the first admin token to DATA_PATH/admin-token, readable by its owner only, published
/// atomically so that a crash never leaves half a token behind.
Status write_admin_token(const std::filesystem::path& data_path, const std::string& token) {
  const auto final_path = data_path / "admin-token";
  const auto temp = io::unique_temp_path(data_path, ".admin-token");
  STOWAGE_ASSIGN_OR_RETURN(auto file, io::File::create_exclusive(temp, 0600));
  const std::string line = token + "\n";
  STOWAGE_TRY(file.write_all(std::as_bytes(std::span(line))));
  STOWAGE_TRY(file.sync());
  STOWAGE_TRY(file.close());
  return io::publish(temp, final_path);
}

int fail(const Error& error, int code = 1) {
  spdlog::error("{}", error.to_string());
  return code;
}

}  // namespace

int serve(const config::Config& config) {
  // Signals are taken by sigwait() below; block them before any thread starts so that none of
  // the server's threads is interrupted by them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that disconnects must cost a failed write (EPIPE), never the process.
  std::signal(SIGPIPE, SIG_IGN);

  if (auto ok = io::create_directories_durable(config.data_path); !ok) return fail(ok.error());
  auto catalog =
      catalog::Catalog::open(config.database_url.reveal(), config.data_path / "stowage.db");
  if (!catalog) return fail(catalog.error());
  auto issued = (*catalog)->bootstrap();
  if (!issued) return fail(issued.error());
  if (*issued) {
    if (auto ok = write_admin_token(config.data_path, (*issued)->secret); !ok)
      return fail(ok.error());
    std::cout << "Created user 'admin', a team and a workspace. API token (shown once, also in "
              << (config.data_path / "admin-token").string() << "):\n"
              << (*issued)->secret << "\n"
              << std::flush;
  }

  auto store = store::open_configured_store(config);
  if (!store) return fail(store.error(), store.error().code == ErrorCode::Unsupported ? 2 : 1);

  // The storage cache around remote stores, the preview cache, /metrics (server/caches.hpp).
  // Over a shared catalog (PostgreSQL), a previewUrl signed by one server verifies on all.
  std::optional<std::string> signing_secret;
  if (service::catalog_is_shared(config)) {
    auto secret = service::shared_preview_secret(**catalog);
    if (!secret) return fail(secret.error());
    signing_secret = std::move(*secret);
  }
  auto caches = Caches::open(config, **store, config.provider != config::Provider::Http,
                             std::move(signing_secret));
  if (!caches) return fail(caches.error());

  service::ServiceOptions service_options;
  service_options.public_bucket = config.public_bucket();
  service_options.private_bucket = config.private_bucket();
  service_options.staging_dir = config.storage_root() / ".staging";
  (*caches)->configure(service_options);
  service::Service service(**catalog, (*caches)->store(), service_options);
  const auto environment = config::process_environment();
  auto remote_links = links::RemoteLinks::load(config.remote_links_path, environment);
  if (!remote_links) return fail(remote_links.error(), 2);
  store::http_links::PublicUrlOptions url_options;
  url_options.allow_private_networks = config.links_allow_private_networks;
  links::LinkResolver resolver(std::move(*remote_links), url_options);
  (*caches)->cache_links(resolver);
  service.set_link_resolver(&resolver);
  if (!resolver.config()->connections.empty()) {
    spdlog::info("links: {} connection(s) from {}", resolver.config()->connections.size(),
                 config.remote_links_path.string());
  }

  ServerOptions options;
  options.host = config.listen_host;
  options.port = config.listen_port;
  options.io_threads = config.io_threads;
  options.worker_threads = config.worker_threads;
  options.max_upload_bytes = config.max_upload_bytes;
  options.max_json_bytes = config.max_json_bytes;
  options.io_timeout = config.request_timeout;
  options.metrics_access = config.metrics_access;
  (*caches)->attach(service, options);
  // The web console (declared before the server, so destroyed after it has stopped).
  ConsoleApi console(config, service, caches->get());
  options.console = &console;
  Server server(service, options);
  auto port = server.start();
  if (!port) return fail(port.error());
  spdlog::info("stowage serving http://{}:{} (data in {}, buckets {} and {})", config.listen_host,
               *port, config.data_path.string(), config.public_bucket(), config.private_bucket());

  int signal = 0;
  for (;;) {
    sigwait(&signals, &signal);
    if (signal != SIGHUP) break;
    // SIGHUP: read remote_links.yml again; requests in flight keep the stores they resolved.
    auto reloaded = links::RemoteLinks::load(config.remote_links_path, environment);
    if (!reloaded) {
      spdlog::error("SIGHUP: keeping the previous links configuration: {}",
                    reloaded.error().message);
      continue;
    }
    const auto count = reloaded->connections.size();
    resolver.reload(std::move(*reloaded));
    spdlog::info("SIGHUP: links configuration reloaded ({} connection(s))", count);
  }
  spdlog::info("{} received: finishing requests in flight",
               signal == SIGINT ? "SIGINT" : "SIGTERM");
  server.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace stowage::server
