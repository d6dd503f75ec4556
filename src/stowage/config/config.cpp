// SPDX-License-Identifier: Apache-2.0
#include "stowage/config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <system_error>

extern char** environ;  // POSIX: the process environment, read once by process_environment()

namespace stowage::config {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSizeReason =
    "not a size (use a number with k, m, g or t, e.g. 512m, 10g or 1.5g)";
constexpr std::string_view kDurationReason =
    "not a duration (use a number with s, m, h, d or w, e.g. 45s, 12h or 7d; a bare number is "
    "seconds)";
/// A bucket prefix becomes "<prefix>-public" and "<prefix>-private"; the longest bucket name S3,
/// Azure and GCS all accept is 63 characters, and "-private" takes 8 of them.
constexpr std::size_t kMinBucketPrefix = 3;
constexpr std::size_t kMaxBucketPrefix = 54;
constexpr std::string_view kBucketPrefixReason =
    "not a bucket prefix (use 3 to 54 lowercase letters, digits and single '-', starting and "
    "ending with a letter or digit)";
constexpr std::string_view kBucketPrefixFile = "bucket-prefix";
constexpr std::string_view kGeneratedPrefixStem = "stowage-";
constexpr std::size_t kGeneratedPrefixRandomChars = 8;
/// Longest value echoed in an error message; longer values are cut with "...".
constexpr std::size_t kMaxShownValue = 120;

/// Every variable Stowage reads from a .env file or the environment.
constexpr auto kKnownVariables = std::to_array<std::string_view>({
    "DATA_PATH",
    "STORAGE_PROVIDER",
    "STORAGE_ENDPOINT",
    "STORAGE_PORT",
    "STORAGE_ACCESS_KEY",
    "STORAGE_SECRET_KEY",
    "STORAGE_IAM_ROLE",
    "STORAGE_CREDENTIALS_PATH",
    "STORAGE_REGION",
    "STORAGE_FORCE_PATH_STYLE",
    "STORAGE_BUCKET_PREFIX",
    "CACHE_PREVIEWS_SIZE",
    "CACHE_PREVIEWS_EXPIRES",
    "CACHE_STORAGE_SIZE",
    "CACHE_STORAGE_EXPIRES",
    "CACHE_STORAGE_REVALIDATE",
    "CACHE_IMAGE_CONVERTER_SIZE",     // the docs' proxy cache: accepted, validated, unused
    "CACHE_IMAGE_CONVERTER_EXPIRES",  // likewise
    "REMOTE_LINKS_PATH",
    "STOWAGE_LISTEN",
    "DATABASE_URL",
    "STOWAGE_MAX_UPLOAD_SIZE",
    "STOWAGE_MAX_JSON_SIZE",
    "STOWAGE_REQUEST_TIMEOUT",
    "STOWAGE_IO_THREADS",
    "STOWAGE_WORKER_THREADS",
    "STOWAGE_METRICS_ACCESS",
    "STOWAGE_LINKS_ALLOW_PRIVATE_NETWORKS",
    "JUPYTER_DOWNLOAD_FILES_BEFORE_START",  // the docs' examples carry these; Stowage ignores them
    "STORAGE_JUPYTER_SYNC",
    // Read from the process environment only; harmless (and ignored) in a file.
    "STOWAGE_ENV_FILE",
});

/// Names with these prefixes are ours: an unknown one in a .env file is a typo, not someone
/// else's variable, and must not pass silently.
constexpr std::array<std::string_view, 3> kOwnPrefixes = {"STORAGE_", "CACHE_", "STOWAGE_"};

bool is_known(std::string_view name) {
  return std::find(kKnownVariables.begin(), kKnownVariables.end(), name) != kKnownVariables.end();
}

/// Variables whose values are never printed: keys, tokens, secrets, passwords.
bool is_secret(std::string_view name) {
  return name.ends_with("_KEY") || name.find("TOKEN") != std::string_view::npos ||
         name.find("SECRET") != std::string_view::npos ||
         name.find("PASSWORD") != std::string_view::npos;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string to_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view trim(std::string_view s) {
  s = trim_left(s);
  while (!s.empty() && (is_space(s.back()) || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

/// A value made safe for a one-line message: control characters, quotes and backslashes are
/// escaped and long values are cut.
std::string printable(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, kMaxShownValue)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (value.size() > kMaxShownValue) out += "...";
  return out;
}

/// `"value"`, printable; built with appends (GCC 12 warns falsely on `"\"" + std::string`).
std::string in_quotes(std::string_view value) {
  std::string out = "\"";
  out += printable(value);
  out += '"';
  return out;
}

bool is_variable_name(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

/// Edit distance, for "did you mean" hints on unknown variables.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string_view closest_known(std::string_view name) {
  std::string_view best;
  std::size_t best_distance = 4;  // further than 3 edits is no longer a typo
  for (std::string_view known : kKnownVariables) {
    const std::size_t d = edit_distance(name, known);
    if (d < best_distance) {
      best_distance = d;
      best = known;
    }
  }
  return best;
}

/// Parses an unsigned decimal integer that must fill the whole text.
template <class T>
std::optional<T> parse_unsigned(std::string_view text) {
  T value{};
  if (text.empty() || text[0] == '+' || text[0] == '-') return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

/// The reason a text is not a size, or the size.
Result<std::uint64_t> size_or_reason(std::string_view text) {
  const auto fail = [] { return make_error(ErrorCode::InvalidArgument, std::string(kSizeReason)); };
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  const std::string_view whole_digits = text.substr(0, i);
  std::string_view fraction_digits;
  if (i < text.size() && text[i] == '.') {
    const std::size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    fraction_digits = text.substr(start, i - start);
    if (fraction_digits.empty()) return fail();
  }
  if (whole_digits.empty()) return fail();
  std::string_view unit = text.substr(i);
  if (!unit.empty() && (unit.back() == 'b' || unit.back() == 'B')) unit.remove_suffix(1);
  unsigned shift = 0;
  if (unit.size() > 1) return fail();
  if (unit.size() == 1) {
    switch (lower(unit[0])) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        return fail();
    }
  }
  // A fraction must come out as whole bytes: "1.5g" is fine, "1.5" or "0.3k" is not.
  if (!fraction_digits.empty() && (shift == 0 || fraction_digits.size() > 12)) return fail();
  const auto whole = parse_unsigned<std::uint64_t>(whole_digits);
  if (!whole) return make_error(ErrorCode::InvalidArgument, "too large");
  using Wide = unsigned __int128;
  Wide bytes = static_cast<Wide>(*whole) << shift;
  if (!fraction_digits.empty()) {
    Wide numerator = *parse_unsigned<std::uint64_t>(fraction_digits);
    Wide denominator = 1;
    for (std::size_t k = 0; k < fraction_digits.size(); ++k) denominator *= 10;
    numerator <<= shift;
    if (numerator % denominator != 0) {
      return make_error(ErrorCode::InvalidArgument,
                        "not a whole number of bytes (use a smaller unit, e.g. 1536m)");
    }
    bytes += numerator / denominator;
  }
  if (bytes > std::numeric_limits<std::uint64_t>::max()) {
    return make_error(ErrorCode::InvalidArgument, "too large");
  }
  return static_cast<std::uint64_t>(bytes);
}

Result<std::chrono::seconds> duration_or_reason(std::string_view text) {
  const auto fail = [] {
    return make_error(ErrorCode::InvalidArgument, std::string(kDurationReason));
  };
  if (text.empty()) return fail();
  if (const auto bare = parse_unsigned<std::uint64_t>(text)) {
    if (*bare > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return make_error(ErrorCode::InvalidArgument, "too large");
    }
    return std::chrono::seconds(static_cast<std::int64_t>(*bare));
  }
  // One or more <number><unit> groups, largest first or not: "1h30m", "7d", "2w".
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t start = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == start || i == text.size()) return fail();
    const auto number = parse_unsigned<std::uint64_t>(text.substr(start, i - start));
    std::uint64_t unit = 0;
    switch (text[i]) {  // lowercase only: nginx reads 'M' as months, so refuse to guess
      case 's':
        unit = 1;
        break;
      case 'm':
        unit = 60;
        break;
      case 'h':
        unit = 3600;
        break;
      case 'd':
        unit = 86400;
        break;
      case 'w':
        unit = 7 * 86400;
        break;
      default:
        return fail();
    }
    ++i;
    std::uint64_t part = 0;
    if (!number || __builtin_mul_overflow(*number, unit, &part) ||
        __builtin_add_overflow(total, part, &total) ||
        total > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return make_error(ErrorCode::InvalidArgument, "too large");
    }
  }
  return std::chrono::seconds(static_cast<std::int64_t>(total));
}

std::optional<bool> parse_bool(std::string_view text) {
  const std::string t = to_lower(text);
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  return std::nullopt;
}

bool is_valid_bucket_prefix(std::string_view prefix) {
  if (prefix.size() < kMinBucketPrefix || prefix.size() > kMaxBucketPrefix) return false;
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(prefix.front()) || !alnum(prefix.back())) return false;
  // Azure container names allow no "--"; S3 and GCS are happy either way.
  if (prefix.find("--") != std::string_view::npos) return false;
  return std::all_of(prefix.begin(), prefix.end(), [&](char c) { return alnum(c) || c == '-'; });
}

fs::path absolute_from(const fs::path& base, const fs::path& path) {
  return (path.is_absolute() ? path : base / path).lexically_normal();
}

/// One variable's value and where it came from.
struct Value {
  std::string text;
  Source source = Source::Default;
};

/// Reads and validates the merged variables into a Config. Every error names the variable, the
/// place it came from and (unless secret) the value.
class Loader {
 public:
  Loader(std::map<std::string, Value> values, fs::path cwd, Config& config)
      : values_(std::move(values)), cwd_(std::move(cwd)), config_(config) {}

