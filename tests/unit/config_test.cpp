// SPDX-License-Identifier: Apache-2.0
#include "stowage/config/config.hpp"
#include "stowage/links/remote_links.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace stowage::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

/// A value that must never show up in any message.
constexpr std::string_view kSentinel = "s3cr3t-SENTINEL-9f2c";

/// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "stowage-config-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

  fs::path write(const fs::path& name, std::string_view text) const {
    const fs::path file = path_ / name;
    fs::create_directories(file.parent_path());
    std::ofstream(file) << text;
    return file;
  }

 private:
  fs::path path_;
};

class ConfigTest : public ::testing::Test {
 protected:
  /// Loads with `text` as ./.env in the temp dir (no file when nullopt) and `environment`.
  Result<Config> load_with(std::optional<std::string_view> text,
                           std::map<std::string, std::string> environment = {}) {
    if (text) env_file_ = dir_.write(".env", *text);
    LoadOptions options;
    options.cwd = dir_.path();
    options.environment = std::move(environment);
    return load(options);
  }

  std::string error_of(std::optional<std::string_view> text,
                       std::map<std::string, std::string> environment = {}) {
    auto loaded = load_with(text, std::move(environment));
    EXPECT_FALSE(loaded.has_value()) << "loaded without error";
    if (loaded) return {};
    EXPECT_EQ(loaded.error().code, ErrorCode::InvalidArgument);
    EXPECT_EQ(loaded.error().message.find('\n'), std::string::npos) << "not one line";
    return loaded.error().message;
  }

  TempDir dir_;
  fs::path env_file_;
};

// --- parse_size ------------------------------------------------------------------------------

TEST(ParseSize, AcceptsNumbersWithBinaryUnits) {
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("1024").value(), 1024u);
  EXPECT_EQ(parse_size("1k").value(), 1024u);
  EXPECT_EQ(parse_size("1K").value(), 1024u);
  EXPECT_EQ(parse_size("512m").value(), 512ull << 20);
  EXPECT_EQ(parse_size("10g").value(), 10ull << 30);
  EXPECT_EQ(parse_size("10gb").value(), 10ull << 30);
  EXPECT_EQ(parse_size("10GB").value(), 10ull << 30);
  EXPECT_EQ(parse_size("2t").value(), 2ull << 40);
  EXPECT_EQ(parse_size("100b").value(), 100u);
  EXPECT_EQ(parse_size("18446744073709551615").value(), 18446744073709551615ull);
}

TEST(ParseSize, AcceptsFractionsThatAreWholeBytes) {
  EXPECT_EQ(parse_size("1.5g").value(), 3ull << 29);
  EXPECT_EQ(parse_size("0.5k").value(), 512u);
  EXPECT_EQ(parse_size("2.25m").value(), 2359296u);
  EXPECT_FALSE(parse_size("0.3k"));  // 307.2 bytes
  EXPECT_FALSE(parse_size("1.5"));   // fractional bytes
}

TEST(ParseSize, RejectsEverythingElse) {
  for (std::string_view bad :
       {"", "10x", "g", "-1", "+1", "1.g", ".5g", "1 g", " 1g", "1g ", "1kk", "1gib", "0x10", "1e3",
        "16777216t", "18446744073709551616", "99999999999999999999999g"}) {
    EXPECT_FALSE(parse_size(bad)) << bad;
  }
  auto error = parse_size("10x");
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error().code, ErrorCode::InvalidArgument);
  EXPECT_THAT(error.error().message, HasSubstr("\"10x\""));
  EXPECT_THAT(error.error().message, HasSubstr("not a size"));
}

// --- parse_duration --------------------------------------------------------------------------

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(parse_duration("90").value(), 90s);
  EXPECT_EQ(parse_duration("0").value(), 0s);
  EXPECT_EQ(parse_duration("45s").value(), 45s);
  EXPECT_EQ(parse_duration("30m").value(), 30min);
  EXPECT_EQ(parse_duration("12h").value(), 12h);
  EXPECT_EQ(parse_duration("7d").value(), 7 * 24h);
  EXPECT_EQ(parse_duration("2w").value(), 14 * 24h);
  EXPECT_EQ(parse_duration("1h30m").value(), 90min);
}

