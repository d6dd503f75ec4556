// SPDX-License-Identifier: Apache-2.0
#include <fstream>
#include <sstream>

#include "cli/commands.hpp"
#include "stowage/links/link_resolver.hpp"
#include "stowage/service/service.hpp"
#include "stowage/store/registry.hpp"

namespace stowage::cli {

int run_links_import(const config::Config& config, const LinksImportOptions& options,
                     std::ostream& out, std::ostream& err) {
  std::ifstream in(options.file, std::ios::binary);
  if (!in) return fail(err, "cannot read " + options.file, kExitUsage);
  std::ostringstream text;
  text << in.rdbuf();

  auto catalog = catalog::Catalog::open_sqlite(config.sqlite_path());
  if (!catalog) return fail(err, catalog.error().message, exit_code_for(catalog.error()));
  // The command acts as the instance's administrator, like `serve` on its first start.
  auto admin = (*catalog)->find_user("admin");
  if (!admin) return fail(err, "no user 'admin': run `stowage serve` once first", kExitUsage);
  auto memberships = (*catalog)->memberships(admin->id);
  if (!memberships) return fail(err, memberships.error().message, kExitFailed);
  catalog::Principal who;
  who.user = *admin;
  for (const auto& m : *memberships) who.team_ids.push_back(m.team.id);

  auto store = store::open_configured_store(config);
  if (!store) return fail(err, store.error().message, exit_code_for(store.error()));
  auto remote_links =
      links::RemoteLinks::load(config.remote_links_path, config::process_environment());
  if (!remote_links) return fail(err, remote_links.error().message, kExitUsage);
  store::http_links::PublicUrlOptions url_options;
  url_options.allow_private_networks = config.links_allow_private_networks;
  links::LinkResolver resolver(std::move(*remote_links), url_options);
  service::ServiceOptions service_options;
  service_options.public_bucket = config.public_bucket();
  service_options.private_bucket = config.private_bucket();
  service_options.staging_dir = config.storage_root() / ".staging";
  service::Service service(**catalog, **store, service_options);
  service.set_link_resolver(&resolver);

  auto lines = service.import_links(who, options.dataset_id, text.str(), options.force_metadata);
  if (!lines) return fail(err, lines.error().message, exit_code_for(lines.error()));

  using Status = service::Service::LinkLine::Status;
  std::vector<std::vector<std::string>> rows;
  std::size_t added = 0, existing = 0, failed = 0;
  for (const auto& l : *lines) {
    std::string status = l.status == Status::Added    ? (++added, "added")
                         : l.status == Status::Exists ? (++existing, "exists")
                                                      : (++failed, "failed");
    rows.push_back({std::to_string(l.line), status, l.item_id ? std::to_string(l.item_id) : "",
                    l.link, l.error});
  }
  print_table(out, {"line", "status", "item", "link", "error"}, rows);
  out << added << " added, " << existing << " already there, " << failed << " failed\n";
  return failed == 0 ? kExitOk : kExitFailed;
}

}  // namespace stowage::cli
