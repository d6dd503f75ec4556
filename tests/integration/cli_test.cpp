// SPDX-License-Identifier: Apache-2.0
// Runs the built `stowage` binary as a user would: in a temp directory, with a temp .env and a
// minimal environment, checking exit codes, stdout and stderr.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "stowage/catalog/catalog.hpp"
#include "stowage/io/checksum.hpp"

#ifndef STOWAGE_BINARY
#error "STOWAGE_BINARY must name the stowage executable"
#endif

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

/// A value that must never be printed.
constexpr std::string_view kSentinel = "s3cr3t-SENTINEL-41d7";

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "stowage-cli-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path write(const fs::path& name, std::string_view text) {
    const fs::path file = dir_ / name;
    std::ofstream(file) << text;
    return file;
  }

  /// Runs `stowage args...` in the temp dir with only PATH, HOME and `environment` set, so
  /// that the developer's own STOWAGE_* / STORAGE_* variables cannot leak in.
  Outcome run(const std::vector<std::string>& args,
              const std::map<std::string, std::string>& environment = {}) {
    const fs::path out_file = dir_ / ".cli-stdout";
    const fs::path err_file = dir_ / ".cli-stderr";
    std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin", "HOME=" + dir_.string()};
    for (const auto& [name, value] : environment) env_strings.push_back(name + "=" + value);
    std::vector<char*> envp;
    for (auto& entry : env_strings) envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings = {STOWAGE_BINARY};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid == 0) {
      const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0 ||
          ::chdir(dir_.c_str()) != 0) {
        ::_exit(127);
      }
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    Outcome result;
    int status = 0;
    EXPECT_GT(pid, 0);
    if (pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
    result.out = read_file(out_file);
    result.err = read_file(err_file);
    fs::remove(out_file);
    fs::remove(err_file);
    return result;
  }

  /// Expects exit 2 and one `stowage: ...` line on stderr naming `variable` and the .env.
  void expect_config_error(const Outcome& r, const std::string& variable) {
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    ASSERT_EQ(lines_of(r.err).size(), 1u) << r.err;
    EXPECT_THAT(r.err, ::testing::StartsWith("stowage: "));
    EXPECT_THAT(r.err, HasSubstr(variable));
    EXPECT_THAT(r.err, HasSubstr((dir_ / ".env").string()));
  }

  /// The `token list` row whose name column is `name`, split into columns.
  std::vector<std::string> token_row(const std::string& list, const std::string& name) {
    for (const std::string& line : lines_of(list)) {
      std::istringstream in(line);
      std::vector<std::string> cells;
      for (std::string cell; in >> cell;) cells.push_back(cell);
      if (cells.size() >= 3 && cells[2] == name) return cells;
    }
    return {};
  }

  fs::path dir_;
};

// --- configuration errors: exit 2, one line naming the variable and the file ------------------

TEST_F(CliTest, UnknownProviderIsAConfigurationError) {
  write(".env", "STORAGE_PROVIDER=nope\n");
  const Outcome r = run({"where"});
  expect_config_error(r, "STORAGE_PROVIDER");
  EXPECT_THAT(r.err, HasSubstr("\"nope\""));
}

TEST_F(CliTest, BadCacheSizeIsAConfigurationError) {
  write(".env", "CACHE_STORAGE_SIZE=10x\n");
  const Outcome r = run({"config", "check"});
  expect_config_error(r, "CACHE_STORAGE_SIZE");
  EXPECT_THAT(r.err, HasSubstr("\"10x\""));
}

TEST_F(CliTest, MinioWithoutEndpointIsAConfigurationError) {
  write(".env", "STORAGE_PROVIDER=minio\nSTORAGE_ACCESS_KEY=AKIA\nSTORAGE_SECRET_KEY=" +
                    std::string(kSentinel) + "\n");
  const Outcome r = run({"serve"});
  expect_config_error(r, "STORAGE_ENDPOINT");
  EXPECT_THAT(r.err, HasSubstr("minio"));
  EXPECT_THAT(r.err, Not(HasSubstr(kSentinel)));
}

TEST_F(CliTest, TypoInAVariableNameIsAConfigurationError) {
  write(".env", "STORAGE_PROVDER=minio\n");
  const Outcome r = run({"where"});
  expect_config_error(r, "STORAGE_PROVDER");
  EXPECT_THAT(r.err, HasSubstr("unknown variable"));
}

