// SPDX-License-Identifier: Apache-2.0
#include "support/fault_proxy.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace stowage::testing {
namespace fs = std::filesystem;

FaultProxy::FaultProxy(unsigned short upstream_port, Faults faults) {
  std::string pattern = (fs::temp_directory_path() / "stowage-proxy-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  const std::string script = std::string(STOWAGE_SOURCE_DIR) + "/tests/fakes/fault_proxy.mjs";
  const std::string port_file = (dir_ / "port").string(), log = (dir_ / "log").string();
  const std::string up = std::to_string(upstream_port), fail = std::to_string(faults.fail_every),
                    reset = std::to_string(faults.reset_every);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::execlp("node", "node", script.c_str(), "--upstream", up.c_str(), "--port-file",
             port_file.c_str(), "--log", log.c_str(), "--fail-every", fail.c_str(),
             "--reset-every", reset.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 100 && !fs::exists(port_file); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::ifstream in(port_file);
  int port = 0;
  if (!(in >> port) || port <= 0) throw std::runtime_error("the fault proxy did not start");
  port_ = static_cast<unsigned short>(port);
}

FaultProxy::FaultProxy(unsigned short upstream_port) : FaultProxy(upstream_port, Faults{}) {}

FaultProxy::~FaultProxy() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::vector<FaultProxy::Request> FaultProxy::requests() const {
  std::vector<Request> out;
  std::ifstream in(dir_ / "log");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    Request r;
    if (fields >> r.method >> r.path >> r.body_bytes >> r.outcome) out.push_back(std::move(r));
  }
  return out;
}

std::uint64_t FaultProxy::bytes_up() const {
  std::uint64_t total = 0;
  for (const auto& r : requests()) total += r.body_bytes;
  return total;
}

unsigned FaultProxy::errors_injected() const {
  unsigned n = 0;
  for (const auto& r : requests()) n += r.outcome == "503";
  return n;
}

unsigned FaultProxy::resets_injected() const {
  unsigned n = 0;
  for (const auto& r : requests()) n += r.outcome.starts_with("reset");
  return n;
}

}  // namespace stowage::testing
