// SPDX-License-Identifier: Apache-2.0
#include "stowage/links/link_resolver.hpp"

#include "stowage/http/transport.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::links {
namespace {

/// The providers as the Supervisely API names them (remote_storage_api.py's Provider enum).
const std::vector<ProviderSummary>& all_providers() {
  static const std::vector<ProviderSummary> kAll{
      {"minio", "Amazon S3", "s3:", {"s3:", "minio:"}, {}},
      {"azure", "Azure Blob Storage", "azure:", {"azure:"}, {}},
      {"google", "Google Cloud Storage", "google:", {"google:", "gcs:"}, {}},
      {"fs", "File system", "fs:", {"fs:"}, {}},
  };
  return kAll;
}

bool same_connection(const Connection& a, const Connection& b) {
  return a.provider == b.provider && a.endpoint == b.endpoint && a.access_key == b.access_key &&
         a.secret_key == b.secret_key && a.iam_role == b.iam_role && a.region == b.region &&
         a.credentials_path == b.credentials_path && a.path == b.path &&
         a.force_path_style == b.force_path_style;
}

}  // namespace

LinkResolver::LinkResolver(RemoteLinks config, store::http_links::PublicUrlOptions url_options)
    : config_(std::make_shared<const RemoteLinks>(std::move(config))),
      public_urls_(
          store::http_links::PublicUrlStore::make(url_options, http::make_curl_transport())) {}

std::shared_ptr<const RemoteLinks> LinkResolver::config() const {
  std::lock_guard lock(mutex_);
  return config_;
}

void LinkResolver::reload(RemoteLinks config) {
  auto next = std::make_shared<const RemoteLinks>(std::move(config));
  std::lock_guard lock(mutex_);
  // Keep the stores (and their connections, tokens) of connections that did not change.
  std::map<std::string, std::shared_ptr<store::ObjectStore>> kept;
  for (const auto& c : next->connections) {
    const auto old = std::find_if(config_->connections.begin(), config_->connections.end(),
                                  [&](const Connection& o) { return o.name == c.name; });
    const auto store = stores_.find(c.name);
    if (old != config_->connections.end() && store != stores_.end() && same_connection(*old, c)) {
      kept.emplace(c.name, store->second);
    }
  }
  stores_ = std::move(kept);
  config_ = std::move(next);
}

Result<std::shared_ptr<store::ObjectStore>> LinkResolver::store_for(const Connection& connection) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = stores_.find(connection.name); it != stores_.end()) return it->second;
  }
  // Opening may reach the network (credentials): not under the lock.
  auto opened = store::open_link_store(connection);
  if (!opened) {
    Error e = opened.error();
    e.message = "connection '" + connection.name + "': " + e.message;
    return e;
  }
  std::shared_ptr<store::ObjectStore> shared(std::move(*opened));
  if (wrapper_) shared = wrapper_(std::move(shared), &connection);
  std::lock_guard lock(mutex_);
  return stores_.emplace(connection.name, std::move(shared)).first->second;
}

void LinkResolver::set_store_wrapper(StoreWrapper wrapper) {
  std::lock_guard lock(mutex_);
  wrapper_ = std::move(wrapper);
  stores_.clear();  // opened again, through the wrapper
  if (wrapper_) public_urls_ = wrapper_(public_urls_, nullptr);
}

Result<LinkTarget> LinkResolver::resolve(std::string_view link) {
  STOWAGE_ASSIGN_OR_RETURN(auto locator, uri::Locator::parse(link));
  return resolve_locator(std::move(locator));
}

Result<LinkTarget> LinkResolver::resolve_prefix(std::string_view link) {
  STOWAGE_ASSIGN_OR_RETURN(auto locator, uri::Locator::parse_prefix(link));
  if (locator.scheme == uri::Scheme::Http || locator.scheme == uri::Scheme::Https) {
    return make_error(ErrorCode::InvalidArgument,
                      "public URLs cannot be listed; give <provider>://<bucket>/<prefix>");
  }
  return resolve_locator(std::move(locator));
}

Result<LinkTarget> LinkResolver::resolve_locator(uri::Locator locator) {
  LinkTarget target;
  if (locator.scheme == uri::Scheme::Http || locator.scheme == uri::Scheme::Https) {
    target.store = public_urls_;
    target.path = store::http_links::path_of_url(locator.url);
    target.locator = std::move(locator);
    return target;
  }
  const auto config = this->config();
  const std::string_view provider = uri::provider_of(locator.scheme);
  const Connection* connection = config->find(provider, locator.authority);
  if (connection == nullptr) {
    const std::string file = config->file.empty() ? "remote_links.yml" : config->file.string();
    return make_error(ErrorCode::PermissionDenied,
                      "link " + locator.scheme_text + "://" + locator.authority +
                          "/...: no connection of provider '" + std::string(provider) +
                          "' lists bucket '" + locator.authority + "'; add it to the buckets of " +
                          "a connection in " + file);
  }
  STOWAGE_ASSIGN_OR_RETURN(target.store, store_for(*connection));
  target.path = {locator.authority, locator.key};
  target.connection = connection->name;
  target.teams = connection->teams;
  target.locator = std::move(locator);
  return target;
}

std::vector<ProviderSummary> LinkResolver::available_providers() const {
  return available_providers([](const Connection&) { return true; });
}

std::vector<ProviderSummary> LinkResolver::available_providers(
    const std::function<bool(const Connection&)>& usable) const {
  const auto config = this->config();
  std::vector<ProviderSummary> out;
  for (const auto& p : all_providers()) {
    ProviderSummary summary = p;
    bool any = false;
    for (const auto& c : config->connections) {
      if (c.provider != p.id || !usable(c)) continue;
      any = true;
      for (const auto& b : c.buckets) {
        if (std::find(summary.buckets.begin(), summary.buckets.end(), b) == summary.buckets.end()) {
          summary.buckets.push_back(b);
        }
      }
    }
    if (any) out.push_back(std::move(summary));
  }
  return out;
}

std::vector<ProviderSummary> LinkResolver::supported_providers() { return all_providers(); }

}  // namespace stowage::links