TEST(ParseDuration, RejectsEverythingElse) {
  for (std::string_view bad : {"", "10x", "h", "12H", "1M", "1y", "5ms", "-5s", "1.5h", "1h ",
                               " 1h", "12h30", "99999999999999999999w"}) {
    EXPECT_FALSE(parse_duration(bad)) << bad;
  }
  auto error = parse_duration("1y");
  ASSERT_FALSE(error);
  EXPECT_THAT(error.error().message, HasSubstr("\"1y\""));
  EXPECT_THAT(error.error().message, HasSubstr("not a duration"));
}

// --- parse_env_text --------------------------------------------------------------------------

TEST(ParseEnvText, ReadsTheDotenvDialect) {
  const auto vars = parse_env_text(
                        "# a comment\n"
                        "\n"
                        "   \n"
                        "PLAIN=value\n"
                        "export EXPORTED=1\n"
                        "SPACED = spaced value  \n"
                        "DOUBLE=\"with # hash and \\\"escapes\\\"\\n\"\n"
                        "SINGLE='lit\\eral # too'  # trailing comment\n"
                        "INLINE=abc # comment\n"
                        "HASH=a#b\n"
                        "EMPTY=\n"
                        "CRLF=yes\r\n"
                        "REPEATED=first\n"
                        "REPEATED=second\n"
                        "  INDENTED=ok")
                        .value();
  EXPECT_EQ(vars.at("PLAIN"), "value");
  EXPECT_EQ(vars.at("EXPORTED"), "1");
  EXPECT_EQ(vars.at("SPACED"), "spaced value");
  EXPECT_EQ(vars.at("DOUBLE"), "with # hash and \"escapes\"\n");
  EXPECT_EQ(vars.at("SINGLE"), "lit\\eral # too");
  EXPECT_EQ(vars.at("INLINE"), "abc");
  EXPECT_EQ(vars.at("HASH"), "a#b");
  EXPECT_EQ(vars.at("EMPTY"), "");
  EXPECT_EQ(vars.at("CRLF"), "yes");
  EXPECT_EQ(vars.at("REPEATED"), "second");
  EXPECT_EQ(vars.at("INDENTED"), "ok");
  EXPECT_EQ(vars.size(), 11u);
}

TEST(ParseEnvText, ErrorsNameTheLineButNeverTheValue) {
  auto no_equals = parse_env_text("A=1\n# fine\nSTORAGE_SECRET_KEY " + std::string(kSentinel));
  ASSERT_FALSE(no_equals);
  EXPECT_EQ(no_equals.error().code, ErrorCode::InvalidArgument);
  EXPECT_THAT(no_equals.error().message, HasSubstr("line 3"));
  EXPECT_THAT(no_equals.error().message, HasSubstr("'='"));
  EXPECT_THAT(no_equals.error().message, Not(HasSubstr(kSentinel)));

  auto unterminated = parse_env_text("\nSTORAGE_SECRET_KEY=\"" + std::string(kSentinel));
  ASSERT_FALSE(unterminated);
  EXPECT_THAT(unterminated.error().message, HasSubstr("line 2"));
  EXPECT_THAT(unterminated.error().message, HasSubstr("unterminated"));
  EXPECT_THAT(unterminated.error().message, Not(HasSubstr(kSentinel)));

  EXPECT_FALSE(parse_env_text("A=\"x\" trailing"));
  EXPECT_FALSE(parse_env_text("1ABC=x"));
  EXPECT_FALSE(parse_env_text("MY VAR=x"));
  EXPECT_FALSE(parse_env_text("=x"));
}

// --- load: lookup order ----------------------------------------------------------------------

