// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "stowage/base/error.hpp"

namespace stowage::uri {

/// The kinds of link Stowage resolves. `s3://` and `minio://` are both S3-compatible stores;
/// `google://` and `gcs://` are both Google Cloud Storage.
enum class Scheme { S3, Azure, Google, Fs, Http, Https };

/// The provider names of remote_links.yml for a scheme: "minio", "azure", "google", "fs";
/// empty for http(s).
std::string_view provider_of(Scheme scheme) noexcept;

/// A parsed link: `<scheme>://<authority>/<key>`. For cloud and fs links the authority is the
/// bucket (container, storage id) and the key everything after its '/', verbatim: a key may hold
/// '?', '#', '%', '//' or end in '/', as object keys can. For http(s) links `url` is the whole
/// link and authority/key are the host and path.
struct Locator {
  Scheme scheme = Scheme::Https;
  std::string scheme_text;  ///< as written, lower-cased: "s3", "minio", "gcs", ...
  std::string authority;
  std::string key;
  std::string url;  ///< the link as given

  /// `scheme_text://authority/key`; a public URL as given.
  std::string to_string() const;
  /// The link for messages and logs: to_string(), but a public URL's query and fragment (a
  /// presigned URL's signature, a SAS) shown as "?...", so that no error carries them.
  std::string to_display() const;
  bool is_cloud() const noexcept {
    return scheme == Scheme::S3 || scheme == Scheme::Azure || scheme == Scheme::Google;
  }

  /// Parses a link. InvalidArgument (naming the link) for an unknown scheme, a missing bucket,
  /// an empty key, or control characters. Bucket and key syntax is checked later by the store.
  static Result<Locator> parse(std::string_view link);
  /// Like parse(), but the key may be empty: a prefix to list ("s3://bucket/" or
  /// "fs://storage/dir/").
  static Result<Locator> parse_prefix(std::string_view link);

 private:
  static Result<Locator> parse_any(std::string_view link, bool allow_empty_key);
};

}  // namespace stowage::uri