  Status run() {
    STOWAGE_TRY(check_unknown());
    for (const auto& [name, value] : values_) {
      if (is_known(name)) config_.sources[name] = value.source;
    }
    STOWAGE_TRY(read_paths());
    STOWAGE_TRY(read_storage());
    STOWAGE_TRY(read_caches());
    STOWAGE_TRY(read_server());
    STOWAGE_TRY(read_database());
    return check_required();
  }

 private:
  /// A set, non-empty value, or nullptr. An empty value means "use the default".
  const Value* find(std::string_view name) const {
    const auto it = values_.find(std::string(name));
    if (it == values_.end() || it->second.text.empty()) return nullptr;
    return &it->second;
  }

  std::string location(const Value& value) const {
    if (value.source == Source::EnvFile) return config_.env_file.string();
    return "environment";
  }

  Error bad(std::string_view name, const Value& value, std::string_view reason) const {
    std::string message(name);
    if (name == "DATABASE_URL") {
      message += '=' + in_quotes(redact_database_url(value.text));
    } else if (!is_secret(name)) {
      message += '=' + in_quotes(value.text);
    }
    message += " in " + location(value) + ": ";
    message += reason;
    if (is_secret(name)) message += " (value not shown)";
    return make_error(ErrorCode::InvalidArgument, std::move(message));
  }

