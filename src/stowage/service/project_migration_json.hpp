// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/json/object.hpp>

#include "stowage/migration/runner.hpp"
#include "stowage/service/project_migration.hpp"

/// A project migration's report and progress as JSON: what `stowage migrate project --json`
/// prints and what the web console's migration page polls, so that both say the same thing.
namespace stowage::service {

/// The report: counts, bytes, the failed and changed items with their reasons, and with
/// `dry_run` the plan (each item's source, target, size and action).
boost::json::object project_migration_report_json(const ProjectMigrationReport& report,
                                                  bool dry_run);

/// A progress snapshot: items and bytes done (and their totals once counted), rate, ETA.
boost::json::object migration_progress_json(const migration::Progress& progress);

}  // namespace stowage::service
