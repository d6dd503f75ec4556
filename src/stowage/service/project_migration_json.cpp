// SPDX-License-Identifier: Apache-2.0
#include "stowage/service/project_migration_json.hpp"

#include <boost/json/array.hpp>

namespace stowage::service {
namespace {

namespace json = boost::json;

json::object problem_json(const ItemProblem& p) {
  return {{"item", p.item_id},       {"dataset", p.dataset_id},
          {"name", p.name},          {"source", p.source},
          {"target", p.target},      {"code", std::string(to_string(p.error.code))},
          {"error", p.error.message}};
}

}  // namespace

json::object project_migration_report_json(const ProjectMigrationReport& r, bool dry_run) {
  json::array failed, changed, plan;
  for (const auto& p : r.failed) failed.push_back(problem_json(p));
  for (const auto& p : r.changed) changed.push_back(problem_json(p));
  for (const auto& p : r.plan) {
    plan.push_back({{"item", p.item_id},
                    {"source", p.source},
                    {"target", p.target},
                    {"size", p.size_bytes},
                    {"action", p.already_there ? "switch only" : "copy and switch"}});
  }
  json::object out{
      {"project", r.project_id},
      {"type", r.project_type},
      {"target", r.target},
      {"dryRun", dry_run},
      {"complete", r.complete()},
      {"selected", r.selected},
      {"selectedBytes", r.selected_bytes},
      {"copied", r.copies.copied},
      {"alreadyThere", r.copies.skipped},
      {"wouldCopy", r.copies.would_copy},
      {"bytesCopied", r.copies.bytes_copied},
      {"bytesWritten", r.copies.bytes_written},
      {"switched", r.switched},
      {"copiedByHelpers", r.copied_by_helpers},
      {"switchWithheld", r.switch_withheld},
      {"failed", failed},
      {"changed", changed},
      {"elapsedMs", r.elapsed.count()},
  };
  if (dry_run) out["plan"] = plan;
  if (r.aborted) out["aborted"] = r.aborted->message;
  return out;
}

json::object migration_progress_json(const migration::Progress& p) {
  json::object out{{"itemsDone", p.objects_done},
                   {"bytesDone", p.bytes_done},
                   {"copied", p.copied},
                   {"alreadyThere", p.skipped},
                   {"failed", p.failed},
                   {"elapsedMs", p.elapsed.count()},
                   {"bytesPerSecond", p.bytes_per_second}};
  if (p.totals) {
    out["itemsTotal"] = p.totals->objects;
    out["bytesTotal"] = p.totals->bytes;
  } else {
    out["itemsTotal"] = nullptr;
    out["bytesTotal"] = nullptr;
  }
  if (p.eta) {
    out["etaSeconds"] = p.eta->count();
  } else {
    out["etaSeconds"] = nullptr;
  }
  return out;
}

}  // namespace stowage::service