  Status check_unknown() const {
    std::vector<std::string> unknown;
    for (const auto& [key, value] : values_) {
      if (value.source != Source::EnvFile || is_known(key)) continue;
      const std::string& name = key;  // clang 14 cannot capture a structured binding
      if (std::any_of(kOwnPrefixes.begin(), kOwnPrefixes.end(),
                      [&](std::string_view p) { return name.starts_with(p); })) {
        unknown.push_back(name);
      }
    }
    if (unknown.empty()) return {};
    std::string message = unknown.size() == 1 ? "unknown variable " : "unknown variables ";
    for (std::size_t i = 0; i < unknown.size(); ++i) {
      if (i > 0) message += ", ";
      message += unknown[i];
      if (const auto hint = closest_known(unknown[i]); !hint.empty()) {
        message += " (did you mean ";
        message += hint;
        message += "?)";
      }
    }
    message += " in " + config_.env_file.string();
    return make_error(ErrorCode::InvalidArgument, std::move(message));
  }

  Status read_size(std::string_view name, std::uint64_t& out, bool allow_zero = true) const {
    const Value* v = find(name);
    if (!v) return {};
    auto size = size_or_reason(v->text);
    if (!size) return bad(name, *v, size.error().message);
    if (!allow_zero && *size == 0) return bad(name, *v, "must be more than 0");
    out = *size;
    return {};
  }

  Status read_duration(std::string_view name, std::chrono::seconds& out,
                       bool allow_zero = true) const {
    const Value* v = find(name);
    if (!v) return {};
    auto duration = duration_or_reason(v->text);
    if (!duration) return bad(name, *v, duration.error().message);
    if (!allow_zero && duration->count() == 0) return bad(name, *v, "must be more than 0");
    out = *duration;
    return {};
  }

  Status read_count(std::string_view name, unsigned& out) const {
    constexpr unsigned kMaxThreads = 4096;
    const Value* v = find(name);
    if (!v) return {};
    const auto n = parse_unsigned<unsigned>(v->text);
    if (!n || *n > kMaxThreads) {
      return bad(name, *v, "not a thread count (use 0 for automatic, or 1 to 4096)");
    }
    out = *n;
    return {};
  }

