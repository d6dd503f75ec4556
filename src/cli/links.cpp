// SPDX-License-Identifier: Apache-2.0
#include <fstream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/instance.hpp"

namespace stowage::cli {

int run_links_import(const config::Config& config, const LinksImportOptions& options,
                     std::ostream& out, std::ostream& err) {
  std::ifstream in(options.file, std::ios::binary);
  if (!in) return fail(err, "cannot read " + options.file, kExitUsage);
  std::ostringstream text;
  text << in.rdbuf();

  auto instance = open_instance(config);
  if (!instance) return fail(err, instance.error().message, exit_code_for(instance.error()));
  // The command acts as the instance's administrator, like `serve` on its first start.
  auto admin = instance->catalog->find_user("admin");
  if (!admin) return fail(err, "no user 'admin': run `stowage serve` once first", kExitUsage);
  auto memberships = instance->catalog->memberships(admin->id);
  if (!memberships) return fail(err, memberships.error().message, kExitFailed);
  catalog::Principal who;
  who.user = *admin;
  for (const auto& m : *memberships) who.team_ids.push_back(m.team.id);
  service::Service& service = *instance->service;

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
