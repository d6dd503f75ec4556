// SPDX-License-Identifier: Apache-2.0
// One conformance suite for every ObjectStore provider.
//
// A provider instantiates it from its own test file with a StoreFactory:
//
//   INSTANTIATE_TEST_SUITE_P(Local, StoreConformance,
//                            ::testing::Values(StoreFactory{"local", &make_local_store}),
//                            store_factory_name);
//
// make() is called once per test; it returns a fresh store and two buckets that exist, or an
// Unavailable error when the provider's emulator is not running (the test is then skipped, or
// fails when CI=true). Every test works under its own random key prefix, so buckets may be shared
// between tests and runs; tests remove what they wrote only on a best-effort basis.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "stowage/store/object_store.hpp"

namespace stowage::testing {

/// A store ready for one test.
struct StoreUnderTest {
  std::unique_ptr<store::ObjectStore> store;
  std::string bucket;        ///< exists; the tests write under a random prefix in it
  std::string other_bucket;  ///< exists, distinct from `bucket`
  /// Anything that must outlive the store (a temp folder, an emulator handle); destroyed after it.
  std::shared_ptr<void> keep_alive;
};

/// How to make a store of one provider.
struct StoreFactory {
  std::string name;  ///< the test name suffix: [A-Za-z0-9_] only
  /// A fresh store. Unavailable when the provider's server is not reachable.
  std::function<Result<StoreUnderTest>()> make;
  /// Keys written by the bulk listing test; a slow remote may lower it (it must exceed 2 pages).
  std::size_t bulk_keys = 2500;
};

/// How GoogleTest prints a factory (in test names and ctest's listing): its name, not its bytes.
inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

/// For INSTANTIATE_TEST_SUITE_P: the factory's name.
std::string store_factory_name(const ::testing::TestParamInfo<StoreFactory>& info);

/// The value-parameterized fixture; the tests are in store_conformance.cpp.
class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  store::ObjectStore& store() { return *under_test_.store; }
  const store::Capabilities& caps() { return store().capabilities(); }
  /// The path of `name` under this test's private prefix in the main bucket.
  store::ObjectPath path(std::string_view name) const;
  /// This test's private prefix, ending in '/'.
  const std::string& prefix() const { return prefix_; }
  const std::string& bucket() const { return under_test_.bucket; }
  const std::string& other_bucket() const { return under_test_.other_bucket; }

  /// Writes `bytes` in writes of `chunk` bytes and commits; the commit's info.
  store::ObjectInfo put(const store::ObjectPath& at, std::span<const std::byte> bytes,
                        std::size_t chunk = 1 << 20, const store::WriteOptions& options = {});
  /// put() of a string's bytes.
  store::ObjectInfo put(const store::ObjectPath& at, std::string_view text);
  /// Reads the whole object (or range) through open_read() in reads of `chunk` bytes.
  std::vector<std::byte> get(const store::ObjectPath& at, const store::ReadOptions& options = {},
                             std::size_t chunk = 1 << 20);
  /// Every page of a listing, concatenated; checks the page size limit on the way.
  store::ListPage list_all(const store::ObjectPath& at, store::ListOptions options,
                           std::size_t* pages = nullptr);

 private:
  StoreUnderTest under_test_;
  std::string prefix_;
  std::vector<store::ObjectPath> written_;
};

/// Deterministic bytes: `size` bytes derived from `seed` (different seeds, different bytes).
std::vector<std::byte> pattern_bytes(std::uint64_t seed, std::size_t size);
/// The bytes of a string.
std::vector<std::byte> as_bytes(std::string_view text);

}  // namespace stowage::testing