TEST_F(ConfigTest, NoFileMeansDefaults) {
  const Config config = load_with(std::nullopt).value();
  EXPECT_TRUE(config.env_file.empty());
  EXPECT_EQ(config.env_file_origin, "none");
  EXPECT_EQ(config.data_path, dir_.path() / "data");
  EXPECT_EQ(config.provider, Provider::Http);
  EXPECT_EQ(config.remote_links_path, dir_.path() / "remote_links.yml");
  EXPECT_EQ(config.sqlite_path(), dir_.path() / "data" / "stowage.db");
  EXPECT_EQ(config.listen_host, "127.0.0.1");
  EXPECT_EQ(config.listen_port, 8080);
  EXPECT_EQ(config.cache_previews_bytes, 1ull << 30);
  EXPECT_EQ(config.cache_storage_expires, 7 * 24h);
  EXPECT_TRUE(config.bucket_prefix.empty());
  EXPECT_EQ(config.metrics_access, MetricsAccess::Loopback);
  EXPECT_TRUE(config.sources.empty());
}

TEST_F(ConfigTest, DotEnvInTheWorkingDirectory) {
  const Config config = load_with("DATA_PATH=/srv/stowage\n").value();
  EXPECT_EQ(config.env_file, dir_.path() / ".env");
  EXPECT_EQ(config.env_file_origin, "./.env");
  EXPECT_EQ(config.data_path, fs::path("/srv/stowage"));
  EXPECT_EQ(config.sources.at("DATA_PATH"), Source::EnvFile);
}

TEST_F(ConfigTest, EnvVariableFileWinsOverDotEnv) {
  dir_.write(".env", "DATA_PATH=from-dot-env\n");
  const fs::path other = dir_.write("conf/other.env", "DATA_PATH=from-variable\n");
  LoadOptions options;
  options.cwd = dir_.path();
  options.environment = {{"STOWAGE_ENV_FILE", "conf/other.env"}};
  const Config config = load(options).value();
  EXPECT_EQ(config.env_file, other);
  EXPECT_EQ(config.env_file_origin, "STOWAGE_ENV_FILE");
  EXPECT_EQ(config.data_path, dir_.path() / "from-variable");
  EXPECT_EQ(config.remote_links_path, dir_.path() / "conf" / "remote_links.yml");
}

TEST_F(ConfigTest, EnvOptionWinsOverEverything) {
  dir_.write(".env", "DATA_PATH=from-dot-env\n");
  const fs::path variable = dir_.write("variable.env", "DATA_PATH=from-variable\n");
  const fs::path option = dir_.write("option.env", "DATA_PATH=from-option\n");
  LoadOptions options;
  options.cwd = dir_.path();
  options.env_file = "option.env";
  options.environment = {{"STOWAGE_ENV_FILE", variable.string()}};
  const Config config = load(options).value();
  EXPECT_EQ(config.env_file, option);
  EXPECT_EQ(config.env_file_origin, "--env");
  EXPECT_EQ(config.data_path, dir_.path() / "from-option");
}

TEST_F(ConfigTest, NamedFilesMustExist) {
  dir_.write(".env", "");  // must not be used as a fallback
  LoadOptions options;
  options.cwd = dir_.path();
  options.env_file = "missing.env";
  auto from_option = load(options);
  ASSERT_FALSE(from_option);
  EXPECT_THAT(from_option.error().message, HasSubstr("--env"));
  EXPECT_THAT(from_option.error().message, HasSubstr((dir_.path() / "missing.env").string()));

  options.env_file.reset();
  options.environment = {{"STOWAGE_ENV_FILE", "/nonexistent/stowage.env"}};
  auto from_variable = load(options);
  ASSERT_FALSE(from_variable);
  EXPECT_THAT(from_variable.error().message, HasSubstr("STOWAGE_ENV_FILE"));
  EXPECT_THAT(from_variable.error().message, HasSubstr("/nonexistent/stowage.env"));
  EXPECT_THAT(from_variable.error().message, HasSubstr("no such file"));
}

TEST_F(ConfigTest, ProcessEnvironmentOverridesTheFile) {
  const Config config = load_with("STORAGE_REGION=eu-west-1\nSTOWAGE_LISTEN=:9000\n",
                                  {{"STORAGE_REGION", "eu-central-1"}, {"PATH", "/bin"}})
                            .value();
  EXPECT_EQ(config.storage_region, "eu-central-1");
  EXPECT_EQ(config.sources.at("STORAGE_REGION"), Source::Environment);
  EXPECT_EQ(config.sources.at("STOWAGE_LISTEN"), Source::EnvFile);
  EXPECT_EQ(config.sources.count("PATH"), 0u);
  EXPECT_EQ(config.listen_host, "0.0.0.0");
  EXPECT_EQ(config.listen_port, 9000);
}

