// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/gcs/gcs_options.hpp"

namespace stowage::store::gcs {

Result<std::string> GcsOptions::normalize_endpoint(std::string_view endpoint,
                                                   std::optional<std::uint16_t> port) {
  auto bad = [&](std::string_view why) -> Error {
    return make_error(ErrorCode::InvalidArgument,
                      "STORAGE_ENDPOINT=" + std::string(endpoint) + ": " + std::string(why));
  };
  std::string scheme = "https";
  std::string_view rest = endpoint.empty() ? kDefaultEndpoint : endpoint;
  if (const auto sep = rest.find("://"); sep != std::string_view::npos) {
    scheme = std::string(rest.substr(0, sep));
    rest.remove_prefix(sep + 3);
    if (scheme != "http" && scheme != "https") return bad("the scheme must be https (or http)");
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return bad("no host");
  if (rest.find_first_of("/?#@") != std::string_view::npos) {
    return bad("give a host (and port) only, e.g. storage.googleapis.com");
  }
  std::string out = scheme + "://" + std::string(rest);
  const bool has_port = rest.back() != ']' && rest.find(':') != std::string_view::npos;
  if (port && !has_port) out += ":" + std::to_string(*port);
  return out;
}

Status GcsOptions::validate() const {
  if (chunk_bytes == 0 || chunk_bytes % kChunkQuantum != 0) {
    return make_error(ErrorCode::InvalidArgument,
                      "gcs chunk size must be a positive multiple of 256 KiB");
  }
  return {};
}

Result<GcsOptions> GcsOptions::from_config(const config::Config& config) {
  GcsOptions options;
  STOWAGE_ASSIGN_OR_RETURN(options.endpoint,
                           normalize_endpoint(config.storage_endpoint, config.storage_port));
  if (config.storage_credentials_path.empty()) {
    return make_error(ErrorCode::InvalidArgument,
                      "STORAGE_CREDENTIALS_PATH is not set: STORAGE_PROVIDER=google needs the "
                      "service account JSON key file");
  }
  options.credentials_path = config.storage_credentials_path;
  return options;
}

}  // namespace stowage::store::gcs
