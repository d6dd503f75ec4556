// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/s3/s3_store.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <future>
#include <pugixml.hpp>
#include <sstream>

#include "stowage/auth/sigv4.hpp"
#include "stowage/store/s3/s3_internal.hpp"

namespace stowage::store::s3 {
namespace {

using internal::locator;
using internal::s3_error;
using namespace std::chrono_literals;

constexpr std::uint64_t kMiB = 1ull << 20;
/// Part bytes in flight per store when no process budget is given: 4 writers x 4 parts x 8 MiB
/// run at full speed, more wait.
constexpr std::uint64_t kDefaultBudgetBytes = 256 * kMiB;
/// Error bodies are small XML documents; a larger one is not worth reading.
constexpr std::uint64_t kMaxErrorBody = 64 << 10;
/// ListObjectsV2 returns at most 1,000 keys a page (S3 API Reference, ListObjectsV2 MaxKeys).
constexpr std::size_t kMaxListKeys = 1000;
/// The well-known AWS endpoint that is not regional (us-east-1); other regions' buckets are
/// reached at s3.<region>.amazonaws.com.
constexpr std::string_view kAwsGlobalHost = "s3.amazonaws.com";
/// AWS names a bucket's region in a redirect (301 PermanentRedirect, 307) or in a 400
/// AuthorizationHeaderMalformed when the request was signed for another region.
constexpr std::string_view kWrongRegionCode = "AuthorizationHeaderMalformed";

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.begin(), suffix.end(),
                    s.end() - static_cast<std::ptrdiff_t>(suffix.size()),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

std::uint64_t to_u64(std::string_view s) {
  return std::strtoull(std::string(s).c_str(), nullptr, 10);
}

Status validate(const ObjectPath& path) {
  STOWAGE_TRY(validate_bucket(path.bucket));
  STOWAGE_TRY(validate_key(path.key));
  if (path.key.back() == '/') {
    // S3 would store it, but every other store calls it a folder: refuse it alike.
    return make_error(ErrorCode::InvalidArgument,
                      "invalid object key: ends with '/' (a folder, not an object)");
  }
  return {};
}

ObjectInfo info_from_headers(const ObjectPath& path, const std::vector<http::Header>& headers) {
  ObjectInfo info;
  info.path = path;
  if (auto v = http::find_header(headers, "Content-Length")) info.size = to_u64(*v);
  if (auto v = http::find_header(headers, "ETag")) info.etag = std::string(*v);
  if (auto v = http::find_header(headers, "Last-Modified"))
    info.last_modified = internal::parse_time(*v);
  return info;
}

// ---- readers ------------------------------------------------------------------------------------

/// A GET streamed to the caller. A connection that breaks midway is reopened at the next byte
/// with If-Match on the ETag of the first answer: the bytes always come from one version.
class S3Reader final : public io::Reader {
 public:
  S3Reader(S3Store& store, ObjectPath path, std::unique_ptr<http::ResponseStream> stream,
           std::string etag, std::uint64_t offset, std::uint64_t end)
      : store_(store),
        path_(std::move(path)),
        stream_(std::move(stream)),
        etag_(std::move(etag)),
        offset_(offset),
        end_(end),
        start_(offset) {}

  std::optional<std::uint64_t> size() const override { return end_ - start_; }

  Result<std::size_t> read(std::span<std::byte> out) override {
    if (offset_ >= end_ || out.empty()) return std::size_t{0};
    out = out.first(static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), end_ - offset_)));
    for (int attempt = 1;; ++attempt) {
      Result<std::size_t> n = stream_ ? stream_->read(out)
                                      : Result<std::size_t>(make_error(ErrorCode::Unavailable, ""));
      if (n && *n > 0) {
        offset_ += *n;
        return n;
      }
      // A reset, or an end before the announced length: resume where the bytes stopped.
      Error e = n ? make_error(ErrorCode::Unavailable,
                               "GetObject " + locator(path_.bucket, path_.key) +
                                   ": connection closed before the end of the object")
                  : n.error();
      if (n) e.retryable = true;
      if (!e.retryable || attempt >= store_.options().retry.max_attempts) return e;
      store_.options().retry.sleep(store_.options().retry.delay(attempt));
      stream_.reset();
      S3Store::Call call;
      call.op = "GetObject";
      call.bucket = path_.bucket;
      call.key = path_.key;
      call.headers.push_back(
          {"Range", "bytes=" + std::to_string(offset_) + "-" + std::to_string(end_ - 1)});
      if (!etag_.empty()) call.headers.push_back({"If-Match", etag_});
      auto reopened = store_.open_stream(call);
      if (!reopened) {
        if (reopened.error().code == ErrorCode::PreconditionFailed) {
          Error changed = reopened.error();
          changed.message += " (the object changed while it was read)";
          return changed;
        }
        if (!reopened.error().retryable) return reopened.error();
        continue;
      }
      stream_ = std::move(*reopened);
    }
  }

 private:
  S3Store& store_;
  ObjectPath path_;
  std::unique_ptr<http::ResponseStream> stream_;
  std::string etag_;
  std::uint64_t offset_;
  std::uint64_t end_;
  std::uint64_t start_;
};