  Status read_paths() {
    const Value* data = find("DATA_PATH");
    config_.data_path = absolute_from(cwd_, data ? fs::path(data->text) : fs::path("data"));
    if (const Value* links = find("REMOTE_LINKS_PATH")) {
      config_.remote_links_path = absolute_from(cwd_, links->text);
    } else {
      const fs::path beside = config_.env_file.empty() ? cwd_ : config_.env_file.parent_path();
      config_.remote_links_path = (beside / "remote_links.yml").lexically_normal();
    }
    return {};
  }

  Status read_storage() {
    if (const Value* v = find("STORAGE_PROVIDER")) {
      const std::string p = to_lower(trim(v->text));
      if (p == "http") {
        config_.provider = Provider::Http;
      } else if (p == "minio") {
        config_.provider = Provider::Minio;
      } else if (p == "azure") {
        config_.provider = Provider::Azure;
      } else if (p == "google") {
        config_.provider = Provider::Google;
      } else {
        return bad("STORAGE_PROVIDER", *v,
                   "not a provider (use http for local disk, minio for S3-compatible storage, "
                   "azure or google)");
      }
    }
    if (const Value* v = find("STORAGE_ENDPOINT")) {
      if (std::any_of(v->text.begin(), v->text.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' '; })) {
        return bad("STORAGE_ENDPOINT", *v, "must not contain spaces");
      }
      config_.storage_endpoint = v->text;
    }
    if (const Value* v = find("STORAGE_PORT")) {
      const auto port = parse_unsigned<unsigned>(v->text);
      if (!port || *port < 1 || *port > 65535) {
        return bad("STORAGE_PORT", *v, "not a port (use 1 to 65535)");
      }
      config_.storage_port = static_cast<std::uint16_t>(*port);
    }
    if (const Value* v = find("STORAGE_ACCESS_KEY")) config_.storage_access_key = v->text;
    if (const Value* v = find("STORAGE_SECRET_KEY")) config_.storage_secret_key = Redacted(v->text);
    if (const Value* v = find("STORAGE_IAM_ROLE")) config_.storage_iam_role = v->text;
    if (const Value* v = find("STORAGE_CREDENTIALS_PATH")) {
      config_.storage_credentials_path = absolute_from(cwd_, v->text);
    }
    if (const Value* v = find("STORAGE_REGION")) config_.storage_region = v->text;
    if (const Value* v = find("STORAGE_FORCE_PATH_STYLE")) {
      const auto flag = parse_bool(v->text);
      if (!flag) {
        return bad("STORAGE_FORCE_PATH_STYLE", *v,
                   "not a boolean (use true, false, yes, no, 1 or 0)");
      }
      config_.storage_force_path_style = *flag;
    }
    if (const Value* v = find("STOWAGE_LINKS_ALLOW_PRIVATE_NETWORKS")) {
      const auto flag = parse_bool(v->text);
      if (!flag) {
        return bad("STOWAGE_LINKS_ALLOW_PRIVATE_NETWORKS", *v,
                   "not a boolean (use true, false, yes, no, 1 or 0)");
      }
      config_.links_allow_private_networks = *flag;
    }
    if (const Value* v = find("STORAGE_BUCKET_PREFIX")) {
      if (!is_valid_bucket_prefix(v->text))
        return bad("STORAGE_BUCKET_PREFIX", *v, kBucketPrefixReason);
      config_.bucket_prefix = v->text;
    }
    return {};
  }

  Status read_caches() {
    STOWAGE_TRY(read_size("CACHE_PREVIEWS_SIZE", config_.cache_previews_bytes));
    STOWAGE_TRY(read_duration("CACHE_PREVIEWS_EXPIRES", config_.cache_previews_expires));
    STOWAGE_TRY(read_size("CACHE_STORAGE_SIZE", config_.cache_storage_bytes));
    STOWAGE_TRY(read_duration("CACHE_STORAGE_EXPIRES", config_.cache_storage_expires));
    STOWAGE_TRY(read_duration("CACHE_STORAGE_REVALIDATE", config_.cache_storage_revalidate));
    std::uint64_t unused_bytes = 0;
    std::chrono::seconds unused_expires{};
    STOWAGE_TRY(read_size("CACHE_IMAGE_CONVERTER_SIZE", unused_bytes));
    return read_duration("CACHE_IMAGE_CONVERTER_EXPIRES", unused_expires);
  }

