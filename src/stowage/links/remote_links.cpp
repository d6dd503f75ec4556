// SPDX-License-Identifier: Apache-2.0
#include "stowage/links/remote_links.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace stowage::links {
namespace {

/// The largest secret file read (`file:PATH`): keys, SAS tokens and service-account JSON are a
/// few KiB at most.
constexpr std::size_t kMaxSecretFileBytes = 64 << 10;

const std::set<std::string, std::less<>> kProviders{"minio", "azure", "google", "fs"};
const std::set<std::string, std::less<>> kKeys{
    "provider",         "endpoint", "access_key", "secret_key", "iam_role",        "region",
    "credentials_path", "buckets",  "path",       "storage_id", "force_path_style", "teams"};

class Reader {
 public:
  Reader(const std::filesystem::path& file, const std::map<std::string, std::string>& env)
      : file_(file.empty() ? std::string("remote_links.yml") : file.string()), env_(env) {}

  Error error(const std::string& connection, const std::string& what) const {
    std::string where = file_;
    if (!connection.empty()) where += ": connection '" + connection + "'";
    return make_error(ErrorCode::InvalidArgument, where + ": " + what);
  }

  /// A scalar field as text; `secret` resolves env:/file: indirections and never echoes values.
  Result<std::string> scalar(const YAML::Node& node, const std::string& connection,
                             const std::string& key, bool secret = false) const {
    const YAML::Node value = node[key];
    if (!value) return std::string();
    if (!value.IsScalar()) return error(connection, "'" + key + "' must be a single value");
    std::string text = value.as<std::string>();
    if (!secret) return text;
    if (text.starts_with("env:")) {
      const auto it = env_.find(text.substr(4));
      if (it == env_.end()) {
        return error(connection, "'" + key + "' names environment variable " + text.substr(4) +
                                     ", which is not set");
      }
      return it->second;
    }
    if (text.starts_with("file:")) {
      // A secret file holds one key: a regular file (docker and Kubernetes secrets are, through
      // their symlinks), read boundedly, so that `file:/dev/zero` or a FIFO cannot hang or
      // exhaust the server.
      const std::string file = text.substr(5);
      std::error_code ec;
      if (!std::filesystem::is_regular_file(file, ec)) {
        return error(connection, "'" + key + "' names " + file + ", which is not a regular file");
      }
      std::ifstream in(file, std::ios::binary);
      if (!in)
        return error(connection, "'" + key + "' names file " + file + ", which cannot be read");
      std::string s(kMaxSecretFileBytes + 1, '\0');
      in.read(s.data(), static_cast<std::streamsize>(s.size()));
      s.resize(static_cast<std::size_t>(in.gcount()));
      if (s.size() > kMaxSecretFileBytes) {
        return error(connection, "'" + key + "' names file " + file + ", which is larger than " +
                                     std::to_string(kMaxSecretFileBytes >> 10) +
                                     " KiB: a secret file holds one key");
      }
      while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
      return s;
    }
    return text;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  const std::map<std::string, std::string>& env_;
};

}  // namespace

bool Connection::serves(std::string_view provider_name, std::string_view bucket) const {
  return provider == provider_name &&
         std::find(buckets.begin(), buckets.end(), bucket) != buckets.end();
}

const Connection* RemoteLinks::find(std::string_view provider, std::string_view bucket) const {
  for (const auto& c : connections) {
    if (c.serves(provider, bucket)) return &c;
  }
  return nullptr;
}

Result<RemoteLinks> RemoteLinks::load(const std::filesystem::path& file,
                                      const std::map<std::string, std::string>& environment) {
  std::error_code ec;
  if (file.empty() || !std::filesystem::exists(file, ec)) {
    return RemoteLinks{};
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::InvalidArgument, file.string() + ": cannot be read");
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), file, environment);
}

