// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/json/value.hpp>
#include <span>
#include <string_view>

#include "server/api.hpp"
#include "stowage/service/service.hpp"

namespace stowage::server {

/// `links.sync`: a bucket prefix imported as linked items (service/link_sync.hpp).
/// `{"datasetId", "prefix": "s3://bucket/photos/", "include": ["*.jpg"] | "*.jpg", "regex",
/// "recursive": false, "dryRun": false}` answers the report: `{"listed", "matched", "added",
/// "existing", "skipped", "failed", "removed", "entries": [{"status", "link", "name", "itemId",
/// "reason"}]}`. Blocking; errors become their status and JSON error body.
bool link_sync_handles(std::string_view method);
/// The methods link_sync_handles() answers.
std::span<const std::string_view> link_sync_methods();
ApiResponse handle_link_sync(service::Service& service, const ApiRequest& request,
                             const boost::json::value& params);

}  // namespace stowage::server
