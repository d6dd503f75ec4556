// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "stowage/auth/gcp_token.hpp"
#include "stowage/base/redacted.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/gcs/gcs_options.hpp"
#include "stowage/store/object_store.hpp"

namespace stowage::store::gcs {

class GcsStore;

/// A writer of one GCS object. Up to GcsOptions::chunk_bytes it buffers and commit() uploads in
/// one request; beyond, it opens a resumable session and sends full chunks as they fill, so
/// memory stays at one chunk. An upload interrupted by a crash resumes through
/// GcsStore::resume_write() with the session URI.
class GcsWriter final : public Writer {
 public:
  ~GcsWriter() override;
  Status write(std::span<const std::byte> bytes) override;
  Result<ObjectInfo> commit() override;
  /// Cancels the resumable session, if one was opened (the server forgets its bytes).
  Status abort() override;

  /// The resumable session, once one is open: a capability that lets anyone holding it finish
  /// the upload (no token needed), so it is a secret. Persist it to resume after a crash.
  const std::optional<Redacted<>>& session_uri() const { return session_; }
  /// Bytes the server has confirmed; the next write() continues from here.
  std::uint64_t persisted_bytes() const { return persisted_; }
  /// Opens the resumable session now instead of at the first full chunk.
  Status start_session();

 private:
  friend class GcsStore;
  GcsWriter(GcsStore& store, ObjectPath path, WriteOptions options);
  /// Sends the buffer's whole quanta (or, when `final`, everything and the total).
  Result<std::optional<ObjectInfo>> send_chunk(bool final);
  /// Asks the session how many bytes it holds (`Content-Range: bytes */*`); drops those bytes
  /// from the buffer. Returns the object when the session is already finished.
  Result<std::optional<ObjectInfo>> query_session();
  /// Drops from the buffer's front the bytes up to the server's offset `persisted`.
  Status acknowledge(std::uint64_t persisted);
  Error closed_error(std::string_view op) const;

  GcsStore& store_;
  ObjectPath path_;
  WriteOptions options_;
  std::vector<std::byte> buffer_;  ///< bytes after persisted_ not yet confirmed
  std::uint64_t persisted_ = 0;
  std::optional<Redacted<>> session_;
  std::optional<ObjectInfo> finished_;  ///< a reattached session that had already finished
  bool committed_ = false;
  bool aborted_ = false;
  /// Where the session is recorded for a later process (WriteOptions::resume_id); empty: not.
  std::filesystem::path session_file_;
  /// Bytes of the caller's stream that a continued session already holds: dropped on write.
  std::uint64_t skip_ = 0;
  /// Records the session in session_file_; forgets it when the upload ends.
  Status record_session() const;
  void forget_session() const;
};

/// Google Cloud Storage through its JSON API (https://cloud.google.com/storage/docs/json_api),
/// authenticated with a service account's OAuth tokens. The generation is the etag: reads pinned
/// to an etag send ifGenerationMatch. Thread-safe; every method blocks.
class GcsStore final : public ObjectStore {
 public:
  /// Reads the service-account key file and prepares the token source; no network. `transport`
  /// defaults to libcurl.
  static Result<std::unique_ptr<GcsStore>> open(GcsOptions options,
                                                std::shared_ptr<http::Transport> transport = {});
  /// With a token source of the caller's (tests).
  static Result<std::unique_ptr<GcsStore>> open(GcsOptions options,
                                                std::shared_ptr<http::Transport> transport,
                                                std::shared_ptr<auth::TokenSource> tokens);

  std::string_view name() const override { return "gcs"; }
  const Capabilities& capabilities() const override { return capabilities_; }
  Result<ObjectInfo> stat(const ObjectPath& path) override;
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& path,
                                                const ReadOptions& options) override;
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(const ObjectInfo& info) override;
  Result<std::unique_ptr<Writer>> open_write(const ObjectPath& path,
                                             const WriteOptions& options) override;
  Result<ListPage> list(const ObjectPath& prefix, const ListOptions& options) override;
  Status remove(const ObjectPath& path) override;

  /// open_write() with the concrete type, for callers that keep the session URI.
  Result<std::unique_ptr<GcsWriter>> open_gcs_write(const ObjectPath& path,
                                                    const WriteOptions& options);
  /// Reattaches to a resumable session that an earlier writer (perhaps in a process that died)
  /// opened for `path`: asks the server how many bytes it holds; the caller continues writing
  /// from the writer's persisted_bytes(). NotFound when the session expired or was cancelled.
  /// The options given at the session's start (if_none_match) still apply.
  Result<std::unique_ptr<GcsWriter>> resume_write(const ObjectPath& path,
                                                  const Redacted<>& session_uri);

  const GcsOptions& options() const { return options_; }
  auth::TokenSource& tokens() { return *tokens_; }

 private:
  friend class GcsWriter;
  friend class GcsReader;
  friend class GcsRandomReader;
  GcsStore(GcsOptions options, std::shared_ptr<http::Transport> transport,
           std::shared_ptr<auth::TokenSource> tokens);

  /// Validates bucket and key (an empty or '/'-ended key only when `prefix`).
  Status check(std::string_view op, const ObjectPath& path, bool prefix) const;
  std::string object_url(const ObjectPath& path) const;
  /// Sends with a bearer token and retries: transport failures, 408/429/5xx, and one 401 after
  /// dropping the token. Any other status comes back as a Response for the caller.
  Result<http::Response> call(std::string_view op, const ObjectPath& path, http::Request request,
                              bool authorize = true);
  /// The same, streaming: the body of a success is left to read.
  Result<std::unique_ptr<http::ResponseStream>> call_stream(std::string_view op,
                                                            const ObjectPath& path,
                                                            http::Request request);
  /// A ranged GET of media; `generation` pins the version.
  Result<std::unique_ptr<http::ResponseStream>> get_media(
      std::string_view op, const ObjectPath& path, std::uint64_t offset,
      std::optional<std::uint64_t> length, const std::optional<std::string>& generation);

  GcsOptions options_;
  std::shared_ptr<http::Transport> transport_;
  std::shared_ptr<auth::TokenSource> tokens_;
  Capabilities capabilities_{
      .atomic_publish = true, .conditional_put = true, .native_files = false};
};

}  // namespace stowage::store::gcs