class EmptyReader final : public io::Reader {
 public:
  Result<std::size_t> read(std::span<std::byte>) override { return std::size_t{0}; }
  std::optional<std::uint64_t> size() const override { return 0; }
};

/// Ranged GETs pinned to one version by If-Match.
class S3RandomReader final : public io::RandomAccessReader {
 public:
  S3RandomReader(S3Store& store, ObjectInfo info) : store_(store), info_(std::move(info)) {}
  std::uint64_t size() const override { return info_.size; }

  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= info_.size || out.empty()) return std::size_t{0};
    const std::uint64_t len = std::min<std::uint64_t>(out.size(), info_.size - offset);
    S3Store::Call call;
    call.op = "GetObject";
    call.bucket = info_.path.bucket;
    call.key = info_.path.key;
    call.headers.push_back(
        {"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + len - 1)});
    if (!info_.etag.empty()) call.headers.push_back({"If-Match", info_.etag});
    STOWAGE_ASSIGN_OR_RETURN(auto response, store_.send(call, len + 1));
    if (response.body.size() != len) {
      return make_error(ErrorCode::Corrupt, "GetObject " + locator(call.bucket, call.key) +
                                                ": asked for " + std::to_string(len) +
                                                " bytes, got " +
                                                std::to_string(response.body.size()));
    }
    std::memcpy(out.data(), response.body.data(), response.body.size());
    return response.body.size();
  }

 private:
  S3Store& store_;
  ObjectInfo info_;
};

// ---- writer -------------------------------------------------------------------------------------

struct CompletedPart {
  std::uint64_t number = 0;
  std::string etag;
};

struct UploadedPart {
  std::uint64_t size = 0;
  std::string etag;
};

/// Streams an object: one PutObject when it fits in the first part, else a multipart upload with
/// at most max_parts_in_flight parts uploading at once, under the store's byte budget.
class S3Writer final : public Writer {
 public:
  S3Writer(S3Store& store, ObjectPath path, WriteOptions options, PartPlan plan)
      : store_(store), path_(std::move(path)), options_(options), plan_(plan) {}

  ~S3Writer() override {
    if (state_ != State::Committed) (void)abort();
  }

  /// Continue this upload: parts already there are checked, not sent again.
  void resume(std::string upload_id, std::map<std::uint64_t, UploadedPart> parts) {
    upload_id_ = std::move(upload_id);
    existing_ = std::move(parts);
  }

