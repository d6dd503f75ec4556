// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "stowage/auth/credentials.hpp"
#include "stowage/config/config.hpp"
#include "stowage/http/retry.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/object_store.hpp"

/// The S3-compatible provider (`STORAGE_PROVIDER=minio`): AWS S3, MinIO, Ceph RADOS Gateway.
namespace stowage::store::s3 {

/// How multipart uploads are cut. S3's own limits (AWS S3 User Guide, "Amazon S3 multipart
/// upload limits"): parts of 5 MiB to 5 GiB, the last one smaller, at most 10,000 parts.
struct PartLimits {
  /// The first part's size, and the single-PUT threshold: an object that fits in one part is
  /// sent with one PutObject.
  std::uint64_t min_part_bytes = 8ull << 20;
  std::uint64_t max_part_bytes = 5ull << 30;
  std::uint64_t max_parts = 10'000;
  /// With an unknown size the part size doubles every this many parts, so that 10,000 parts
  /// reach far beyond any object (8 MiB x 500 x (1 + 2 + 4 + ...)).
  std::uint64_t grow_every_parts = 500;
};

/// A pure plan: what size part `n` (1-based) has.
struct PartPlan {
  std::uint64_t first_part_bytes = 0;
  bool grows = false;  ///< size unknown: doubles every grow_every_parts
  std::uint64_t grow_every_parts = 500;
  std::uint64_t max_part_bytes = 5ull << 30;

  std::uint64_t part_bytes(std::uint64_t part_number) const;
};

/// One PUT below min_part_bytes; else part = max(min part, ceil(size / max_parts)) rounded up
/// to a MiB, so that no upload needs more than max_parts parts.
PartPlan plan_parts(std::optional<std::uint64_t> size_hint, const PartLimits& limits);

/// Bytes of part buffers in flight, shared by every writer of a process: a writer whose part
/// would exceed it waits until others finish.
class ByteBudget {
 public:
  explicit ByteBudget(std::uint64_t bytes) : total_(bytes), left_(bytes) {}
  /// Blocks until `bytes` (clamped to the total) are free; returns what was taken.
  std::uint64_t acquire(std::uint64_t bytes);
  void release(std::uint64_t bytes);
  std::uint64_t in_use() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t total_;
  std::uint64_t left_;
};

/// Where the S3 service is, parsed from STORAGE_ENDPOINT / STORAGE_PORT.
struct Endpoint {
  std::string scheme = "https";
  std::string host;                   ///< no port, no scheme
  std::optional<std::uint16_t> port;  ///< unset: the scheme's default
  bool is_aws = false;                ///< *.amazonaws.com: virtual-hosted by default
  bool is_ip = false;                 ///< an IP literal: path style always

  /// `endpoint` as users write it: `s3.amazonaws.com` (https), `https://minio:9000`,
  /// `127.0.0.1` with port 9000 (http: a custom port without a scheme is taken as plain http,
  /// as MinIO and Ceph serve by default; 443 means https).
  static Result<Endpoint> parse(std::string_view endpoint, std::optional<std::uint16_t> port);
  /// "host" or "host:port" when the port is not the scheme's default.
  std::string authority(std::string_view host_name) const;
};

struct S3Options {
  Endpoint endpoint;
  std::string region = "us-east-1";
  /// Path style (`host/bucket/key`) even where virtual-hosted style would be used.
  bool force_path_style = false;
  std::shared_ptr<auth::CredentialsProvider> credentials;
  /// Send every request to this address instead of resolving the host (tests reach
  /// `<bucket>.s3.localhost` on 127.0.0.1 this way). Empty: resolve normally.
  std::string connect_address;
  /// Virtual-hosted style (`bucket.host/key`) on a custom endpoint too, for servers configured
  /// with a DNS name (radosgw's `rgw dns name`, MinIO's MINIO_DOMAIN). AWS uses it anyway.
  bool virtual_hosted_style = false;

  PartLimits parts;
  /// Parts of one writer being uploaded at once; a write() blocks while this many are in flight.
  std::size_t max_parts_in_flight = 4;
  /// The process-wide budget of part bytes in flight; null: a store-wide 256 MiB budget.
  std::shared_ptr<ByteBudget> budget;
  /// Multipart uploads initiated longer ago are aborted by abort_stale_uploads().
  std::chrono::seconds stale_upload_age{24 * 3600};
  /// Buckets whose stale uploads a background thread aborts, at open and then every
  /// housekeeping_interval (from_config() names the instance's two buckets). Empty: none.
  std::vector<std::string> housekeeping_buckets;
  std::chrono::seconds housekeeping_interval{3600};