TEST_F(ConfigTest, ReadsEveryVariable) {
  const Config config = load_with(
                            "DATA_PATH=var/data\n"
                            "STORAGE_PROVIDER=MinIO\n"
                            "STORAGE_ENDPOINT=s3.amazonaws.com\n"
                            "STORAGE_PORT=443\n"
                            "STORAGE_ACCESS_KEY=AKIA\n"
                            "STORAGE_SECRET_KEY=" +
                            std::string(kSentinel) +
                            "\n"
                            "STORAGE_REGION=eu-central-1\n"
                            "STORAGE_FORCE_PATH_STYLE=yes\n"
                            "STORAGE_BUCKET_PREFIX=acme-cv\n"
                            "CACHE_PREVIEWS_SIZE=2g\n"
                            "CACHE_PREVIEWS_EXPIRES=1h\n"
                            "CACHE_STORAGE_SIZE=1.5t\n"
                            "CACHE_STORAGE_EXPIRES=2w\n"
                            "CACHE_IMAGE_CONVERTER_SIZE=10g\n"
                            "CACHE_IMAGE_CONVERTER_EXPIRES=7d\n"
                            "REMOTE_LINKS_PATH=/etc/stowage/links.yml\n"
                            "STOWAGE_LISTEN=[::1]:8443\n"
                            "DATABASE_URL=sqlite:db/catalog.db\n"
                            "STOWAGE_MAX_UPLOAD_SIZE=1g\n"
                            "STOWAGE_MAX_JSON_SIZE=1m\n"
                            "STOWAGE_REQUEST_TIMEOUT=90\n"
                            "STOWAGE_IO_THREADS=2\n"
                            "STOWAGE_WORKER_THREADS=8\n"
                            "JUPYTER_DOWNLOAD_FILES_BEFORE_START=true\n"
                            "STORAGE_JUPYTER_SYNC=true\n"
                            "SOMEONE_ELSES=ignored\n")
                            .value();
  EXPECT_EQ(config.data_path, dir_.path() / "var" / "data");
  EXPECT_EQ(config.provider, Provider::Minio);
  EXPECT_EQ(config.storage_endpoint, "s3.amazonaws.com");
  EXPECT_EQ(config.storage_port, std::optional<std::uint16_t>(443));
  EXPECT_EQ(config.storage_access_key, "AKIA");
  EXPECT_EQ(config.storage_secret_key.reveal(), kSentinel);
  EXPECT_EQ(config.storage_region, "eu-central-1");
  EXPECT_TRUE(config.storage_force_path_style);
  EXPECT_EQ(config.public_bucket(), "acme-cv-public");
  EXPECT_EQ(config.private_bucket(), "acme-cv-private");
  EXPECT_EQ(config.cache_previews_bytes, 2ull << 30);
  EXPECT_EQ(config.cache_previews_expires, 1h);
  EXPECT_EQ(config.cache_storage_bytes, 3ull << 39);
  EXPECT_EQ(config.cache_storage_expires, 14 * 24h);
  EXPECT_EQ(config.remote_links_path, fs::path("/etc/stowage/links.yml"));
  EXPECT_EQ(config.listen_host, "::1");
  EXPECT_EQ(config.listen_port, 8443);
  EXPECT_EQ(config.sqlite_path(), dir_.path() / "db" / "catalog.db");
  EXPECT_EQ(config.max_upload_bytes, 1ull << 30);
  EXPECT_EQ(config.max_json_bytes, 1ull << 20);
  EXPECT_EQ(config.request_timeout, 90s);
  EXPECT_EQ(config.io_threads, 2u);
  EXPECT_EQ(config.worker_threads, 8u);
  std::ostringstream printed;
  printed << config.storage_secret_key;
  EXPECT_EQ(printed.str(), "***");
}