  Status write(std::span<const std::byte> bytes) override {
    if (state_ != State::Open) return closed("write");
    while (!bytes.empty()) {
      const std::uint64_t part = plan_.part_bytes(part_number_);
      if (buffer_.size() >= part) {
        if (auto flushed = flush_part(); !flushed) {
          state_ = State::Failed;
          return flushed.error();
        }
        continue;
      }
      if (buffer_.capacity() == 0) buffer_.reserve(std::min<std::uint64_t>(part, 1 << 20));
      const std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), part - buffer_.size()));
      buffer_.insert(buffer_.end(), bytes.begin(),
                     bytes.begin() + static_cast<std::ptrdiff_t>(take));
      total_ += take;
      bytes = bytes.subspan(take);
    }
    return {};
  }

  Result<ObjectInfo> commit() override {
    if (state_ != State::Open) return closed("commit");
    auto done = upload_id_.empty() ? put_whole() : complete();
    if (!done) {
      (void)abort();
      state_ = State::Failed;
      return done.error();
    }
    state_ = State::Committed;
    return done;
  }

  Status abort() override {
    if (state_ == State::Committed || state_ == State::Aborted) return {};
    state_ = State::Aborted;
    drain_in_flight();
    buffer_ = {};
    if (upload_id_.empty()) return {};
    S3Store::Call call = base("AbortMultipartUpload", "DELETE");
    call.query.emplace_back("uploadId", upload_id_);
    upload_id_.clear();
    auto r = store_.send(call);
    if (!r && r.error().code != ErrorCode::NotFound) return r.error();
    return {};
  }

  /// Parts sent to S3 by this writer (not those found already uploaded).
  std::uint64_t parts_sent() const { return parts_sent_; }

 private:
  enum class State { Open, Committed, Aborted, Failed };

  Error closed(std::string_view what) const {
    return make_error(ErrorCode::InvalidArgument,
                      std::string(what) + " " + locator(path_.bucket, path_.key) +
                          ": the writer is already " +
                          (state_ == State::Committed ? "committed" : "closed"));
  }

  S3Store::Call base(std::string op, std::string method) const {
    S3Store::Call call;
    call.op = std::move(op);
    call.method = std::move(method);
    call.bucket = path_.bucket;
    call.key = path_.key;
    return call;
  }

  Result<ObjectInfo> put_whole() {
    S3Store::Call call = base("PutObject", "PUT");
    call.body = buffer_;
    if (options_.if_none_match) call.headers.push_back({"If-None-Match", "*"});
    auto response = store_.send(call);
    if (!response) {
      Error e = response.error();
      if (e.code == ErrorCode::PreconditionFailed && options_.if_none_match) {
        e.code = ErrorCode::AlreadyExists;
      }
      return e;
    }
    ObjectInfo info;
    info.path = path_;
    info.size = total_;
    if (auto etag = response->header("ETag")) info.etag = std::string(*etag);
    info.last_modified = std::chrono::system_clock::now();
    buffer_ = {};
    return info;
  }

  Status create_upload() {
    S3Store::Call call = base("CreateMultipartUpload", "POST");
    call.query.emplace_back("uploads", "");
    STOWAGE_ASSIGN_OR_RETURN(auto response, store_.send(call));
    pugi::xml_document doc;
    doc.load_buffer(response.body.data(), response.body.size());
    upload_id_ = doc.child("InitiateMultipartUploadResult").child_value("UploadId");
    if (upload_id_.empty()) {
      return make_error(ErrorCode::Internal, "CreateMultipartUpload " +
                                                 locator(path_.bucket, path_.key) +
                                                 ": no UploadId in the answer");
    }
    return {};
  }

  /// Hands the full buffer to an upload task; blocks while max parts are in flight or the
  /// budget is spent.
  Status flush_part() {
    if (upload_id_.empty()) STOWAGE_TRY(create_upload());
    const std::uint64_t number = part_number_++;
    auto data = std::make_shared<std::vector<std::byte>>(std::move(buffer_));
    buffer_ = {};
    if (auto it = existing_.find(number);
        it != existing_.end() && it->second.size == data->size() &&
        it->second.etag == "\"" + internal::md5_hex(*data) + "\"") {
      completed_.push_back({number, it->second.etag});
      return {};
    }
    while (in_flight_.size() >= std::max<std::size_t>(1, store_.options().max_parts_in_flight)) {
      STOWAGE_TRY(collect_one());
    }
    const std::uint64_t taken = store_.budget().acquire(data->size());
    ++parts_sent_;
    S3Store::Call call = base("UploadPart", "PUT");
    call.query.emplace_back("partNumber", std::to_string(number));
    call.query.emplace_back("uploadId", upload_id_);
    in_flight_.push_back(std::async(
        std::launch::async,
        [this, call = std::move(call), data, number, taken]() mutable -> Result<CompletedPart> {
          call.body = *data;
          auto r = store_.send(call);
          data.reset();
          store_.budget().release(taken);
          if (!r) return r.error();
          auto etag = r->header("ETag");
          return CompletedPart{number, etag ? std::string(*etag) : ""};
        }));
    return {};
  }

  Status collect_one() {
    auto result = in_flight_.front().get();
    in_flight_.pop_front();
    if (!result) return result.error();
    completed_.push_back(std::move(*result));
    return {};
  }

  void drain_in_flight() {
    while (!in_flight_.empty()) {
      in_flight_.front().wait();
      in_flight_.pop_front();
    }
  }

  Result<ObjectInfo> complete() {
    if (!buffer_.empty()) STOWAGE_TRY(flush_part());
    Status failed;
    while (!in_flight_.empty()) {
      auto one = collect_one();
      if (!one && failed) failed = one.error();
    }
    if (!failed) return failed.error();
    if (options_.if_none_match) {
      // CompleteMultipartUpload takes no If-None-Match on every S3 server (Ceph 16 ignores it):
      // check just before completing. A writer completing in between can still win the race.
      auto existing = store_.stat(path_);
      if (existing) {
        return make_error(ErrorCode::AlreadyExists, "CompleteMultipartUpload " +
                                                        locator(path_.bucket, path_.key) +
                                                        ": an object is already there");
      }
      if (existing.error().code != ErrorCode::NotFound) return existing.error();
    }
    std::sort(completed_.begin(), completed_.end(),
              [](const auto& a, const auto& b) { return a.number < b.number; });
    std::string xml = "<CompleteMultipartUpload>";
    for (const auto& p : completed_) {
      xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>" + p.etag +
             "</ETag></Part>";
    }
    xml += "</CompleteMultipartUpload>";
    S3Store::Call call = base("CompleteMultipartUpload", "POST");
    call.query.emplace_back("uploadId", upload_id_);
    call.headers.push_back({"Content-Type", "application/xml"});
    call.body = std::as_bytes(std::span(xml.data(), xml.size()));
    STOWAGE_ASSIGN_OR_RETURN(auto response, store_.send(call));
    pugi::xml_document doc;
    doc.load_buffer(response.body.data(), response.body.size());
    if (doc.child("Error")) {
      // S3 may answer 200 and report the failure in the body, after a long assembly.
      response.status = 500;
      return s3_error(response, "CompleteMultipartUpload", path_.bucket, path_.key);
    }
    upload_id_.clear();  // done: nothing to abort any more
    ObjectInfo info;
    info.path = path_;
    info.size = total_;
    info.etag = doc.child("CompleteMultipartUploadResult").child_value("ETag");
    info.last_modified = std::chrono::system_clock::now();
    if (info.etag.empty()) {
      if (auto st = store_.stat(path_)) info.etag = st->etag;
    }
    return info;
  }

  S3Store& store_;
  ObjectPath path_;
  WriteOptions options_;
  PartPlan plan_;
  State state_ = State::Open;
  std::vector<std::byte> buffer_;
  std::uint64_t total_ = 0;
  std::uint64_t part_number_ = 1;
  std::string upload_id_;
  std::map<std::uint64_t, UploadedPart> existing_;
  std::deque<std::future<Result<CompletedPart>>> in_flight_;
  std::vector<CompletedPart> completed_;
  std::uint64_t parts_sent_ = 0;
};

}  // namespace