  Status read_server() {
    if (const Value* v = find("STOWAGE_LISTEN")) {
      constexpr std::string_view kReason =
          "not a listen address (use host:port, [ipv6]:port or :port, port 1 to 65535)";
      const std::string_view text = v->text;
      const std::size_t colon = text.rfind(':');
      if (colon == std::string_view::npos) return bad("STOWAGE_LISTEN", *v, kReason);
      std::string_view host = text.substr(0, colon);
      const auto port = parse_unsigned<unsigned>(text.substr(colon + 1));
      if (!port || *port < 1 || *port > 65535) return bad("STOWAGE_LISTEN", *v, kReason);
      if (host.starts_with('[')) {
        if (!host.ends_with(']') || host.size() < 3) return bad("STOWAGE_LISTEN", *v, kReason);
        host = host.substr(1, host.size() - 2);
      } else if (host.find(':') != std::string_view::npos) {
        return bad("STOWAGE_LISTEN", *v, "an IPv6 address needs brackets (e.g. [::1]:8080)");
      }
      if (std::any_of(host.begin(), host.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == '/'; })) {
        return bad("STOWAGE_LISTEN", *v, kReason);
      }
      // ":port" listens on every IPv4 interface, as in Go and nginx.
      config_.listen_host = host.empty() ? "0.0.0.0" : std::string(host);
      config_.listen_port = static_cast<std::uint16_t>(*port);
    }
    STOWAGE_TRY(read_size("STOWAGE_MAX_UPLOAD_SIZE", config_.max_upload_bytes, false));
    STOWAGE_TRY(read_size("STOWAGE_MAX_JSON_SIZE", config_.max_json_bytes, false));
    STOWAGE_TRY(read_duration("STOWAGE_REQUEST_TIMEOUT", config_.request_timeout, false));
    STOWAGE_TRY(read_count("STOWAGE_IO_THREADS", config_.io_threads));
    if (const Value* v = find("STOWAGE_METRICS_ACCESS")) {
      if (v->text == "loopback") {
        config_.metrics_access = MetricsAccess::Loopback;
      } else if (v->text == "token") {
        config_.metrics_access = MetricsAccess::Token;
      } else if (v->text == "open") {
        config_.metrics_access = MetricsAccess::Open;
      } else {
        return bad("STOWAGE_METRICS_ACCESS", *v, "use loopback, token or open");
      }
    }
    return read_count("STOWAGE_WORKER_THREADS", config_.worker_threads);
  }

  Status read_database() {
    const Value* v = find("DATABASE_URL");
    if (!v) return {};
    const std::string& url = v->text;
    if (url.starts_with("sqlite:")) {
      std::string_view path = std::string_view(url).substr(7);
      if (path.starts_with("///")) {
        path.remove_prefix(2);
      } else if (path.starts_with("//")) {
        return bad("DATABASE_URL", *v,
                   "a sqlite URL is sqlite:PATH or sqlite:///absolute/path (no host)");
      }
      if (path.empty()) return bad("DATABASE_URL", *v, "the sqlite path is empty");
      // Normalized to an absolute path so that sqlite_path() does not depend on the cwd later.
      config_.database_url = Redacted("sqlite:" + absolute_from(cwd_, fs::path(path)).string());
      return {};
    }
    if (url.starts_with("postgresql://") || url.starts_with("postgres://")) {
      if (url.ends_with("://")) return bad("DATABASE_URL", *v, "the PostgreSQL URL has no host");
      config_.database_url = Redacted(url);
      return {};
    }
    // A libpq keyword string ("host=db dbname=stowage user=... password=..."); libpq checks
    // the keywords when connecting.
    if (url.find("://") == std::string::npos && url.find('=') != std::string::npos) {
      config_.database_url = Redacted(url);
      return {};
    }
    return bad("DATABASE_URL", *v,
               "not a database URL (use sqlite:PATH, sqlite:///absolute/path, "
               "postgresql://user:password@host/db or a libpq keyword string 'host=... "
               "dbname=...')");
  }

  /// The settings each remote provider cannot do without.
  Status check_required() const {
    const std::string provider(to_string(config_.provider));
    const auto missing = [&](std::string_view name, std::string_view what) {
      std::string where = config_.env_file.empty()
                              ? std::string("the environment (no .env file found)")
                              : config_.env_file.string();
      return make_error(ErrorCode::InvalidArgument, std::string(name) + " is not set in " + where +
                                                        ": STORAGE_PROVIDER=" + provider +
                                                        " needs " + std::string(what));
    };
    switch (config_.provider) {
      case Provider::Http:
        return {};
      case Provider::Minio: {
        if (config_.storage_endpoint.empty()) {
          return missing("STORAGE_ENDPOINT", "it (e.g. STORAGE_ENDPOINT=s3.amazonaws.com)");
        }
        if (!config_.storage_iam_role.empty()) return {};
        constexpr std::string_view kKeys =
            "STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY, or STORAGE_IAM_ROLE";
        if (config_.storage_access_key.empty()) return missing("STORAGE_ACCESS_KEY", kKeys);
        if (config_.storage_secret_key.empty()) return missing("STORAGE_SECRET_KEY", kKeys);
        return {};
      }
      case Provider::Azure: {
        if (config_.storage_access_key.empty()) {
          return missing("STORAGE_ACCESS_KEY", "it (the storage account name)");
        }
        if (config_.storage_secret_key.empty()) {
          return missing("STORAGE_SECRET_KEY", "it (the account key or a SAS token)");
        }
        if (config_.storage_endpoint.empty()) {
          return missing("STORAGE_ENDPOINT",
                         "it (e.g. STORAGE_ENDPOINT=https://<account>.blob.core.windows.net)");
        }
        return {};
      }
      case Provider::Google: {
        if (config_.storage_credentials_path.empty()) {
          return missing("STORAGE_CREDENTIALS_PATH", "it (the service account JSON key file)");
        }
        return {};
      }
    }
    return {};
  }

  std::map<std::string, Value> values_;
  fs::path cwd_;
  Config& config_;
};