  http::RetryPolicy retry;
  auth::Clock clock = auth::system_clock();

  /// The store of a configuration's STORAGE_* variables: endpoint, port, region, path style,
  /// static keys or STORAGE_IAM_ROLE (instance metadata at $AWS_EC2_METADATA_SERVICE_ENDPOINT
  /// when `environment` sets it).
  static Result<S3Options> from_config(const config::Config& config,
                                       std::shared_ptr<http::Transport> transport,
                                       const std::map<std::string, std::string>& environment);
};

/// A multipart upload left in a bucket (by a crash, or in progress).
struct PendingUpload {
  std::string key;
  std::string upload_id;
  std::chrono::system_clock::time_point initiated{};
};

/// An ObjectStore over an S3-compatible service. Thread-safe.
class S3Store final : public ObjectStore {
 public:
  static Result<std::unique_ptr<S3Store>> open(S3Options options,
                                               std::shared_ptr<http::Transport> transport);
  ~S3Store() override;

  std::string_view name() const override { return "s3"; }
  const Capabilities& capabilities() const override { return capabilities_; }
  Result<ObjectInfo> stat(const ObjectPath& path) override;
  Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& path,
                                                const ReadOptions& options) override;
  Result<std::unique_ptr<io::RandomAccessReader>> open_random(const ObjectInfo& info) override;
  Result<std::unique_ptr<Writer>> open_write(const ObjectPath& path,
                                             const WriteOptions& options) override;
  Result<ListPage> list(const ObjectPath& prefix, const ListOptions& options) override;
  Status remove(const ObjectPath& path) override;

  /// Like open_write(), but continues the newest multipart upload left at `path` (by a crash):
  /// a part whose number, size and MD5 (its ETag) match what was already uploaded is not sent
  /// again. Needs `options.size_hint` (the plan must be the one of the interrupted upload).
  Result<std::unique_ptr<Writer>> open_write_resuming(const ObjectPath& path,
                                                      const WriteOptions& options);

  /// Multipart uploads in progress in `bucket` under `prefix` (ListMultipartUploads, all pages).
  Result<std::vector<PendingUpload>> list_uploads(std::string_view bucket, std::string_view prefix);
  /// Housekeeping: aborts the uploads under `prefix` initiated more than
  /// options.stale_upload_age ago; returns how many. This is why the docs ask for
  /// s3:ListBucketMultipartUploads.
  Result<std::size_t> abort_stale_uploads(std::string_view bucket, std::string_view prefix = {});

  /// Checks that `bucket` exists and the keys are accepted (HeadBucket); errors in plain words:
  /// unreachable endpoint, wrong key, missing bucket, clock skew.
  Status probe_bucket(std::string_view bucket);

  /// A presigned GET URL valid for `expires`. A secret: never log it.
  Result<std::string> presign_get(const ObjectPath& path, std::chrono::seconds expires);

  /// The region requests to `bucket` are signed for (STORAGE_REGION, or what S3 named since).
  std::string region_of(std::string_view bucket) const;

  /// Internal: one request, signed, retried, errors translated (used by the writer and readers).
  struct Call;
  Result<http::Response> send(const Call& call, std::uint64_t max_body = 16 << 20);
  Result<std::unique_ptr<http::ResponseStream>> open_stream(const Call& call);
  http::Transport& transport() { return *transport_; }
  const S3Options& options() const { return options_; }
  ByteBudget& budget() { return *budget_; }

 private:
  S3Store(S3Options options, std::shared_ptr<http::Transport> transport);
  Result<http::Request> prepare(const Call& call);
  Result<std::unique_ptr<Writer>> make_writer(const ObjectPath& path, const WriteOptions& options,
                                              bool resume);

  void housekeeping_loop();

  S3Options options_;
  std::shared_ptr<http::Transport> transport_;
  std::mutex housekeeping_mutex_;
  std::condition_variable housekeeping_cv_;
  bool stopping_ = false;
  std::thread housekeeping_;
  std::shared_ptr<ByteBudget> budget_;
  Capabilities capabilities_;
  mutable std::mutex regions_mutex_;
  std::map<std::string, std::string, std::less<>> regions_;  // bucket -> region S3 named
};

/// A request to S3, before signing.
struct S3Store::Call {
  std::string op;  ///< "PutObject", for messages
  std::string method = "GET";
  std::string bucket;
  std::string key;                                         ///< empty for bucket-level operations
  std::vector<std::pair<std::string, std::string>> query;  ///< decoded
  std::vector<http::Header> headers;
  std::span<const std::byte> body;
  /// Hex SHA-256 of the body; computed when empty.
  std::string payload_hash;
};

}  // namespace stowage::store::s3