// ---- plans, budget, endpoint
// ---------------------------------------------------------------------

std::uint64_t PartPlan::part_bytes(std::uint64_t part_number) const {
  if (!grows || part_number == 0) return first_part_bytes;
  const std::uint64_t doublings = std::min<std::uint64_t>((part_number - 1) / grow_every_parts, 20);
  return std::min(max_part_bytes, first_part_bytes << doublings);
}

PartPlan plan_parts(std::optional<std::uint64_t> size_hint, const PartLimits& limits) {
  PartPlan plan;
  plan.grow_every_parts = std::max<std::uint64_t>(1, limits.grow_every_parts);
  plan.max_part_bytes = limits.max_part_bytes;
  if (!size_hint) {
    plan.first_part_bytes = limits.min_part_bytes;
    plan.grows = true;
    return plan;
  }
  std::uint64_t part = (*size_hint + limits.max_parts - 1) / limits.max_parts;
  part = (part + kMiB - 1) / kMiB * kMiB;
  plan.first_part_bytes = std::min(limits.max_part_bytes, std::max(limits.min_part_bytes, part));
  return plan;
}

std::uint64_t ByteBudget::acquire(std::uint64_t bytes) {
  bytes = std::min(bytes, total_);
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return left_ >= bytes; });
  left_ -= bytes;
  return bytes;
}

void ByteBudget::release(std::uint64_t bytes) {
  {
    std::lock_guard lock(mutex_);
    left_ += bytes;
  }
  cv_.notify_all();
}

std::uint64_t ByteBudget::in_use() const {
  std::lock_guard lock(mutex_);
  return total_ - left_;
}

Result<Endpoint> Endpoint::parse(std::string_view text, std::optional<std::uint16_t> port) {
  Endpoint ep;
  std::string_view rest = text;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '/')) rest.remove_suffix(1);
  bool has_scheme = false;
  if (rest.starts_with("https://")) {
    ep.scheme = "https";
    rest.remove_prefix(8);
    has_scheme = true;
  } else if (rest.starts_with("http://")) {
    ep.scheme = "http";
    rest.remove_prefix(7);
    has_scheme = true;
  } else if (rest.find("://") != std::string_view::npos) {
    return make_error(ErrorCode::InvalidArgument,
                      "STORAGE_ENDPOINT=\"" + std::string(text) + "\": use http:// or https://");
  }
  rest = rest.substr(0, rest.find('/'));
  // host[:port] or [v6]:port
  std::optional<std::uint16_t> inline_port;
  std::size_t colon = std::string_view::npos;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close != std::string_view::npos && close + 1 < rest.size() && rest[close + 1] == ':') {
      colon = close + 1;
    }
  } else if (std::count(rest.begin(), rest.end(), ':') == 1) {
    colon = rest.find(':');
  }
  if (colon != std::string_view::npos) {
    const long p = std::strtol(std::string(rest.substr(colon + 1)).c_str(), nullptr, 10);
    if (p <= 0 || p > 65535) {
      return make_error(ErrorCode::InvalidArgument,
                        "STORAGE_ENDPOINT=\"" + std::string(text) + "\": bad port");
    }
    inline_port = static_cast<std::uint16_t>(p);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) {
    return make_error(ErrorCode::InvalidArgument,
                      "STORAGE_ENDPOINT is empty; STORAGE_PROVIDER=minio needs the S3 host "
                      "(e.g. s3.amazonaws.com)");
  }
  ep.host = std::string(rest);
  const std::optional<std::uint16_t> chosen = port ? port : inline_port;
  if (!has_scheme) ep.scheme = (!chosen || *chosen == 443) ? "https" : "http";
  const std::uint16_t default_port = ep.scheme == "https" ? 443 : 80;
  if (chosen && *chosen != default_port) ep.port = chosen;
  ep.is_aws = ends_with_ci(ep.host, ".amazonaws.com") || ep.host == "amazonaws.com";
  ep.is_ip = ep.host.find_first_not_of("0123456789.") == std::string::npos ||
             ep.host.front() == '[' || ep.host.find(':') != std::string::npos;
  return ep;
}

std::string Endpoint::authority(std::string_view host_name) const {
  std::string out(host_name);
  if (port) out += ":" + std::to_string(*port);
  return out;
}