/// The .env file to read and how it was chosen; an empty path when there is none.
Result<std::pair<fs::path, std::string>> find_env_file(const LoadOptions& options) {
  const auto must_exist = [](const fs::path& path,
                             std::string label) -> Result<std::pair<fs::path, std::string>> {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) {
      return make_error(ErrorCode::InvalidArgument, label + ": no such file");
    }
    if (!fs::is_regular_file(status)) {
      return make_error(ErrorCode::InvalidArgument, label + ": not a regular file");
    }
    return std::pair<fs::path, std::string>{path, ""};
  };
  if (options.env_file) {
    const fs::path path = absolute_from(options.cwd, *options.env_file);
    STOWAGE_TRY(must_exist(path, "--env " + path.string()));
    return std::pair<fs::path, std::string>{path, "--env"};
  }
  if (const auto it = options.environment.find("STOWAGE_ENV_FILE");
      it != options.environment.end() && !it->second.empty()) {
    const fs::path path = absolute_from(options.cwd, it->second);
    STOWAGE_TRY(
        must_exist(path, "STOWAGE_ENV_FILE=" + in_quotes(path.string()) + " in environment"));
    return std::pair<fs::path, std::string>{path, "STOWAGE_ENV_FILE"};
  }
  const fs::path local = (options.cwd / ".env").lexically_normal();
  std::error_code ec;
  if (fs::is_regular_file(local, ec)) return std::pair<fs::path, std::string>{local, "./.env"};
  return std::pair<fs::path, std::string>{fs::path(), "none"};
}

Result<std::string> read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(ErrorCode::IoError,
                      "cannot read " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return make_error(ErrorCode::IoError, "cannot read " + path.string());
  return text.str();
}

Error io_error(std::string what, const fs::path& path, int err) {
  return make_error(ErrorCode::IoError, what + " " + path.string() + ": " + std::strerror(err));
}

/// Writes `text` to a new file `path` (mode 0644) and fsyncs it; fails if the file exists.
Status write_new_file(const fs::path& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("create", path, errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return io_error("write", path, err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    return io_error("fsync", path, err);
  }
  if (::close(fd) != 0) return io_error("close", path, errno);
  return {};
}

std::string random_prefix() {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string prefix(kGeneratedPrefixStem);
  for (std::size_t i = 0; i < kGeneratedPrefixRandomChars; ++i) prefix += kAlphabet[pick(device)];
  return prefix;
}

}  // namespace

std::string generate_bucket_prefix() { return random_prefix(); }

bool bucket_prefix_is_valid(std::string_view prefix) { return is_valid_bucket_prefix(prefix); }

std::string_view to_string(Provider provider) noexcept {
  switch (provider) {
    case Provider::Http:
      return "http";
    case Provider::Minio:
      return "minio";
    case Provider::Azure:
      return "azure";
    case Provider::Google:
      return "google";
  }
  return "unknown";
}