TEST_F(ConfigTest, DatabaseUrls) {
  EXPECT_EQ(load_with("DATABASE_URL=sqlite:///var/lib/stowage.db\n").value().sqlite_path(),
            fs::path("/var/lib/stowage.db"));
  EXPECT_EQ(load_with("DATABASE_URL=\n").value().sqlite_path(),
            dir_.path() / "data" / "stowage.db");
  const Config postgres =
      load_with("DATABASE_URL=postgresql://stowage:pw@db.internal:5432/stowage\n").value();
  EXPECT_TRUE(postgres.sqlite_path().empty());
  EXPECT_EQ(postgres.database_url.reveal(), "postgresql://stowage:pw@db.internal:5432/stowage");
  EXPECT_TRUE(load_with("DATABASE_URL=postgres://db/stowage\n"));
  // libpq's keyword strings are PostgreSQL too.
  const Config keywords =
      load_with("DATABASE_URL=\"host=db.internal dbname=stowage user=s password=pw\"\n").value();
  EXPECT_TRUE(keywords.sqlite_path().empty());
  EXPECT_EQ(keywords.database_url.reveal(), "host=db.internal dbname=stowage user=s password=pw");
}

TEST(RedactDatabaseUrl, HidesPasswordsOnly) {
  EXPECT_EQ(redact_database_url("postgresql://user:pw@host:5432/db"),
            "postgresql://user:***@host:5432/db");
  EXPECT_EQ(redact_database_url("postgresql://user@host/db"), "postgresql://user@host/db");
  EXPECT_EQ(redact_database_url("postgresql://host/db?user=u&password=pw&sslmode=require"),
            "postgresql://host/db?user=u&password=***&sslmode=require");
  EXPECT_EQ(redact_database_url("postgres://u:p@ss@host/db"), "postgres://u:***@host/db");
  EXPECT_EQ(redact_database_url("sqlite:/var/lib/x.db"), "sqlite:/var/lib/x.db");
  // Keyword strings: plain, spaced and quoted values; a keyword ending in "password" is not one.
  EXPECT_EQ(redact_database_url("host=db password=pw dbname=s"), "host=db password=*** dbname=s");
  EXPECT_EQ(redact_database_url("password = 'a b\\' c' host=db"), "password = *** host=db");
  EXPECT_EQ(redact_database_url("host=db oldpassword=x"), "host=db oldpassword=x");
}

// --- load: errors ----------------------------------------------------------------------------

struct BadValue {
  std::string variable;
  std::string value;
  std::string reason;  ///< a piece of the expected message
};

class BadValueTest : public ConfigTest, public ::testing::WithParamInterface<BadValue> {};

TEST_P(BadValueTest, NamesVariableFileAndValue) {
  const BadValue& bad = GetParam();
  const std::string message = error_of(bad.variable + "=" + bad.value + "\n");
  EXPECT_THAT(message, HasSubstr(bad.variable));
  EXPECT_THAT(message, HasSubstr(env_file_.string()));
  EXPECT_THAT(message, HasSubstr("\"" + bad.value + "\""));
  EXPECT_THAT(message, HasSubstr(bad.reason));
}

TEST_P(BadValueTest, SaysEnvironmentWhenTheValueCameFromThere) {
  const BadValue& bad = GetParam();
  const std::string message = error_of("", {{bad.variable, bad.value}});
  EXPECT_THAT(message, HasSubstr(bad.variable + "=\"" + bad.value + "\" in environment"));
}