Result<S3Options> S3Options::from_config(const config::Config& config,
                                         std::shared_ptr<http::Transport> transport,
                                         const std::map<std::string, std::string>& environment) {
  S3Options o;
  STOWAGE_ASSIGN_OR_RETURN(o.endpoint,
                           Endpoint::parse(config.storage_endpoint, config.storage_port));
  o.region = config.storage_region.empty() ? "us-east-1" : config.storage_region;
  o.force_path_style = config.storage_force_path_style;
  if (!config.storage_iam_role.empty()) {
    auth::ImdsOptions imds;
    imds.endpoint = auth::default_imds_endpoint(environment);
    imds.role = config.storage_iam_role;
    o.credentials = auth::make_imds_credentials(std::move(transport), std::move(imds));
  } else {
    if (config.storage_access_key.empty() || config.storage_secret_key.empty()) {
      return make_error(ErrorCode::InvalidArgument,
                        "STORAGE_PROVIDER=minio needs STORAGE_ACCESS_KEY and STORAGE_SECRET_KEY "
                        "(or STORAGE_IAM_ROLE on AWS)");
    }
    auth::Credentials c;
    c.access_key_id = config.storage_access_key;
    c.secret_access_key = config.storage_secret_key;
    o.credentials = auth::make_static_credentials(std::move(c));
  }
  o.housekeeping_buckets = {config.public_bucket(), config.private_bucket()};
  if (auto it = environment.find("STOWAGE_S3_STALE_UPLOAD_AGE"); it != environment.end()) {
    STOWAGE_ASSIGN_OR_RETURN(o.stale_upload_age, config::parse_duration(it->second));
  }
  return o;
}

// ---- the store ----------------------------------------------------------------------------------

S3Store::S3Store(S3Options options, std::shared_ptr<http::Transport> transport)
    : options_(std::move(options)), transport_(std::move(transport)) {
  budget_ = options_.budget ? options_.budget : std::make_shared<ByteBudget>(kDefaultBudgetBytes);
  capabilities_.atomic_publish = true;
  capabilities_.conditional_put = true;
  capabilities_.native_files = false;
}

S3Store::~S3Store() {
  {
    std::lock_guard lock(housekeeping_mutex_);
    stopping_ = true;
  }
  housekeeping_cv_.notify_all();
  if (housekeeping_.joinable()) housekeeping_.join();
}

void S3Store::housekeeping_loop() {
  std::unique_lock lock(housekeeping_mutex_);
  while (!stopping_) {
    lock.unlock();
    for (const auto& bucket : options_.housekeeping_buckets) {
      // Best effort: a key without s3:ListBucketMultipartUploads only loses the cleanup.
      (void)abort_stale_uploads(bucket);
    }
    lock.lock();
    housekeeping_cv_.wait_for(lock, options_.housekeeping_interval, [&] { return stopping_; });
  }
}

Result<std::unique_ptr<S3Store>> S3Store::open(S3Options options,
                                               std::shared_ptr<http::Transport> transport) {
  if (!options.credentials) {
    return make_error(ErrorCode::InvalidArgument, "S3 store: no credentials");
  }
  if (options.endpoint.host.empty()) {
    return make_error(ErrorCode::InvalidArgument, "S3 store: no endpoint");
  }
  std::unique_ptr<S3Store> store(new S3Store(std::move(options), std::move(transport)));
  if (!store->options_.housekeeping_buckets.empty()) {
    store->housekeeping_ = std::thread([s = store.get()] { s->housekeeping_loop(); });
  }
  return store;
}

std::string S3Store::region_of(std::string_view bucket) const {
  std::lock_guard lock(regions_mutex_);
  if (auto it = regions_.find(bucket); it != regions_.end()) return it->second;
  return options_.region;
}

Result<http::Request> S3Store::prepare(const Call& call) {
  STOWAGE_ASSIGN_OR_RETURN(auto credentials, options_.credentials->get());
  const std::string region = region_of(call.bucket);
  const Endpoint& ep = options_.endpoint;
  std::string host = ep.host;
  if (ep.is_aws && host == kAwsGlobalHost && region != "us-east-1") {
    host = "s3." + region + ".amazonaws.com";
  }
  // Virtual-hosted style on AWS (path style is deprecated there); path style for IP addresses,
  // custom endpoints, or when asked. Dotted names break the TLS wildcard: path style too.
  const bool virtual_hosted = !call.bucket.empty() && !options_.force_path_style &&
                              (ep.is_aws || options_.virtual_hosted_style) && !ep.is_ip &&
                              call.bucket.find('.') == std::string::npos;
  std::string path;
  std::string host_name = host;
  if (virtual_hosted) {
    host_name = call.bucket + "." + host;
    path = "/" + call.key;
  } else {
    path = call.bucket.empty() ? "/" : "/" + call.bucket + (call.key.empty() ? "" : "/" + call.key);
  }
  const std::string authority = ep.authority(host_name);

  auth::sigv4::SignableRequest sr;
  sr.method = call.method;
  sr.path = path;
  sr.query = call.query;
  sr.headers = call.headers;
  sr.headers.push_back({"Host", authority});
  sr.payload_hash = call.payload_hash.empty() ? internal::sha256_hex(call.body) : call.payload_hash;
  auth::sigv4::SigningParams params;
  params.region = region;
  params.service = "s3";
  params.time = options_.clock();
  const std::string authz = auth::sigv4::sign(sr, credentials, params);

  http::Request request;
  request.method = call.method;
  request.url = ep.scheme + "://" + authority + auth::sigv4::canonical_uri(path, false);
  if (!call.query.empty()) request.url += "?" + auth::sigv4::canonical_query(call.query);
  request.headers = std::move(sr.headers);
  request.headers.push_back({"Authorization", authz});
  request.body = call.body;
  if (!options_.connect_address.empty()) {
    request.connect_to.push_back("::" + options_.connect_address + ":");
  }
  return request;
}