std::filesystem::path Config::sqlite_path() const {
  const std::string& url = database_url.reveal();
  if (url.empty()) return data_path / "stowage.db";
  if (!url.starts_with("sqlite:")) return {};
  std::string_view path = std::string_view(url).substr(7);
  if (path.starts_with("///")) path.remove_prefix(2);
  return std::filesystem::path(path);
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> out;
  for (char** entry = environ; entry && *entry; ++entry) {
    const std::string_view text(*entry);
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    out.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_env_text(std::string_view text) {
  std::map<std::string, std::string> out;
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t newline = text.find('\n', pos);
    std::string_view line = text.substr(
        pos, newline == std::string_view::npos ? std::string_view::npos : newline - pos);
    pos = newline == std::string_view::npos ? text.size() + 1 : newline + 1;
    ++line_number;
    const auto fail = [&](std::string reason) {
      return make_error(ErrorCode::InvalidArgument,
                        "line " + std::to_string(line_number) + ": " + std::move(reason));
    };
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim_left(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("export") && line.size() > 6 && is_space(line[6])) {
      line = trim_left(line.substr(7));
    }
    const std::size_t eq = line.find('=');
    // Values are never echoed here: the line may hold a secret.
    if (eq == std::string_view::npos) return fail("expected KEY=VALUE, found no '='");
    const std::string key(trim(line.substr(0, eq)));
    if (!is_variable_name(key)) {
      return fail("the name before '=' is not a variable name (letters, digits and '_')");
    }
    const std::string_view raw = line.substr(eq + 1);
    const std::string_view rest = trim_left(raw);
    std::string value;
    if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
      const char quote = rest.front();
      std::size_t i = 1;
      bool closed = false;
      for (; i < rest.size(); ++i) {
        const char c = rest[i];
        if (c == quote) {
          closed = true;
          ++i;
          break;
        }
        if (quote == '"' && c == '\\' && i + 1 < rest.size()) {
          const char next = rest[++i];
          switch (next) {
            case 'n':
              value += '\n';
              break;
            case 't':
              value += '\t';
              break;
            case 'r':
              value += '\r';
              break;
            case '"':
            case '\\':
              value += next;
              break;
            default:
              value += '\\';
              value += next;
          }
          continue;
        }
        value += c;
      }
      if (!closed) return fail(key + ": unterminated quote (values cannot span lines)");
      const std::string_view tail = trim(rest.substr(i));
      if (!tail.empty() && tail.front() != '#') {
        return fail(key + ": unexpected text after the closing quote");
      }
    } else {
      // An unquoted value ends at a '#' that follows whitespace: "KEY=a#b" keeps the '#'.
      std::size_t comment = std::string_view::npos;
      for (std::size_t i = 1; i < raw.size(); ++i) {
        if (raw[i] == '#' && is_space(raw[i - 1])) {
          comment = i;
          break;
        }
      }
      value = std::string(trim(raw.substr(0, comment)));
    }
    out[key] = std::move(value);  // a repeated key: the last one wins, as in docker compose
  }
  return out;
}

Result<std::uint64_t> parse_size(std::string_view text) {
  auto size = size_or_reason(text);
  if (!size) {
    return make_error(ErrorCode::InvalidArgument, in_quotes(text) + ": " + size.error().message);
  }
  return *size;
}

Result<std::chrono::seconds> parse_duration(std::string_view text) {
  auto duration = duration_or_reason(text);
  if (!duration) {
    return make_error(ErrorCode::InvalidArgument,
                      in_quotes(text) + ": " + duration.error().message);
  }
  return *duration;
}

