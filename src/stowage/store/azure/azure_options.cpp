// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/azure/azure_options.hpp"

namespace stowage::store::azure {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

Result<std::string> normalize_endpoint(std::string_view endpoint, std::optional<std::uint16_t> port,
                                       const std::string& account) {
  std::string out(trim(endpoint));
  if (out.empty()) {
    if (account.empty()) {
      return make_error(ErrorCode::InvalidArgument, "Azure: no endpoint and no account name");
    }
    out = "https://" + account + ".blob.core.windows.net";
  }
  if (out.find("://") == std::string::npos) out = "https://" + out;
  if (out.find('?') != std::string::npos || out.find('#') != std::string::npos) {
    return make_error(ErrorCode::InvalidArgument,
                      "Azure endpoint '" + out.substr(0, out.find_first_of("?#")) +
                          "...' must not have a query (put a SAS token in the secret key)");
  }
  while (out.ends_with('/')) out.pop_back();
  if (port) {
    const std::size_t host_start = out.find("://") + 3;
    const std::size_t host_end = std::min(out.find('/', host_start), out.size());
    const std::string_view host = std::string_view(out).substr(host_start, host_end - host_start);
    const bool has_port = host.find(':') != std::string_view::npos && !host.ends_with(']');
    if (!has_port) out.insert(host_end, ":" + std::to_string(*port));
  }
  if (!out.starts_with("http://") && !out.starts_with("https://")) {
    return make_error(ErrorCode::InvalidArgument,
                      "Azure endpoint '" + out + "' must be an http:// or https:// URL");
  }
  return out;
}

}  // namespace

bool is_sas_token(std::string_view secret) {
  secret = trim(secret);
  if (secret.starts_with('?')) secret.remove_prefix(1);
  return secret.starts_with("sig=") || secret.find("&sig=") != std::string_view::npos;
}

Result<AzureOptions> AzureOptions::with_account_key(std::string endpoint, std::string account,
                                                    std::string_view key) {
  AzureOptions out;
  STOWAGE_ASSIGN_OR_RETURN(out.endpoint, normalize_endpoint(endpoint, std::nullopt, account));
  STOWAGE_ASSIGN_OR_RETURN(auto credentials,
                           auth::azure::SharedKeyCredentials::from_base64(account, trim(key)));
  out.account = std::move(account);
  out.shared_key = std::move(credentials);
  return out;
}

Result<AzureOptions> AzureOptions::with_sas(std::string endpoint, std::string account,
                                            std::string_view sas) {
  AzureOptions out;
  STOWAGE_ASSIGN_OR_RETURN(out.endpoint, normalize_endpoint(endpoint, std::nullopt, account));
  sas = trim(sas);
  if (sas.starts_with('?')) sas.remove_prefix(1);
  if (!is_sas_token(sas)) {
    return make_error(ErrorCode::InvalidArgument,
                      "the SAS token for Azure account '" + account + "' has no sig= parameter");
  }
  out.account = std::move(account);
  out.sas = Redacted(std::string(sas));
  return out;
}

Result<AzureOptions> AzureOptions::from_settings(std::string_view endpoint,
                                                 std::optional<std::uint16_t> port,
                                                 std::string account, std::string_view secret) {
  STOWAGE_ASSIGN_OR_RETURN(std::string normalized, normalize_endpoint(endpoint, port, account));
  if (is_sas_token(secret)) return with_sas(std::move(normalized), std::move(account), secret);
  return with_account_key(std::move(normalized), std::move(account), secret);
}

Result<AzureOptions> AzureOptions::from_config(const config::Config& config) {
  auto options = from_settings(config.storage_endpoint, config.storage_port,
                               config.storage_access_key, config.storage_secret_key.reveal());
  if (!options) {
    Error e = std::move(options).error();
    e.message = "STORAGE_SECRET_KEY/STORAGE_ENDPOINT for STORAGE_PROVIDER=azure: " + e.message;
    return e;
  }
  return options;
}

}  // namespace stowage::store::azure