Result<http::Response> S3Store::send(const Call& in, std::uint64_t max_body) {
  Call call = in;
  if (call.payload_hash.empty()) call.payload_hash = internal::sha256_hex(call.body);
  bool region_followed = false;
  bool credentials_refreshed = false;
  return http::with_retries(options_.retry, [&]() -> Result<http::Response> {
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(auto request, prepare(call));
      auto response = transport_->send(request, std::max<std::uint64_t>(max_body, kMaxErrorBody));
      if (!response)
        return internal::transport_error(response.error(), call.op, call.bucket, call.key);
      if (response->status >= 200 && response->status < 300) return std::move(*response);
      Error e = s3_error(*response, call.op, call.bucket, call.key);
      if (!region_followed && !call.bucket.empty() &&
          (response->status == 301 || response->status == 307 ||
           e.provider_code == kWrongRegionCode)) {
        if (auto region = internal::region_hint(*response);
            region && *region != region_of(call.bucket)) {
          std::lock_guard lock(regions_mutex_);
          regions_[call.bucket] = *region;
          region_followed = true;
          continue;
        }
      }
      if (!credentials_refreshed && e.provider_code == "ExpiredToken") {
        options_.credentials->invalidate();
        credentials_refreshed = true;
        continue;
      }
      return e;
    }
  });
}

