// SPDX-License-Identifier: Apache-2.0
#include "support/postgres.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>

#include "stowage/config/config.hpp"

namespace stowage::testing {

namespace {

struct ConnCloser {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultClearer {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};

Result<std::string> run(const std::string& url, const std::string& sql) {
  std::unique_ptr<PGconn, ConnCloser> conn(PQconnectdb(url.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return make_error(ErrorCode::Unavailable,
                      std::string("test postgres: ") + PQerrorMessage(conn.get()));
  }
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<PGresult, ResultClearer> result(PQexec(conn.get(), sql.c_str()));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return make_error(ErrorCode::Internal,
                      "test postgres: " + sql + ": " + PQerrorMessage(conn.get()));
  }
  if (status == PGRES_TUPLES_OK && PQntuples(result.get()) > 0 && PQnfields(result.get()) > 0) {
    return std::string(PQgetvalue(result.get(), 0, 0));
  }
  return std::string();
}

}  // namespace

bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

std::string postgres_server_url(const char* env_var) {
  // As test_server_env_file() finds it (cloud_server.hpp), without the store registry.
  std::string file;
  if (const char* env = std::getenv(env_var); env != nullptr && *env != '\0') {
    file = env;
  } else if (const char* dir = std::getenv("STOWAGE_TEST_SERVERS_DIR"); dir != nullptr) {
    const std::filesystem::path candidate = std::filesystem::path(dir) / "postgres.env";
    if (std::filesystem::exists(candidate)) file = candidate.string();
  }
  if (file.empty()) return {};
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto vars = config::parse_env_text(text);
  if (!vars) return {};
  auto it = vars->find("POSTGRES_URL");
  return it == vars->end() ? std::string() : it->second;
}

ScratchDatabase::ScratchDatabase(std::string server, std::string name)
    : server_(std::move(server)), name_(std::move(name)), url_(server_ + "/" + name_) {}

ScratchDatabase::ScratchDatabase(ScratchDatabase&& other) noexcept
    : server_(std::move(other.server_)),
      name_(std::move(other.name_)),
      url_(std::move(other.url_)) {
  other.name_.clear();
}

Result<ScratchDatabase> ScratchDatabase::create(const std::string& server_url) {
  static std::atomic<unsigned> counter{0};
  std::random_device random;
  const std::string name = "stowage_t" + std::to_string(::getpid()) + "_" +
                           std::to_string(counter++) + "_" + std::to_string(random() % 100000);
  STOWAGE_TRY(run(server_url + "/postgres", "CREATE DATABASE " + name));
  return ScratchDatabase(server_url, name);
}

ScratchDatabase::~ScratchDatabase() {
  if (name_.empty()) return;
  (void)run(server_ + "/postgres", "DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
}

Result<std::string> ScratchDatabase::query(const std::string& sql) const { return run(url_, sql); }

}  // namespace stowage::testing