std::string redact_database_url(std::string_view url) {
  std::string out(url);
  const std::size_t scheme_end = out.find("://");
  if (scheme_end != std::string::npos) {
    const std::size_t authority = scheme_end + 3;
    const std::size_t authority_end = out.find_first_of("/?#", authority);
    const std::size_t at =
        out.rfind('@', authority_end == std::string::npos ? std::string::npos : authority_end - 1);
    if (at != std::string::npos && at >= authority) {
      const std::size_t colon = out.find(':', authority);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // libpq also takes the password as a query parameter of a URL, or as a keyword of a
  // keyword string ("host=db password=secret" or "password = 'a secret'").
  const bool keywords = scheme_end == std::string::npos;
  for (std::size_t pos = 0; (pos = out.find("password", pos)) != std::string::npos;) {
    const bool at_start = pos == 0 || (keywords ? out[pos - 1] == ' ' || out[pos - 1] == '\t'
                                               : out[pos - 1] == '?' || out[pos - 1] == '&');
    std::size_t start = pos + 8;
    if (keywords) {
      while (start < out.size() && out[start] == ' ') ++start;
    }
    if (!at_start || start >= out.size() || out[start] != '=') {
      pos += 8;
      continue;
    }
    ++start;
    if (keywords) {
      while (start < out.size() && out[start] == ' ') ++start;
    }
    std::size_t end;
    if (keywords && start < out.size() && out[start] == '\'') {
      end = start + 1;  // a quoted value, with \' and \\ escapes
      while (end < out.size() && out[end] != '\'') end += out[end] == '\\' ? 2 : 1;
      end = std::min(end + 1, out.size());
    } else {
      end = out.find_first_of(keywords ? " \t" : "&#", start);
      if (end == std::string::npos) end = out.size();
    }
    out.replace(start, end - start, "***");
    pos = start + 3;
  }
  return out;
}

Result<Config> load(const LoadOptions& options) {
  Config config;
  STOWAGE_ASSIGN_OR_RETURN(auto found, find_env_file(options));
  config.env_file = std::move(found.first);
  config.env_file_origin = std::move(found.second);

  std::map<std::string, Value> values;
  if (!config.env_file.empty()) {
    STOWAGE_ASSIGN_OR_RETURN(const std::string text, read_text_file(config.env_file));
    auto parsed = parse_env_text(text);
    if (!parsed) {
      return make_error(ErrorCode::InvalidArgument,
                        config.env_file.string() + " " + parsed.error().message);
    }
    for (auto& [name, value] : *parsed) values[name] = Value{std::move(value), Source::EnvFile};
  }
  // As with docker compose, a variable set in the process environment wins over the file, even
  // when it is set to the empty string (which then means "the default").
  for (std::string_view name : kKnownVariables) {
    if (const auto it = options.environment.find(std::string(name));
        it != options.environment.end()) {
      values[it->first] = Value{it->second, Source::Environment};
    }
  }
  values.erase("STOWAGE_ENV_FILE");  // it chose the file; it is not a setting

  Loader loader(std::move(values), options.cwd, config);
  STOWAGE_TRY(loader.run());
  return config;
}

Result<std::optional<std::string>> read_saved_bucket_prefix(const Config& config) {
  const fs::path file = config.data_path / kBucketPrefixFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    if (ec && ec != std::errc::no_such_file_or_directory) {
      return io_error("stat", file, ec.value());
    }
    return std::optional<std::string>();
  }
  STOWAGE_ASSIGN_OR_RETURN(const std::string text, read_text_file(file));
  const std::string prefix(trim(text));
  if (!is_valid_bucket_prefix(prefix)) {
    return make_error(ErrorCode::Corrupt,
                      file.string() + " holds " + in_quotes(prefix) + ", which is " +
                          std::string(kBucketPrefixReason) +
                          "; fix it or set STORAGE_BUCKET_PREFIX to the prefix of your buckets");
  }
  return std::optional<std::string>(prefix);
}

Status resolve_bucket_prefix(Config& config) {
  if (!config.bucket_prefix.empty()) return {};
  STOWAGE_ASSIGN_OR_RETURN(auto saved, read_saved_bucket_prefix(config));
  if (saved) {
    config.bucket_prefix = std::move(*saved);
    return {};
  }
  std::error_code ec;
  fs::create_directories(config.data_path, ec);
  if (ec) return io_error("create DATA_PATH", config.data_path, ec.value());

  // Written to a temporary file, then linked into place: link() never replaces an existing file,
  // so when two processes race, exactly one prefix wins and both end up using it.
  const std::string prefix = random_prefix();
  const fs::path file = config.data_path / kBucketPrefixFile;
  const fs::path temp =
      config.data_path / ("." + std::string(kBucketPrefixFile) + "." + prefix + ".tmp");
  STOWAGE_TRY(write_new_file(temp, prefix + "\n"));
  const int linked = ::link(temp.c_str(), file.c_str());
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (linked != 0) {
    if (link_errno != EEXIST) return io_error("create", file, link_errno);
    STOWAGE_ASSIGN_OR_RETURN(auto winner, read_saved_bucket_prefix(config));
    if (!winner) return make_error(ErrorCode::IoError, file.string() + " vanished while reading");
    config.bucket_prefix = std::move(*winner);
    return {};
  }
  if (const int dir = ::open(config.data_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      dir >= 0) {
    ::fsync(dir);  // make the new name durable; a failure here is not worth failing startup
    ::close(dir);
  }
  config.bucket_prefix = prefix;
  return {};
}

}  // namespace stowage::config
