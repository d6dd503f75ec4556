// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>

#include "stowage/config/config.hpp"

/// The storage-keeping subcommands of issue 17: `stowage files ls|put|get|rm` (team files),
/// `stowage links sync`, `stowage fsck` and `stowage gc`. They act on the instance directly, as
/// user admin, like `links import`. Registered on the app in one call, so that main.cpp only
/// adds two lines for them.
namespace stowage::cli {

class StorageCommands {
 public:
  /// Adds the subcommands to `app` (and `sync` under the existing `links` subcommand).
  StorageCommands(CLI::App& app, CLI::App& links);
  ~StorageCommands();
  /// Runs the one that was parsed and returns its exit code; nullopt when none was.
  std::optional<int> run(config::Config& config);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace stowage::cli
