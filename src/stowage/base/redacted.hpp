// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>
#include <utility>

namespace stowage {

/// Holds a secret (a key, a token, a SAS). It prints as "***" so that a secret cannot reach a log
/// line or an error message by accident; `reveal()` is the one, greppable, way to read it.
template <class T = std::string>
class Redacted {
 public:
  Redacted() = default;
  explicit Redacted(T value) : value_(std::move(value)) {}

  const T& reveal() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }

  friend std::ostream& operator<<(std::ostream& os, const Redacted&) { return os << "***"; }
  friend bool operator==(const Redacted&, const Redacted&) = default;

 private:
  T value_{};
};

}  // namespace stowage