INSTANTIATE_TEST_SUITE_P(
    Variables, BadValueTest,
    ::testing::Values(BadValue{"STORAGE_PROVIDER", "nope", "not a provider"},
                      BadValue{"STORAGE_PROVIDER", "s3", "not a provider"},
                      BadValue{"STORAGE_PORT", "0", "not a port"},
                      BadValue{"STORAGE_PORT", "65536", "not a port"},
                      BadValue{"STORAGE_PORT", "https", "not a port"},
                      BadValue{"STORAGE_FORCE_PATH_STYLE", "maybe", "not a boolean"},
                      BadValue{"STORAGE_BUCKET_PREFIX", "Acme", "not a bucket prefix"},
                      BadValue{"STORAGE_BUCKET_PREFIX", "ab", "not a bucket prefix"},
                      BadValue{"STORAGE_BUCKET_PREFIX", std::string(55, 'a'), "bucket prefix"},
                      BadValue{"STORAGE_BUCKET_PREFIX", "acme--cv", "not a bucket prefix"},
                      BadValue{"STORAGE_BUCKET_PREFIX", "acme-", "not a bucket prefix"},
                      BadValue{"STORAGE_BUCKET_PREFIX", "acme_cv", "not a bucket prefix"},
                      BadValue{"STORAGE_ENDPOINT", "s3 .com", "spaces"},
                      BadValue{"CACHE_PREVIEWS_SIZE", "1x", "not a size"},
                      BadValue{"CACHE_STORAGE_SIZE", "10x", "not a size"},
                      BadValue{"CACHE_IMAGE_CONVERTER_SIZE", "lots", "not a size"},
                      BadValue{"CACHE_PREVIEWS_EXPIRES", "1y", "not a duration"},
                      BadValue{"CACHE_STORAGE_EXPIRES", "7days", "not a duration"},
                      BadValue{"CACHE_IMAGE_CONVERTER_EXPIRES", "x", "not a duration"},
                      BadValue{"STOWAGE_LISTEN", "localhost", "not a listen address"},
                      BadValue{"STOWAGE_LISTEN", "::1:8080", "brackets"},
                      BadValue{"STOWAGE_LISTEN", "host:0", "not a listen address"},
                      BadValue{"STOWAGE_LISTEN", "[::1:80", "not a listen address"},
                      BadValue{"DATABASE_URL", "mysql://db/x", "not a database URL"},
                      BadValue{"DATABASE_URL", "sqlite://host/x.db", "sqlite"},
                      BadValue{"STOWAGE_MAX_UPLOAD_SIZE", "0", "more than 0"},
                      BadValue{"STOWAGE_MAX_JSON_SIZE", "big", "not a size"},
                      BadValue{"STOWAGE_REQUEST_TIMEOUT", "0", "more than 0"},
                      BadValue{"STOWAGE_IO_THREADS", "-1", "not a thread count"},
                      BadValue{"STOWAGE_WORKER_THREADS", "many", "not a thread count"},
                      BadValue{"STOWAGE_METRICS_ACCESS", "everyone", "loopback, token or open"}));

TEST_F(ConfigTest, UnknownOwnVariablesAreTypos) {
  const std::string message = error_of("STORAGE_PROVDER=minio\nOTHER_TOOL=1\nSTOWAGE_LISTN=:80\n");
  EXPECT_THAT(message, HasSubstr("unknown variables"));
  EXPECT_THAT(message, HasSubstr("STORAGE_PROVDER (did you mean STORAGE_PROVIDER?)"));
  EXPECT_THAT(message, HasSubstr("STOWAGE_LISTN (did you mean STOWAGE_LISTEN?)"));
  EXPECT_THAT(message, HasSubstr(env_file_.string()));
  EXPECT_THAT(message, Not(HasSubstr("OTHER_TOOL")));

  EXPECT_THAT(error_of("CACHE_SIZE=1g\n"), HasSubstr("unknown variable CACHE_SIZE"));
  // Other programs' variables, and anything in the process environment, are not ours to judge.
  EXPECT_TRUE(load_with("PATH=/bin\nCOMPOSE_PROJECT_NAME=x\n", {{"STORAGE_WHATEVER", "1"}}));
}

