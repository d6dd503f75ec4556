// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "stowage/config/config.hpp"
#include "stowage/links/remote_links.hpp"
#include "stowage/store/object_store.hpp"

/// The checks of `stowage config check`, shared with the web console's storage page: what works
/// and what does not, and why, in words. No check prints a secret (messages come from the
/// stores' error translators, which redact keys and signed queries). Every check blocks (disk,
/// one listing request per bucket).
namespace stowage::service {

/// One line of the table: a name ("bucket abc-public", "link cars minio://cars-2020"), whether
/// it passed, and what was found.
struct Check {
  std::string name;
  bool passed = false;
  std::string detail;
};

/// Lists one key of `bucket`: ok, or the store's own words for what is wrong (unreachable
/// endpoint, wrong key, missing bucket, clock skew...).
Check probe_bucket(std::string name, store::ObjectStore& store, const std::string& bucket);

/// Whether `dir` is a writable directory, or could be created: its nearest existing ancestor is
/// a writable directory. Changes nothing that it does not undo.
Check check_directory(std::string name, const std::filesystem::path& dir);

/// The instance's storage: for a remote provider, its two buckets probed through a store opened
/// from `config`; for local disk, the data path and the bucket folders (writable, or creatable).
std::vector<Check> check_storage(const config::Config& config);

/// Every bucket of every connection of `links`, probed as links will reach it.
std::vector<Check> check_connections(const links::RemoteLinks& links);

/// remote_links.yml as `config` names it, read again: present and valid (or absent, which is
/// fine), then check_connections() on what it holds.
std::vector<Check> check_remote_links(const config::Config& config);

}  // namespace stowage::service