TEST_F(CliTest, MissingEnvFileIsAConfigurationError) {
  const Outcome r = run({"where", "--env", "nope.env"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr((dir_ / "nope.env").string()));
}

TEST_F(CliTest, UsageErrorsExitWith2) {
  EXPECT_EQ(run({}).exit_code, 2);
  EXPECT_EQ(run({"no-such-command"}).exit_code, 2);
  EXPECT_EQ(run({"token"}).exit_code, 2);
  EXPECT_EQ(run({"token", "revoke", "not-a-number"}).exit_code, 2);
  EXPECT_EQ(run({"--help"}).exit_code, 0);
}

TEST_F(CliTest, Version) {
  const Outcome r = run({"version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, ::testing::StartsWith("stowage "));
}

// --- where -------------------------------------------------------------------------------------

TEST_F(CliTest, WhereNamesTheEnvFileAndDataPathButNoSecret) {
  const std::string secret(kSentinel);
  write(".env", "DATA_PATH=my-data\nSTORAGE_SECRET_KEY=" + secret +
                    "\nDATABASE_URL=postgresql://stowage:" + secret + "@db.internal/stowage\n");
  const Outcome r = run({"where"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr((dir_ / ".env").string()));
  EXPECT_THAT(r.out, HasSubstr((dir_ / "my-data").string()));
  EXPECT_THAT(r.out, HasSubstr("postgresql://stowage:***@db.internal/stowage"));
  EXPECT_THAT(r.out, HasSubstr((dir_ / "remote_links.yml").string()));
  EXPECT_THAT(r.out, HasSubstr("127.0.0.1:8080"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(secret)));
}

TEST_F(CliTest, WhereSaysHowTheFileWasChosen) {
  write(".env", "DATA_PATH=from-dot-env\n");
  const fs::path other = write("other.env", "DATA_PATH=from-other\n");
  const Outcome by_variable = run({"where"}, {{"STOWAGE_ENV_FILE", other.string()}});
  EXPECT_EQ(by_variable.exit_code, 0) << by_variable.err;
  EXPECT_THAT(by_variable.out, HasSubstr(other.string() + " (from $STOWAGE_ENV_FILE)"));
  EXPECT_THAT(by_variable.out, HasSubstr((dir_ / "from-other").string()));

  const Outcome by_option = run({"--env", "other.env", "where"});
  EXPECT_THAT(by_option.out, HasSubstr(other.string() + " (from --env)"));

  fs::remove(dir_ / ".env");
  const Outcome defaults = run({"where"});
  EXPECT_THAT(defaults.out, HasSubstr("none (defaults)"));
  EXPECT_THAT(defaults.out, HasSubstr((dir_ / "data").string()));
}

// --- config check ----------------------------------------------------------------------------

TEST_F(CliTest, ConfigCheckPassesOnAFreshDirectory) {
  write(".env", "STORAGE_BUCKET_PREFIX=acme\n");
  const Outcome r = run({"config", "check"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("check"));
  EXPECT_THAT(r.out, HasSubstr("bucket acme-public"));
  EXPECT_THAT(r.out, HasSubstr("bucket acme-private"));
  EXPECT_THAT(r.out, Not(HasSubstr("FAIL")));
}

TEST_F(CliTest, ConfigCheckFailsWhenDataPathIsAFile) {
  write("not-a-dir", "");
  write(".env", "DATA_PATH=not-a-dir\n");
  const Outcome r = run({"config", "check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("FAIL"));
}

TEST_F(CliTest, ConfigCheckOfAnUnreachableRemoteProviderSaysWhy) {
  write(".env",
        "STORAGE_PROVIDER=minio\nSTORAGE_ENDPOINT=http://127.0.0.1:9\n"
        "STORAGE_ACCESS_KEY=AK\nSTORAGE_SECRET_KEY=" +
            std::string(kSentinel) + "\nSTORAGE_BUCKET_PREFIX=probe\n");
  const Outcome r = run({"config", "check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("probe-public"));
  EXPECT_THAT(r.out, HasSubstr("FAIL"));
  EXPECT_THAT(r.out, HasSubstr("connect"));
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kSentinel)));
}

TEST_F(CliTest, ConfigCheckProbesEveryLinkConnection) {
  fs::create_directories(dir_ / "pics");
  write(".env", "DATA_PATH=data\n");
  write("remote_links.yml", "pics:\n  provider: fs\n  path: " + (dir_ / "pics").string() +
                                "\n  storage_id: pics\n"
                                "cars:\n  provider: minio\n  endpoint: http://127.0.0.1:9\n"
                                "  access_key: AK\n  secret_key: " +
                                std::string(kSentinel) + "\n  buckets: [cars-2020]\n");
  const Outcome r = run({"config", "check"});
  EXPECT_EQ(r.exit_code, 1);
  const auto rows = lines_of(r.out);
  bool fs_ok = false, s3_failed = false;
  for (const auto& row : rows) {
    fs_ok = fs_ok ||
            (row.find("fs://pics") != std::string::npos && row.find(" ok ") != std::string::npos);
    s3_failed = s3_failed || (row.find("minio://cars-2020") != std::string::npos &&
                              row.find("FAIL") != std::string::npos);
  }
  EXPECT_TRUE(fs_ok) << r.out;
  EXPECT_TRUE(s3_failed) << r.out;
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(kSentinel)));
  // A malformed file is one clear failure.
  write("remote_links.yml", "cars:\n  provider: dropbox\n  buckets: [x]\n");
  const Outcome bad = run({"config", "check"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.out, HasSubstr("dropbox"));
}

// --- tokens (need the SQLite catalog) ----------------------------------------------------------

TEST_F(CliTest, TokenCreateListRevoke) {
  write(".env", "DATA_PATH=data\n");
  const Outcome created = run({"token", "create", "--name", "ci-label"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto lines = lines_of(created.out);
  ASSERT_EQ(lines.size(), 1u) << created.out;
  const std::string secret = lines[0];
  EXPECT_GE(secret.size(), 32u);
  EXPECT_EQ(secret.find(' '), std::string::npos);
  // The empty catalog was bootstrapped, as `serve` does.
  EXPECT_TRUE(fs::exists(dir_ / "data" / "admin-token"));
  EXPECT_EQ(fs::status(dir_ / "data" / "admin-token").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  const Outcome listed = run({"token", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_THAT(listed.out, Not(HasSubstr(secret)));
  const auto row = token_row(listed.out, "ci-label");
  ASSERT_EQ(row.size(), 6u) << listed.out;  // id user name created last-used revoked
  EXPECT_EQ(row[1], "admin");
  EXPECT_EQ(row[5], "no");

  const Outcome revoked = run({"token", "revoke", row[0]});
  EXPECT_EQ(revoked.exit_code, 0) << revoked.err;
  const Outcome after = run({"token", "list"});
  EXPECT_EQ(token_row(after.out, "ci-label").back(), "yes") << after.out;
}

TEST_F(CliTest, LinksImportAddsEachLinkOnceAndReportsBadLines) {
  // A 1x1 PNG.
  const std::string png = stowage::io::from_base64(
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJg"
      "gg==");
  fs::create_directories(dir_ / "pictures" / "persons");
  std::ofstream(dir_ / "pictures" / "persons" / "a.png", std::ios::binary) << png;
  write("remote_links.yml", "pictures:\n  provider: fs\n  path: " + (dir_ / "pictures").string() +
                                "\n  storage_id: pics\n");
  write(".env", "DATA_PATH=data\nSTORAGE_BUCKET_PREFIX=clitest\n");
  ASSERT_EQ(run({"token", "create"}).exit_code, 0);  // bootstraps the catalog and user admin
  stowage::catalog::Id dataset = 0;
  {
    auto catalog = stowage::catalog::Catalog::open_sqlite(dir_ / "data" / "stowage.db").value();
    auto ws = catalog->list_workspaces(1, {}).value().entities.at(0);
    stowage::catalog::Project project;
    project.workspace_id = ws.id;
    project.team_id = ws.team_id;
    project.name = "p";
    project.type = "images";
    auto created = catalog->create_project(project).value();
    stowage::catalog::Dataset d;
    d.project_id = created.id;
    d.name = "d";
    dataset = catalog->create_dataset(d).value().id;
  }
  write("links.txt", "# one good, one bad\nfs://pics/persons/a.png\n\nfs://pics/../escape.png\n");
  const Outcome first = run({"links", "import", "links.txt", "--dataset", std::to_string(dataset)});
  EXPECT_EQ(first.exit_code, 1) << first.out << first.err;  // a line failed
  EXPECT_THAT(first.out, HasSubstr("1 added, 0 already there, 1 failed"));
  EXPECT_THAT(first.out, HasSubstr("fs://pics/persons/a.png"));
  const Outcome again = run({"links", "import", "links.txt", "--dataset", std::to_string(dataset)});
  EXPECT_THAT(again.out, HasSubstr("0 added, 1 already there, 1 failed"));
  const Outcome missing = run({"links", "import", "nope.txt", "--dataset", "1"});
  EXPECT_EQ(missing.exit_code, 2);
}

TEST_F(CliTest, TokenErrors) {
  write(".env", "DATA_PATH=data\n");
  const Outcome unknown_user = run({"token", "create", "--user", "nobody"});
  EXPECT_EQ(unknown_user.exit_code, 2);
  EXPECT_EQ(unknown_user.out, "");
  EXPECT_THAT(unknown_user.err, HasSubstr("nobody"));

  const Outcome unknown_token = run({"token", "revoke", "987654"});
  EXPECT_EQ(unknown_token.exit_code, 1);
  EXPECT_THAT(unknown_token.err, HasSubstr("987654"));
}

}  // namespace

namespace {

// Issue 17 from the command line: team files, links sync of an fs:// folder, fsck and gc.
TEST_F(CliTest, FilesSyncFsckAndGcWorkFromTheCommandLine) {
  const std::string png = stowage::io::from_base64(
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJg"
      "gg==");
  fs::create_directories(dir_ / "pictures" / "cams");
  std::ofstream(dir_ / "pictures" / "cams" / "a.png", std::ios::binary) << png;
  std::ofstream(dir_ / "pictures" / "cams" / "b.png", std::ios::binary) << png;
  std::ofstream(dir_ / "pictures" / "cams" / "notes.txt") << "not an image";
  write("remote_links.yml", "pictures:\n  provider: fs\n  path: " + (dir_ / "pictures").string() +
                                "\n  storage_id: pics\n");
  write(".env", "DATA_PATH=data\nSTORAGE_BUCKET_PREFIX=clitest\n");
  ASSERT_EQ(run({"token", "create"}).exit_code, 0);

  // Team files: put, ls, get, a hostile path, rm.
  std::string weights(3 << 20, '\0');
  for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<char>(i * 31 + 7);
  std::ofstream(dir_ / "weights.bin", std::ios::binary) << weights;
  const Outcome put = run({"files", "put", "weights.bin", "/models/run1/"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_THAT(put.out, HasSubstr("/models/run1/weights.bin"));
  const Outcome ls = run({"files", "ls", "/models/", "-r"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_THAT(ls.out, HasSubstr("/models/run1/weights.bin"));
  EXPECT_THAT(ls.out, HasSubstr(std::to_string(weights.size())));
  fs::create_directories(dir_ / "restore");
  ASSERT_EQ(run({"files", "get", "/models/run1/weights.bin", "restore"}).exit_code, 0);
  EXPECT_TRUE(read_file(dir_ / "restore" / "weights.bin") == weights);
  const Outcome hostile = run({"files", "put", "weights.bin", "/models/../../../etc/x"});
  EXPECT_EQ(hostile.exit_code, 2);
  EXPECT_THAT(hostile.err, HasSubstr("'..'"));
  EXPECT_EQ(run({"files", "rm", "/models/"}).exit_code, 0);
  EXPECT_EQ(run({"files", "get", "/models/run1/weights.bin", "restore"}).exit_code, 1);

  stowage::catalog::Id dataset = 0;
  {
    auto catalog = stowage::catalog::Catalog::open_sqlite(dir_ / "data" / "stowage.db").value();
    auto ws = catalog->list_workspaces(1, {}).value().entities.at(0);
    stowage::catalog::Project project;
    project.workspace_id = ws.id;
    project.team_id = ws.team_id;
    project.name = "p";
    project.type = "images";
    auto created = catalog->create_project(project).value();
    stowage::catalog::Dataset d;
    d.project_id = created.id;
    d.name = "d";
    dataset = catalog->create_dataset(d).value().id;
  }
  // links sync: two images added, the text file skipped; a rerun adds nothing.
  const Outcome sync =
      run({"links", "sync", "fs://pics/cams/", "--dataset", std::to_string(dataset)});
  EXPECT_EQ(sync.exit_code, 0) << sync.out << sync.err;
  EXPECT_THAT(sync.out, HasSubstr("2 added"));
  EXPECT_THAT(sync.out, HasSubstr("1 skipped"));
  const Outcome rerun = run({"links", "sync", "fs://pics/cams/", "--dataset",
                             std::to_string(dataset), "--include", "*.png"});
  EXPECT_THAT(rerun.out, HasSubstr("0 added  2 already there"));

  // fsck: clean, then a linked file gone is a problem (exit 1); gc: nothing to reclaim.
  const Outcome clean = run({"fsck", "--json"});
  EXPECT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_THAT(clean.out, HasSubstr("\"problems\":0"));
  fs::remove(dir_ / "pictures" / "cams" / "b.png");
  const Outcome broken = run({"fsck"});
  EXPECT_EQ(broken.exit_code, 1) << broken.out;
  EXPECT_THAT(broken.out, HasSubstr("link-gone"));
  const Outcome gc = run({"gc", "--dry-run", "--grace", "0"});
  EXPECT_EQ(gc.exit_code, 0) << gc.err;
  EXPECT_THAT(gc.out, HasSubstr("0 unused blobs"));
  EXPECT_EQ(run({"gc", "--grace", "soon"}).exit_code, 2);
}

}  // namespace
// ---- leases: one run of a migration at a time (issue 14) ----------------------------------------

namespace lease_tests {

using std::chrono::milliseconds;

class CliLeaseTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    write(".env", "DATA_PATH=data\nSTORAGE_BUCKET_PREFIX=clitest\n");
    catalog_ = stowage::catalog::Catalog::open_sqlite(dir_ / "data" / "stowage.db").value();
  }
  void TearDown() override {
    catalog_.reset();
    CliTest::TearDown();
  }
  std::unique_ptr<stowage::catalog::Catalog> catalog_;
};

TEST_F(CliLeaseTest, MigrateProjectIsRefusedWhileAnotherRunHoldsItsLease) {
  // Another run, e.g. on another server of the same catalog, is migrating project 5.
  catalog_->take_lease("migrate project 5", "build-7 pid 4242", milliseconds(60000)).value();
  const Outcome refused = run({"migrate", "project", "5", "--to", "local"});
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("migrate project 5 is already running"));
  EXPECT_THAT(refused.err, HasSubstr("build-7 pid 4242"));
  // Another project is not concerned: that run gets past the lease (and finds no project 6).
  const Outcome other = run({"migrate", "project", "6", "--to", "local"});
  EXPECT_NE(other.exit_code, 3) << other.err;
  EXPECT_THAT(other.err, HasSubstr("not found"));
}

TEST_F(CliLeaseTest, MigrateProjectTakesOverTheLeaseOfARunThatDied) {
  // A run that died stops renewing its lease (here one of 50 ms).
  catalog_->take_lease("migrate project 5", "crashed pid 1", milliseconds(50)).value();
  std::this_thread::sleep_for(milliseconds(150));
  const Outcome taken = run({"migrate", "project", "5", "--to", "local"});
  EXPECT_NE(taken.exit_code, 3) << taken.err;
  EXPECT_THAT(taken.err, Not(HasSubstr("already running")));
  // The run released the lease when it ended: the next one may go.
  catalog_->take_lease("migrate project 5", "next pid 2", milliseconds(60000)).value();
}

TEST_F(CliLeaseTest, ARunKilledOnThisMachineIsTakenOverAtOnce) {
  // A run of this machine that was SIGKILLed: its pid is gone, its lease still runs.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  const std::string dead = std::string(host) + " pid " + std::to_string(child);
  catalog_->take_lease("migrate project 5", dead, milliseconds(60000)).value();
  const Outcome taken = run({"migrate", "project", "5", "--to", "local"});
  EXPECT_NE(taken.exit_code, 3) << taken.err;
  EXPECT_THAT(taken.err, HasSubstr("took over the lease on migrate project 5 from " + dead));
  // A live holder of this machine (this test) is not taken over.
  const std::string alive = std::string(host) + " pid " + std::to_string(::getpid());
  catalog_->take_lease("migrate project 5", alive, milliseconds(60000)).value();
  EXPECT_EQ(run({"migrate", "project", "5", "--to", "local"}).exit_code, 3);
}

TEST_F(CliLeaseTest, MigrateStorageIsRefusedWhileAnotherRunHoldsItsLease) {
  catalog_->take_lease("migrate storage", "build-7 pid 4242", milliseconds(60000)).value();
  const Outcome refused = run({"migrate", "storage", "--to", "target.env"});
  EXPECT_EQ(refused.exit_code, 3) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("migrate storage is already running"));
  EXPECT_THAT(refused.err, HasSubstr("build-7 pid 4242"));
  catalog_->release_lease("migrate storage", "build-7 pid 4242").value();
  const Outcome free = run({"migrate", "storage", "--to", "target.env"});
  EXPECT_NE(free.exit_code, 3) << free.err;  // on to the target, which does not exist
  EXPECT_THAT(free.err, Not(HasSubstr("already running")));
}

TEST_F(CliLeaseTest, ALeaseTtlBelowOneSecondIsAUsageError) {
  const Outcome r = run({"migrate", "project", "5", "--to", "local", "--lease", "0s"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--lease"));
}

}  // namespace lease_tests