TEST_F(ConfigTest, SecretsNeverAppearInMessages) {
  const std::string secret(kSentinel);
  // An unknown variable that holds a secret: only its name is shown.
  EXPECT_THAT(error_of("STORAGE_API_TOKEN=" + secret + "\n"), Not(HasSubstr(secret)));
  // A failure elsewhere while a secret is loaded.
  EXPECT_THAT(error_of("STORAGE_PROVIDER=minio\nSTORAGE_ACCESS_KEY=" + secret +
                       "\nSTORAGE_SECRET_KEY=" + secret + "\n"),
              Not(HasSubstr(secret)));
  // A bad database URL with a password.
  const std::string database = error_of("DATABASE_URL=mysql://root:" + secret + "@db/x\n");
  EXPECT_THAT(database, HasSubstr("DATABASE_URL=\"mysql://root:***@db/x\""));
  EXPECT_THAT(database, Not(HasSubstr(secret)));
  // A syntax error on a secret's line.
  const std::string syntax = error_of("STORAGE_SECRET_KEY='" + secret + "\n");
  EXPECT_THAT(syntax, HasSubstr(env_file_.string()));
  EXPECT_THAT(syntax, HasSubstr("line 1"));
  EXPECT_THAT(syntax, Not(HasSubstr(secret)));
}

// --- per-provider requirements ---------------------------------------------------------------

TEST_F(ConfigTest, MinioNeedsAnEndpointAndKeysOrARole) {
  const std::string no_endpoint = error_of("STORAGE_PROVIDER=minio\n");
  EXPECT_THAT(no_endpoint, HasSubstr("STORAGE_ENDPOINT"));
  EXPECT_THAT(no_endpoint, HasSubstr("STORAGE_PROVIDER=minio"));
  EXPECT_THAT(no_endpoint, HasSubstr(env_file_.string()));

  EXPECT_THAT(error_of("STORAGE_PROVIDER=minio\nSTORAGE_ENDPOINT=s3.amazonaws.com\n"),
              HasSubstr("STORAGE_ACCESS_KEY is not set"));
  EXPECT_THAT(error_of("STORAGE_PROVIDER=minio\nSTORAGE_ENDPOINT=s3.amazonaws.com\n"
                       "STORAGE_ACCESS_KEY=AKIA\n"),
              HasSubstr("STORAGE_SECRET_KEY is not set"));
  EXPECT_TRUE(
      load_with("STORAGE_PROVIDER=minio\nSTORAGE_ENDPOINT=s3.amazonaws.com\n"
                "STORAGE_IAM_ROLE=stowage\n"));
  EXPECT_TRUE(
      load_with("STORAGE_PROVIDER=minio\nSTORAGE_ENDPOINT=s3.amazonaws.com\n"
                "STORAGE_ACCESS_KEY=AKIA\nSTORAGE_SECRET_KEY=x\n"));
}

TEST_F(ConfigTest, AzureNeedsAccountKeyAndEndpoint) {
  const std::string account = error_of("STORAGE_PROVIDER=azure\n");
  EXPECT_THAT(account, HasSubstr("STORAGE_ACCESS_KEY"));
  EXPECT_THAT(account, HasSubstr("azure"));
  EXPECT_THAT(account, HasSubstr(env_file_.string()));
  EXPECT_THAT(error_of("STORAGE_PROVIDER=azure\nSTORAGE_ACCESS_KEY=acct\n"),
              HasSubstr("STORAGE_SECRET_KEY"));
  EXPECT_THAT(error_of("STORAGE_PROVIDER=azure\nSTORAGE_ACCESS_KEY=acct\nSTORAGE_SECRET_KEY=k\n"),
              HasSubstr("STORAGE_ENDPOINT"));
  EXPECT_TRUE(
      load_with("STORAGE_PROVIDER=azure\nSTORAGE_ACCESS_KEY=acct\nSTORAGE_SECRET_KEY=k\n"
                "STORAGE_ENDPOINT=https://acct.blob.core.windows.net\n"));
}

TEST_F(ConfigTest, GoogleNeedsCredentials) {
  const std::string message = error_of("STORAGE_PROVIDER=google\n");
  EXPECT_THAT(message, HasSubstr("STORAGE_CREDENTIALS_PATH"));
  EXPECT_THAT(message, HasSubstr("google"));
  EXPECT_THAT(message, HasSubstr(env_file_.string()));
  const Config config =
      load_with("STORAGE_PROVIDER=google\nSTORAGE_CREDENTIALS_PATH=gcs.json\n").value();
  EXPECT_EQ(config.storage_credentials_path, dir_.path() / "gcs.json");
}