namespace {

/// The connections of a parsed remote_links.yml; may throw YAML::Exception on odd nodes.
Result<RemoteLinks> connections_of(const YAML::Node& root, const Reader& r,
                                   const std::filesystem::path& file) {
  RemoteLinks out;
  out.file = file;
  if (root.IsNull()) return out;
  if (!root.IsMap()) return r.error("", "the top level must map connection names to settings");
  std::set<std::string> fs_ids;
  for (const auto& entry : root) {
    Connection c;
    try {
      c.name = entry.first.as<std::string>();
    } catch (const YAML::Exception&) {
      return r.error("", "a connection name is not text");
    }
    const YAML::Node& node = entry.second;
    if (!node.IsMap()) return r.error(c.name, "settings must be a map (provider, endpoint, ...)");
    for (const auto& field : node) {
      const std::string key = field.first.as<std::string>();
      if (!kKeys.contains(key)) return r.error(c.name, "unknown setting '" + key + "'");
    }
    STOWAGE_ASSIGN_OR_RETURN(c.provider, r.scalar(node, c.name, "provider"));
    if (!kProviders.contains(c.provider)) {
      return r.error(c.name,
                     "provider '" + c.provider + "' is not one of minio, azure, google, fs");
    }
    STOWAGE_ASSIGN_OR_RETURN(c.endpoint, r.scalar(node, c.name, "endpoint"));
    STOWAGE_ASSIGN_OR_RETURN(c.access_key, r.scalar(node, c.name, "access_key", true));
    STOWAGE_ASSIGN_OR_RETURN(std::string secret, r.scalar(node, c.name, "secret_key", true));
    c.secret_key = Redacted<>(std::move(secret));
    STOWAGE_ASSIGN_OR_RETURN(c.iam_role, r.scalar(node, c.name, "iam_role"));
    STOWAGE_ASSIGN_OR_RETURN(c.region, r.scalar(node, c.name, "region"));
    STOWAGE_ASSIGN_OR_RETURN(std::string credentials, r.scalar(node, c.name, "credentials_path"));
    c.credentials_path = credentials;
    STOWAGE_ASSIGN_OR_RETURN(std::string folder, r.scalar(node, c.name, "path"));
    c.path = folder;
    STOWAGE_ASSIGN_OR_RETURN(std::string path_style, r.scalar(node, c.name, "force_path_style"));
    c.force_path_style = path_style == "true" || path_style == "yes" || path_style == "1";

    if (const YAML::Node buckets = node["buckets"]) {
      if (!buckets.IsSequence()) return r.error(c.name, "'buckets' must be a list");
      for (const auto& b : buckets) {
        if (!b.IsScalar() || b.as<std::string>().empty()) {
          return r.error(c.name, "every entry of 'buckets' must be a bucket name");
        }
        c.buckets.push_back(b.as<std::string>());
      }
    }

    if (const YAML::Node teams = node["teams"]) {
      if (!teams.IsSequence()) return r.error(c.name, "'teams' must be a list of team names or ids");
      for (const auto& t : teams) {
        if (!t.IsScalar() || t.as<std::string>().empty()) {
          return r.error(c.name, "every entry of 'teams' must be a team name or id");
        }
        c.teams.push_back(t.as<std::string>());
      }
    }

    if (c.provider == "fs") {
      STOWAGE_ASSIGN_OR_RETURN(std::string id, r.scalar(node, c.name, "storage_id"));
      if (id.empty()) id = c.name;
      if (id.find('/') != std::string::npos || id == "." || id == "..") {
        return r.error(c.name, "storage_id '" + id + "' must not contain '/'");
      }
      if (!fs_ids.insert(id).second)
        return r.error(c.name, "storage_id '" + id + "' is used twice");
      if (c.path.empty() || !c.path.is_absolute()) {
        return r.error(c.name, "'path' must be an absolute folder on this server");
      }
      std::error_code ec;
      if (!std::filesystem::is_directory(c.path, ec)) {
        return r.error(c.name, "'path' " + c.path.string() + " is not a folder");
      }
      c.buckets = {id};
    } else {
      if (c.buckets.empty()) return r.error(c.name, "'buckets' must list at least one bucket");
      if (c.provider == "minio") {
        if (c.endpoint.empty()) return r.error(c.name, "'endpoint' is required for minio");
        if (c.iam_role.empty() && (c.access_key.empty() || c.secret_key.empty())) {
          return r.error(c.name, "give 'access_key' and 'secret_key', or 'iam_role'");
        }
      } else if (c.provider == "azure") {
        if (c.endpoint.empty() || c.access_key.empty() || c.secret_key.empty()) {
          return r.error(c.name,
                         "azure needs 'endpoint', 'access_key' (the account name) and "
                         "'secret_key' (the account key or a SAS token)");
        }
      } else if (c.provider == "google") {
        if (c.credentials_path.empty()) {
          return r.error(c.name, "'credentials_path' (a service-account JSON file) is required");
        }
      }
    }
    out.connections.push_back(std::move(c));
  }
  return out;
}

}  // namespace

Result<RemoteLinks> RemoteLinks::parse(std::string_view yaml, const std::filesystem::path& file,
                                       const std::map<std::string, std::string>& environment) {
  const Reader r(file, environment);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    // The mark says where; the message never quotes the document (it may hold a secret).
    return r.error("", "not valid YAML (line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ")");
  }
  // yaml-cpp throws on nodes of an unexpected shape (a map as a key, say) deep in the
  // walk: every one of them is a malformed file, never a crash (found by fuzz/config_fuzz).
  try {
    return connections_of(root, r, file);
  } catch (const YAML::Exception& e) {
    return r.error("", "malformed (line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) +
                           "): settings must be plain names and values");
  }
}

}  // namespace stowage::links