Result<std::unique_ptr<http::ResponseStream>> S3Store::open_stream(const Call& call) {
  return http::with_retries(options_.retry, [&]() -> Result<std::unique_ptr<http::ResponseStream>> {
    STOWAGE_ASSIGN_OR_RETURN(auto request, prepare(call));
    auto stream = transport_->open(request);
    if (!stream) return internal::transport_error(stream.error(), call.op, call.bucket, call.key);
    const long status = (*stream)->status();
    if (status >= 200 && status < 300) return std::move(*stream);
    http::Response response;
    response.status = status;
    response.headers = (*stream)->headers();
    std::vector<std::byte> chunk(16 << 10);
    while (response.body.size() < kMaxErrorBody) {
      auto n = (*stream)->read(chunk);
      if (!n || *n == 0) break;
      response.body.insert(response.body.end(), chunk.begin(),
                           chunk.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    return s3_error(response, call.op, call.bucket, call.key);
  });
}

Result<ObjectInfo> S3Store::stat(const ObjectPath& path) {
  STOWAGE_TRY(validate(path));
  Call call;
  call.op = "HeadObject";
  call.method = "HEAD";
  call.bucket = path.bucket;
  call.key = path.key;
  auto response = send(call);
  if (!response && response.error().provider_code.empty() &&
      (response.error().http_status == 403 || response.error().http_status == 400)) {
    // A HEAD answer has no body, so a wrong key and a missing permission look alike. Ask again
    // with a one-byte GET, whose XML error names the cause (SignatureDoesNotMatch, ...).
    call.method = "GET";
    call.headers.push_back({"Range", "bytes=0-0"});
    auto again = send(call);
    if (!again && !again.error().provider_code.empty()) {
      Error e = again.error();
      return e;
    }
  }
  if (!response) return response.error();
  return info_from_headers(path, response->headers);
}

Result<std::unique_ptr<io::Reader>> S3Store::open_read(const ObjectPath& path,
                                                       const ReadOptions& options) {
  STOWAGE_TRY(validate(path));
  Call call;
  call.op = "GetObject";
  call.bucket = path.bucket;
  call.key = path.key;
  if (options.range) {
    if (options.range->length && *options.range->length == 0) {
      STOWAGE_ASSIGN_OR_RETURN(auto info, stat(path));
      if (options.range->offset >= info.size && info.size > 0) {
        return make_error(
            ErrorCode::RangeNotSatisfiable,
            "GetObject " + locator(path.bucket, path.key) + ": range starts past the end");
      }
      return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
    }
    std::string range = "bytes=" + std::to_string(options.range->offset) + "-";
    if (options.range->length) {
      range += std::to_string(options.range->offset + *options.range->length - 1);
    }
    call.headers.push_back({"Range", range});
  }
  if (options.if_match) call.headers.push_back({"If-Match", *options.if_match});
  auto stream = open_stream(call);
  if (!stream) {
    if (stream.error().code == ErrorCode::RangeNotSatisfiable) {
      // An empty object has no byte to range over; S3 says 416 where the local store says "".
      auto info = stat(path);
      if (info && info->size == 0)
        return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
    }
    return stream.error();
  }
  auto& s = **stream;
  std::uint64_t offset = 0;
  std::uint64_t length = s.size().value_or(0);
  if (auto cr = s.header("Content-Range")) {  // "bytes 100-149/1000"
    const auto sp = cr->find(' ');
    const auto dash = cr->find('-');
    if (sp != std::string_view::npos && dash != std::string_view::npos) {
      offset = to_u64(cr->substr(sp + 1, dash - sp - 1));
    }
  }
  std::string etag = s.header("ETag") ? std::string(*s.header("ETag")) : std::string();
  return std::unique_ptr<io::Reader>(
      std::make_unique<S3Reader>(*this, path, std::move(*stream), etag, offset, offset + length));
}

Result<std::unique_ptr<io::RandomAccessReader>> S3Store::open_random(const ObjectInfo& info) {
  STOWAGE_TRY(validate(info.path));
  return std::unique_ptr<io::RandomAccessReader>(std::make_unique<S3RandomReader>(*this, info));
}

Result<std::unique_ptr<Writer>> S3Store::make_writer(const ObjectPath& path,
                                                     const WriteOptions& options, bool resume) {
  STOWAGE_TRY(validate(path));
  auto writer = std::make_unique<S3Writer>(*this, path, options,
                                           plan_parts(options.size_hint, options_.parts));
  if (resume) {
    STOWAGE_ASSIGN_OR_RETURN(auto uploads, list_uploads(path.bucket, path.key));
    const PendingUpload* newest = nullptr;
    for (const auto& u : uploads) {
      if (u.key == path.key && (newest == nullptr || u.initiated > newest->initiated)) newest = &u;
    }
    if (newest != nullptr) {
      std::map<std::uint64_t, UploadedPart> parts;
      std::string marker;
      for (;;) {
        Call call;
        call.op = "ListParts";
        call.bucket = path.bucket;
        call.key = path.key;
        call.query = {{"uploadId", newest->upload_id}, {"max-parts", "1000"}};
        if (!marker.empty()) call.query.emplace_back("part-number-marker", marker);
        STOWAGE_ASSIGN_OR_RETURN(auto response, send(call));
        pugi::xml_document doc;
        doc.load_buffer(response.body.data(), response.body.size());
        const auto root = doc.child("ListPartsResult");
        for (auto p : root.children("Part")) {
          parts[to_u64(p.child_value("PartNumber"))] =
              UploadedPart{to_u64(p.child_value("Size")), p.child_value("ETag")};
        }
        if (std::string_view(root.child_value("IsTruncated")) != "true") break;
        marker = root.child_value("NextPartNumberMarker");
        if (marker.empty()) break;
      }
      writer->resume(newest->upload_id, std::move(parts));
    }
  }
  return std::unique_ptr<Writer>(std::move(writer));
}

Result<std::unique_ptr<Writer>> S3Store::open_write(const ObjectPath& path,
                                                    const WriteOptions& options) {
  // Only a multipart upload leaves anything to continue: S3 keeps one upload per key pending
  // (the newest is taken), so the id itself is not needed here.
  const bool multipart =
      options.size_hint && *options.size_hint > options_.parts.min_part_bytes;
  return make_writer(path, options, !options.resume_id.empty() && multipart);
}

Result<std::unique_ptr<Writer>> S3Store::open_write_resuming(const ObjectPath& path,
                                                             const WriteOptions& options) {
  if (!options.size_hint) {
    return make_error(ErrorCode::InvalidArgument,
                      "resuming an upload to " + locator(path.bucket, path.key) +
                          " needs its size (the part plan depends on it)");
  }
  return make_writer(path, options, true);
}

Result<ListPage> S3Store::list(const ObjectPath& prefix, const ListOptions& options) {
  STOWAGE_TRY(validate_bucket(prefix.bucket));
  if (!prefix.key.empty()) {
    std::string_view k = prefix.key;
    if (k.back() == '/') k.remove_suffix(1);
    STOWAGE_TRY(validate_key(k));
  }
  Call call;
  call.op = "ListObjectsV2";
  call.bucket = prefix.bucket;
  call.query = {
      {"list-type", "2"},
      {"max-keys", std::to_string(std::clamp<std::size_t>(options.max_keys, 1, kMaxListKeys))}};
  if (!prefix.key.empty()) call.query.emplace_back("prefix", prefix.key);
  if (options.delimiter) call.query.emplace_back("delimiter", *options.delimiter);
  if (!options.start_after.empty()) call.query.emplace_back("start-after", options.start_after);
  if (!options.page_token.empty())
    call.query.emplace_back("continuation-token", options.page_token);
  STOWAGE_ASSIGN_OR_RETURN(auto response, send(call));
  pugi::xml_document doc;
  if (!doc.load_buffer(response.body.data(), response.body.size())) {
    return make_error(ErrorCode::Corrupt, "ListObjectsV2 " + locator(prefix.bucket, prefix.key) +
                                              ": the answer is not XML");
  }
  const auto root = doc.child("ListBucketResult");
  ListPage page;
  for (auto c : root.children("Contents")) {
    ObjectInfo info;
    info.path = ObjectPath{prefix.bucket, c.child_value("Key")};
    info.size = to_u64(c.child_value("Size"));
    info.etag = c.child_value("ETag");
    info.last_modified = internal::parse_time(c.child_value("LastModified"));
    page.objects.push_back(std::move(info));
  }
  for (auto p : root.children("CommonPrefixes"))
    page.prefixes.emplace_back(p.child_value("Prefix"));
  if (std::string_view(root.child_value("IsTruncated")) == "true") {
    page.next_page_token = root.child_value("NextContinuationToken");
  }
  return page;
}

Status S3Store::remove(const ObjectPath& path) {
  STOWAGE_TRY(validate(path));
  Call call;
  call.op = "DeleteObject";
  call.method = "DELETE";
  call.bucket = path.bucket;
  call.key = path.key;
  auto r = send(call);
  if (!r && !(r.error().code == ErrorCode::NotFound && r.error().provider_code == "NoSuchKey")) {
    return r.error();
  }
  return {};
}

Result<std::vector<PendingUpload>> S3Store::list_uploads(std::string_view bucket,
                                                         std::string_view prefix) {
  STOWAGE_TRY(validate_bucket(bucket));
  std::vector<PendingUpload> out;
  std::string key_marker;
  std::string id_marker;
  for (;;) {
    Call call;
    call.op = "ListMultipartUploads";
    call.bucket = std::string(bucket);
    call.query = {{"uploads", ""}};
    if (!prefix.empty()) call.query.emplace_back("prefix", std::string(prefix));
    if (!key_marker.empty()) call.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) call.query.emplace_back("upload-id-marker", id_marker);
    STOWAGE_ASSIGN_OR_RETURN(auto response, send(call));
    pugi::xml_document doc;
    doc.load_buffer(response.body.data(), response.body.size());
    const auto root = doc.child("ListMultipartUploadsResult");
    for (auto u : root.children("Upload")) {
      out.push_back({u.child_value("Key"), u.child_value("UploadId"),
                     internal::parse_time(u.child_value("Initiated"))});
    }
    if (std::string_view(root.child_value("IsTruncated")) != "true") break;
    key_marker = root.child_value("NextKeyMarker");
    id_marker = root.child_value("NextUploadIdMarker");
    if (key_marker.empty() && id_marker.empty()) break;
  }
  return out;
}

Result<std::size_t> S3Store::abort_stale_uploads(std::string_view bucket, std::string_view prefix) {
  STOWAGE_ASSIGN_OR_RETURN(auto uploads, list_uploads(bucket, prefix));
  const auto cutoff = options_.clock() - options_.stale_upload_age;
  std::size_t aborted = 0;
  for (const auto& u : uploads) {
    if (u.initiated >= cutoff) continue;
    Call call;
    call.op = "AbortMultipartUpload";
    call.method = "DELETE";
    call.bucket = std::string(bucket);
    call.key = u.key;
    call.query = {{"uploadId", u.upload_id}};
    auto r = send(call);
    if (!r && r.error().code != ErrorCode::NotFound) return r.error();
    ++aborted;
  }
  return aborted;
}

Status S3Store::probe_bucket(std::string_view bucket) {
  STOWAGE_TRY(validate_bucket(bucket));
  Call call;
  call.op = "ListObjectsV2";
  call.bucket = std::string(bucket);
  call.query = {{"list-type", "2"}, {"max-keys", "1"}};
  auto r = send(call);
  if (!r) {
    Error e = r.error();
    if (e.http_status == 0) {
      e.message = "cannot reach " + options_.endpoint.scheme + "://" +
                  options_.endpoint.authority(options_.endpoint.host) +
                  " (check STORAGE_ENDPOINT and STORAGE_PORT): " + e.message;
    } else if (e.provider_code == "NoSuchBucket") {
      e.message = "bucket " + std::string(bucket) +
                  " does not exist (create it, or check STORAGE_BUCKET_PREFIX): " + e.message;
    }
    return e;
  }
  return {};
}

Result<std::string> S3Store::presign_get(const ObjectPath& path, std::chrono::seconds expires) {
  STOWAGE_TRY(validate(path));
  STOWAGE_ASSIGN_OR_RETURN(auto credentials, options_.credentials->get());
  const std::string region = region_of(path.bucket);
  const Endpoint& ep = options_.endpoint;
  std::string host = ep.host;
  if (ep.is_aws && host == kAwsGlobalHost && region != "us-east-1") {
    host = "s3." + region + ".amazonaws.com";
  }
  const bool virtual_hosted = !options_.force_path_style &&
                              (ep.is_aws || options_.virtual_hosted_style) && !ep.is_ip &&
                              path.bucket.find('.') == std::string::npos;
  auth::sigv4::SignableRequest sr;
  sr.method = "GET";
  std::string host_name = host;
  if (virtual_hosted) {
    host_name = path.bucket + "." + host;
    sr.path = "/" + path.key;
  } else {
    sr.path = "/" + path.bucket + "/" + path.key;
  }
  sr.headers.push_back({"Host", ep.authority(host_name)});
  auth::sigv4::SigningParams params;
  params.region = region;
  params.time = options_.clock();
  return auth::sigv4::presign(sr, ep.scheme + "://" + ep.authority(host_name), credentials, params,
                              expires);
}

}  // namespace stowage::store::s3