TEST_F(ConfigTest, MissingKeyWithoutAFileSaysEnvironment) {
  const std::string message = error_of(std::nullopt, {{"STORAGE_PROVIDER", "google"}});
  EXPECT_THAT(message, HasSubstr("STORAGE_CREDENTIALS_PATH"));
  EXPECT_THAT(message, HasSubstr("environment"));
}

// --- bucket prefix ---------------------------------------------------------------------------

TEST_F(ConfigTest, BucketPrefixIsGeneratedOnceAndReused) {
  Config first = load_with("DATA_PATH=data\n").value();
  EXPECT_FALSE(read_saved_bucket_prefix(first).value());
  ASSERT_TRUE(resolve_bucket_prefix(first));
  const std::string prefix = first.bucket_prefix;
  EXPECT_EQ(prefix.size(), 16u);
  EXPECT_TRUE(prefix.starts_with("stowage-"));
  EXPECT_TRUE(std::all_of(prefix.begin() + 8, prefix.end(),
                          [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }));
  EXPECT_EQ(read_saved_bucket_prefix(first).value(), std::optional<std::string>(prefix));

  Config second = load_with("DATA_PATH=data\n").value();
  ASSERT_TRUE(resolve_bucket_prefix(second));
  EXPECT_EQ(second.bucket_prefix, prefix);
  EXPECT_EQ(second.public_bucket(), prefix + "-public");

  // No temporary file is left behind.
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_.path() / "data")) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(ConfigTest, ConfiguredBucketPrefixWritesNothing) {
  Config config = load_with("STORAGE_BUCKET_PREFIX=acme\n").value();
  ASSERT_TRUE(resolve_bucket_prefix(config));
  EXPECT_EQ(config.bucket_prefix, "acme");
  EXPECT_FALSE(fs::exists(config.data_path));
}

TEST_F(ConfigTest, CorruptSavedPrefixIsReported) {
  dir_.write("data/bucket-prefix", "Not A Prefix\n");
  Config config = load_with(std::nullopt).value();
  auto resolved = resolve_bucket_prefix(config);
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().code, ErrorCode::Corrupt);
  EXPECT_THAT(resolved.error().message, HasSubstr((dir_.path() / "data/bucket-prefix").string()));
}

// Found by the config fuzz target: a setting whose key is not plain text threw out of the
// parser (a SIGHUP reload would have ended the server).
TEST(RemoteLinksSecrets, OddlyShapedSettingsAreRefusedNotThrown) {
  for (const std::string yaml : {"c:\n  ? [a, b]\n  : x\n", "c:\n  ? {k: v}\n  : minio\n",
                                 "? [x]\n: {provider: minio}\n"}) {
    auto parsed = links::RemoteLinks::parse(yaml, "remote_links.yml", {});
    ASSERT_FALSE(parsed) << yaml;
    EXPECT_EQ(parsed.error().code, ErrorCode::InvalidArgument);
  }
}

// Found by the config fuzz target: `file:/dev/zero` read forever.
TEST(RemoteLinksSecrets, FileSecretsAreSmallRegularFiles) {
  const fs::path dir = fs::temp_directory_path() / ("stowage-secret-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "key") << "s3cr3t-value\n";
  std::ofstream(dir / "big") << std::string(100 << 10, 'x');
  auto yaml = [](const std::string& secret) {
    return "c:\n  provider: minio\n  endpoint: s3.amazonaws.com\n  access_key: AK\n"
           "  secret_key: file:" + secret + "\n  buckets: [b]\n";
  };
  auto ok = links::RemoteLinks::parse(yaml((dir / "key").string()), "remote_links.yml", {});
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->connections.at(0).secret_key.reveal(), "s3cr3t-value");
  for (const std::string& bad : {std::string("/dev/zero"), dir.string(), (dir / "big").string()}) {
    auto refused = links::RemoteLinks::parse(yaml(bad), "remote_links.yml", {});
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(refused.error().message.find(bad), std::string::npos) << refused.error().message;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace stowage::config
