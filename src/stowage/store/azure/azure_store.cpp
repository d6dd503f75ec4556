// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/azure/azure_store.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <random>

#include "stowage/auth/azure_shared_key.hpp"
#include "stowage/io/checksum.hpp"
#include "stowage/store/azure/azure_internal.hpp"

namespace stowage::store::azure {
namespace {

using internal::azure_error;
using internal::describe;
using internal::encode_query;

/// List Blobs' largest page.
constexpr std::size_t kMaxListResults = 5000;
/// Retries of a read that broke mid-body, resumed at the same offset under the same ETag.
constexpr int kMaxReadResumes = 3;

std::uint64_t header_u64(const std::vector<http::Header>& headers, std::string_view name) {
  const auto v = http::find_header(headers, name);
  return v ? std::strtoull(std::string(*v).c_str(), nullptr, 10) : 0;
}

ObjectInfo info_from_headers(const ObjectPath& path, const std::vector<http::Header>& headers,
                             std::uint64_t size) {
  ObjectInfo info;
  info.path = path;
  info.size = size;
  if (const auto etag = http::find_header(headers, "ETag")) info.etag = std::string(*etag);
  if (const auto lm = http::find_header(headers, "Last-Modified")) {
    info.last_modified = internal::parse_http_date(*lm);
  }
  return info;
}

std::string random_tag() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(rng()));
  return buffer;
}

std::string range_header(std::uint64_t offset, std::optional<std::uint64_t> length) {
  std::string out = "bytes=" + std::to_string(offset) + "-";
  if (length) out += std::to_string(offset + *length - 1);
  return out;
}

/// Page tokens: base64 of "<service marker>\n<last name returned>".
std::string encode_token(std::string_view marker, std::string_view last) {
  const std::string raw = std::string(marker) + "\n" + std::string(last);
  return io::to_base64(std::span(reinterpret_cast<const unsigned char*>(raw.data()), raw.size()));
}

// ---- reading --------------------------------------------------------------------------------

/// An empty stream (a range read of an empty blob).
class EmptyReader final : public io::Reader {
 public:
  Result<std::size_t> read(std::span<std::byte>) override { return std::size_t{0}; }
  std::optional<std::uint64_t> size() const override { return 0; }
};

/// A blob's bytes as they arrive. If the connection breaks mid-body, the read resumes at the
/// same offset with If-Match on the ETag of the first answer, so the bytes never mix versions.
class AzureReader final : public io::Reader {
 public:
  AzureReader(AzureStore& store, ObjectPath path, std::unique_ptr<http::ResponseStream> stream,
              std::uint64_t offset)
      : store_(store), path_(std::move(path)), stream_(std::move(stream)), position_(offset) {
    if (const auto etag = stream_->header("ETag")) etag_ = std::string(*etag);
    remaining_ = stream_->size();
    total_ = remaining_;
  }

  Result<std::size_t> read(std::span<std::byte> out) override {
    if (remaining_ && *remaining_ == 0) return std::size_t{0};
    for (int attempt = 0;; ++attempt) {
      auto n = stream_->read(out);
      if (n) {
        position_ += *n;
        if (remaining_) *remaining_ -= std::min<std::uint64_t>(*remaining_, *n);
        return *n;
      }
      if (!n.error().retryable || attempt >= kMaxReadResumes || etag_.empty()) {
        return internal::transport_error("GetBlob", path_, n.error());
      }
      STOWAGE_TRY(reopen());
    }
  }

  std::optional<std::uint64_t> size() const override { return total_; }

 private:
  Status reopen() {
    http::Request request;
    request.url = store_.url(path_, "");
    request.headers.push_back(
        {"x-ms-range", range_header(position_, remaining_ ? remaining_ : std::nullopt)});
    request.headers.push_back({"If-Match", etag_});
    STOWAGE_ASSIGN_OR_RETURN(stream_, store_.call_streaming("GetBlob", path_, request));
    return {};
  }

  AzureStore& store_;
  ObjectPath path_;
  std::unique_ptr<http::ResponseStream> stream_;
  std::uint64_t position_ = 0;
  std::optional<std::uint64_t> remaining_;
  std::optional<std::uint64_t> total_;
  std::string etag_;
};

/// Ranged reads of one version of a blob: every request carries If-Match.
class AzureRandomReader final : public io::RandomAccessReader {
 public:
  AzureRandomReader(AzureStore& store, ObjectInfo info) : store_(store), info_(std::move(info)) {}

  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= info_.size || out.empty()) return std::size_t{0};
    const std::uint64_t length = std::min<std::uint64_t>(out.size(), info_.size - offset);
    http::Request request;
    request.url = store_.url(info_.path, "");
    request.headers.push_back({"x-ms-range", range_header(offset, length)});
    if (!info_.etag.empty()) request.headers.push_back({"If-Match", info_.etag});
    STOWAGE_ASSIGN_OR_RETURN(auto response,
                             store_.call("GetBlob", info_.path, std::move(request), length));
    const std::size_t n = std::min<std::size_t>(response.body.size(), out.size());
    std::memcpy(out.data(), response.body.data(), n);
    return n;
  }

  std::uint64_t size() const override { return info_.size; }

 private:
  AzureStore& store_;
  ObjectInfo info_;
};

// ---- writing --------------------------------------------------------------------------------

/// Buffers up to single_put_max_bytes for one Put Blob; past that, stages blocks with at most
/// max_blocks_in_flight uploading, and publishes them with Put Block List on commit().
class AzureWriter final : public Writer {
 public:
  AzureWriter(AzureStore& store, ObjectPath path, WriteOptions options, std::string tag,
              bool always_blocks, std::map<std::string, std::uint64_t> staged)
      : store_(store),
        path_(std::move(path)),
        options_(options),
        tag_(std::move(tag)),
        staging_(always_blocks),
        staged_(std::move(staged)) {}

  ~AzureWriter() override {
    if (state_ != State::kCommitted) (void)abort();
  }

  Status write(std::span<const std::byte> bytes) override {
    STOWAGE_TRY(check_open("write"));
    while (!bytes.empty()) {
      if (!staging_ && buffer_.size() + bytes.size() > store_.options().single_put_max_bytes) {
        staging_ = true;  // too large for one Put Blob: blocks from here on
      }
      if (!staging_) {
        buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
        size_ += bytes.size();
        return {};
      }
      const std::uint64_t block = current_block_size();
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(
          bytes.size(), block - std::min<std::uint64_t>(block, buffer_.size())));
      buffer_.insert(buffer_.end(), bytes.begin(),
                     bytes.begin() + static_cast<std::ptrdiff_t>(take));
      size_ += take;
      bytes = bytes.subspan(take);
      while (buffer_.size() >= current_block_size()) STOWAGE_TRY(stage_front_block());
    }
    return {};
  }

  Result<ObjectInfo> commit() override {
    STOWAGE_TRY(check_open("commit"));
    // An empty blob has no block to stage (Put Block refuses empty bodies): one Put Blob.
    const bool blocks = staging_ && (next_index_ > 0 || !buffer_.empty());
    auto result = blocks ? commit_blocks() : put_blob();
    if (!result) {
      (void)abort();
      Error e = std::move(result).error();
      if (options_.if_none_match && e.code == ErrorCode::PreconditionFailed) {
        e.code = ErrorCode::AlreadyExists;  // If-None-Match: * answered 409 or 412
      }
      return e;
    }
    state_ = State::kCommitted;
    return result;
  }

  Status abort() override {
    if (state_ == State::kOpen) state_ = State::kAborted;
    // Blocks in flight reference this writer: wait for them. Staged blocks that are never
    // committed are invisible and Azure drops them after a week; there is no call to drop them.
    while (!in_flight_.empty()) {
      (void)in_flight_.front().get();
      in_flight_.pop_front();
    }
    buffer_.clear();
    buffer_.shrink_to_fit();
    return {};
  }

 private:
  enum class State { kOpen, kCommitted, kAborted };

  Status check_open(std::string_view op) const {
    if (state_ == State::kOpen) return {};
    return make_error(ErrorCode::InvalidArgument,
                      std::string(op) + " " + describe(path_) + ": the writer was already " +
                          (state_ == State::kCommitted ? "committed" : "aborted"));
  }

  std::uint64_t current_block_size() const {
    return internal::block_size_for(store_.options().block_bytes, options_.size_hint, next_index_);
  }

  /// Starts uploading the first block's worth of the buffer; blocks while the limit is reached.
  Status stage_front_block() {
    const std::size_t n = std::min<std::size_t>(buffer_.size(), current_block_size());
    std::vector<std::byte> block;
    if (n == buffer_.size()) {
      block.swap(buffer_);
    } else {
      block.assign(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
      buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return stage(std::move(block));
  }

  Status stage(std::vector<std::byte> block) {
    while (in_flight_.size() >= std::max<std::size_t>(1, store_.options().max_blocks_in_flight)) {
      STOWAGE_TRY(collect_one());
    }
    const std::uint64_t index = next_index_++;
    if (index >= internal::kMaxBlocks) {
      return make_error(ErrorCode::TooLarge, "PutBlock " + describe(path_) +
                                                 ": more than 50,000 blocks (pass a size hint)");
    }
    in_flight_.push_back(std::async(std::launch::async, [this, index, data = std::move(block)] {
      return put_block(index, data);
    }));
    return {};
  }

  Result<std::string> put_block(std::uint64_t index, const std::vector<std::byte>& data) {
    const auto digest = io::Sha256::of(data);
    const std::string id = internal::block_id(tag_, index, io::to_hex(digest));
    if (const auto it = staged_.find(id); it != staged_.end() && it->second == data.size()) {
      return id;  // staged by an earlier, interrupted writer of the same upload
    }
    http::Request request;
    request.method = "PUT";
    request.url = store_.url(path_, "comp=block&blockid=" + encode_query(id));
    request.body = data;
    STOWAGE_TRY(store_.call("PutBlock", path_, std::move(request)));
    return id;
  }

  Status collect_one() {
    auto id = in_flight_.front().get();
    in_flight_.pop_front();
    if (!id) return std::move(id).error();
    ids_.push_back(std::move(*id));
    return {};
  }

  void add_conditions(http::Request& request) const {
    if (options_.if_none_match) request.headers.push_back({"If-None-Match", "*"});
  }

  Result<ObjectInfo> put_blob() {
    http::Request request;
    request.method = "PUT";
    request.url = store_.url(path_, "");
    request.headers.push_back({"x-ms-blob-type", "BlockBlob"});
    add_conditions(request);
    request.body = buffer_;
    STOWAGE_ASSIGN_OR_RETURN(auto response, store_.call("PutBlob", path_, std::move(request)));
    return info_from_headers(path_, response.headers, size_);
  }

  Result<ObjectInfo> commit_blocks() {
    if (!buffer_.empty()) {
      std::vector<std::byte> last;
      last.swap(buffer_);
      STOWAGE_TRY(stage(std::move(last)));
    }
    while (!in_flight_.empty()) STOWAGE_TRY(collect_one());
    const std::string xml = internal::block_list_xml(ids_);
    http::Request request;
    request.method = "PUT";
    request.url = store_.url(path_, "comp=blocklist");
    add_conditions(request);
    request.body = std::as_bytes(std::span(xml.data(), xml.size()));
    STOWAGE_ASSIGN_OR_RETURN(auto response, store_.call("PutBlockList", path_, std::move(request)));
    return info_from_headers(path_, response.headers, size_);
  }

  AzureStore& store_;
  ObjectPath path_;
  WriteOptions options_;
  std::string tag_;
  bool staging_ = false;
  std::map<std::string, std::uint64_t> staged_;  // id -> size, from Get Block List (resume)
  std::vector<std::byte> buffer_;
  std::uint64_t size_ = 0;
  std::uint64_t next_index_ = 0;
  std::deque<std::future<Result<std::string>>> in_flight_;
  std::vector<std::string> ids_;
  State state_ = State::kOpen;
};

}  // namespace

AzureStore::AzureStore(AzureOptions options, std::unique_ptr<http::Transport> transport)
    : options_(std::move(options)), transport_(std::move(transport)) {
  capabilities_.atomic_publish = true;
  capabilities_.conditional_put = true;
  capabilities_.native_files = false;
}

Result<std::unique_ptr<AzureStore>> AzureStore::open(AzureOptions options) {
  http::CurlOptions curl;
  curl.verify_tls = options.verify_tls;
  auto transport = http::make_curl_transport(curl);
  return std::make_unique<AzureStore>(std::move(options), std::move(transport));
}

std::string AzureStore::url(const ObjectPath& path, std::string_view query) const {
  std::string out = options_.endpoint + "/" + path.bucket;
  if (!path.key.empty()) out += "/" + internal::encode_path(path.key);
  std::string q(query);
  if (!options_.sas.empty()) q += (q.empty() ? "" : "&") + options_.sas.reveal();
  if (!q.empty()) out += "?" + q;
  return out;
}

void AzureStore::authorize(http::Request& request) const {
  request.connect_to = options_.connect_to;
  if (options_.shared_key) {
    auth::azure::sign(request, *options_.shared_key, std::chrono::system_clock::now());
  } else if (!http::find_header(request.headers, "x-ms-version")) {
    request.headers.push_back({"x-ms-version", std::string(auth::azure::kApiVersion)});
  }
}

Result<http::Response> AzureStore::call(std::string_view op, const ObjectPath& path,
                                        http::Request request, std::uint64_t max_body_bytes) {
  return http::with_retries(options_.retry, [&]() -> Result<http::Response> {
    http::Request attempt = request;
    authorize(attempt);
    auto response = transport_->send(attempt, std::max<std::uint64_t>(max_body_bytes, 64 << 10));
    if (!response) return internal::transport_error(op, path, std::move(response).error());
    if (response->status >= 300) {
      return azure_error(op, path, response->status, response->headers, response->body_text());
    }
    return response;
  });
}

Result<std::unique_ptr<http::ResponseStream>> AzureStore::call_streaming(std::string_view op,
                                                                         const ObjectPath& path,
                                                                         http::Request request) {
  return http::with_retries(options_.retry, [&]() -> Result<std::unique_ptr<http::ResponseStream>> {
    http::Request attempt = request;
    authorize(attempt);
    auto stream = transport_->open(attempt);
    if (!stream) return internal::transport_error(op, path, std::move(stream).error());
    if ((*stream)->status() >= 300) {
      std::string body;
      std::vector<std::byte> chunk(16 << 10);
      while (body.size() < (64 << 10)) {
        auto n = (*stream)->read(chunk);
        if (!n || *n == 0) break;
        body.append(reinterpret_cast<const char*>(chunk.data()), *n);
      }
      return azure_error(op, path, (*stream)->status(), (*stream)->headers(), body);
    }
    return std::move(*stream);
  });
}

Status AzureStore::check(std::string_view op, const ObjectPath& path, bool allow_empty_key) const {
  auto rewrap = [&](Error e) {
    e.message = std::string(op) + " " + describe(path) + ": " + e.message;
    return e;
  };
  if (auto valid = validate_bucket(path.bucket); !valid) return rewrap(std::move(valid).error());
  if (allow_empty_key && path.key.empty()) return {};
  if (auto valid = validate_key(path.key); !valid) return rewrap(std::move(valid).error());
  if (!allow_empty_key && path.key.back() == '/') {
    return make_error(ErrorCode::InvalidArgument, std::string(op) + " " + describe(path) +
                                                      ": invalid object key: ends with '/'");
  }
  return {};
}

Result<ObjectInfo> AzureStore::stat(const ObjectPath& path) {
  STOWAGE_TRY(check("GetBlobProperties", path, false));
  http::Request request;
  request.method = "HEAD";
  request.url = url(path, "");
  STOWAGE_ASSIGN_OR_RETURN(auto response, call("GetBlobProperties", path, std::move(request)));
  return info_from_headers(path, response.headers, header_u64(response.headers, "Content-Length"));
}

Result<std::unique_ptr<io::Reader>> AzureStore::open_read(const ObjectPath& path,
                                                          const ReadOptions& options) {
  STOWAGE_TRY(check("GetBlob", path, false));
  if (options.range && options.range->length && *options.range->length == 0) {
    STOWAGE_ASSIGN_OR_RETURN(auto info, stat(path));
    if (options.if_match && *options.if_match != info.etag) {
      return make_error(ErrorCode::PreconditionFailed,
                        "GetBlob " + describe(path) + ": ETag changed");
    }
    return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
  }
  http::Request request;
  request.url = url(path, "");
  const std::uint64_t offset = options.range ? options.range->offset : 0;
  if (options.range) {
    request.headers.push_back({"x-ms-range", range_header(offset, options.range->length)});
  }
  if (options.if_match) request.headers.push_back({"If-Match", *options.if_match});
  auto stream = call_streaming("GetBlob", path, std::move(request));
  if (!stream) {
    // A range of an empty blob: Azure answers 416 even at offset 0; it is just empty.
    if (stream.error().code == ErrorCode::RangeNotSatisfiable && offset == 0) {
      return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
    }
    return std::move(stream).error();
  }
  if (options.range) {
    // Quirk: Azurite answers 206 with no bytes to a range that starts exactly at the end, where
    // Azure answers 416; the total in Content-Range tells, so both behave the same here.
    const auto content_range = (*stream)->header("Content-Range");
    const auto slash = content_range ? content_range->rfind('/') : std::string_view::npos;
    if (slash != std::string_view::npos) {
      const std::uint64_t total =
          std::strtoull(std::string(content_range->substr(slash + 1)).c_str(), nullptr, 10);
      if (total == 0) return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
      if (offset >= total) {
        return make_error(ErrorCode::RangeNotSatisfiable,
                          "GetBlob " + describe(path) + ": range starts at " +
                              std::to_string(offset) + ", past the end (" + std::to_string(total) +
                              " bytes)");
      }
    }
  }
  return std::unique_ptr<io::Reader>(
      std::make_unique<AzureReader>(*this, path, std::move(*stream), offset));
}

Result<std::unique_ptr<io::RandomAccessReader>> AzureStore::open_random(const ObjectInfo& info) {
  STOWAGE_TRY(check("GetBlob", info.path, false));
  return std::unique_ptr<io::RandomAccessReader>(std::make_unique<AzureRandomReader>(*this, info));
}

Result<std::unique_ptr<Writer>> AzureStore::make_writer(const ObjectPath& path,
                                                        const WriteOptions& options,
                                                        std::string tag, bool resumable) {
  std::map<std::string, std::uint64_t> staged;
  if (resumable) {
    http::Request request;
    request.url = url(path, "comp=blocklist&blocklisttype=uncommitted");
    auto response = call("GetBlockList", path, std::move(request));
    if (response) {
      STOWAGE_ASSIGN_OR_RETURN(auto blocks,
                               internal::parse_uncommitted_blocks(response->body_text()));
      for (auto& b : blocks) staged[std::move(b.id)] = b.size;
    } else if (response.error().code != ErrorCode::NotFound ||
               response.error().provider_code == "ContainerNotFound") {
      return std::move(response).error();
    }
  }
  return std::unique_ptr<Writer>(std::make_unique<AzureWriter>(*this, path, options, std::move(tag),
                                                               resumable, std::move(staged)));
}

Result<std::unique_ptr<Writer>> AzureStore::open_write(const ObjectPath& path,
                                                       const WriteOptions& options) {
  // Only an object staged in blocks leaves anything to continue; a small one stays one Put Blob.
  if (!options.resume_id.empty() && options.size_hint &&
      *options.size_hint > options_.single_put_max_bytes) {
    return open_resumable_write(path, options.resume_id, options);
  }
  STOWAGE_TRY(check("PutBlob", path, false));
  return make_writer(path, options, random_tag(), false);
}

Result<std::unique_ptr<Writer>> AzureStore::open_resumable_write(const ObjectPath& path,
                                                                 std::string_view upload_id,
                                                                 const WriteOptions& options) {
  STOWAGE_TRY(check("PutBlock", path, false));
  if (upload_id.empty()) {
    return make_error(ErrorCode::InvalidArgument,
                      "PutBlock " + describe(path) + ": empty upload id");
  }
  const auto digest = io::Sha256::of(std::as_bytes(std::span(upload_id.data(), upload_id.size())));
  return make_writer(path, options, io::to_hex(digest).substr(0, 16), true);
}

Status AzureStore::remove(const ObjectPath& path) {
  STOWAGE_TRY(check("DeleteBlob", path, false));
  http::Request request;
  request.method = "DELETE";
  request.url = url(path, "");
  request.headers.push_back({"x-ms-delete-snapshots", "include"});
  auto response = call("DeleteBlob", path, std::move(request));
  if (!response && !(response.error().code == ErrorCode::NotFound &&
                     response.error().provider_code != "ContainerNotFound")) {
    return std::move(response).error();
  }
  return {};
}

Result<bool> AzureStore::any_key_after(const ObjectPath& folder, const std::string& after) {
  std::string marker;
  for (;;) {
    std::string query =
        "restype=container&comp=list&maxresults=" + std::to_string(kMaxListResults) +
        "&prefix=" + encode_query(folder.key);
    if (!marker.empty()) query += "&marker=" + encode_query(marker);
    http::Request request;
    request.url = url(ObjectPath{folder.bucket, ""}, query);
    STOWAGE_ASSIGN_OR_RETURN(auto response, call("ListBlobs", folder, std::move(request)));
    STOWAGE_ASSIGN_OR_RETURN(auto result, internal::parse_list_blobs(response.body_text()));
    for (const auto& e : result.entries) {
      if (e.name > after) return true;
    }
    if (result.next_marker.empty()) return false;
    marker = std::move(result.next_marker);
  }
}

Result<ListPage> AzureStore::list(const ObjectPath& prefix, const ListOptions& options) {
  STOWAGE_TRY(check("ListBlobs", prefix, true));
  ListPage page;
  if (options.max_keys == 0) return page;
  if (options.delimiter && options.delimiter->empty()) {
    return make_error(ErrorCode::InvalidArgument,
                      "ListBlobs " + describe(prefix) + ": empty delimiter");
  }
  std::string marker;
  std::string after = options.start_after;
  bool from_token = false;
  if (!options.page_token.empty()) {
    const std::string raw = io::from_base64(options.page_token);
    const auto nl = raw.find('\n');
    if (nl == std::string::npos) {
      return make_error(ErrorCode::InvalidArgument,
                        "ListBlobs " + describe(prefix) + ": not a page token of this store");
    }
    marker = raw.substr(0, nl);
    after = std::max(after, raw.substr(nl + 1));
    from_token = true;
  }

  std::size_t count = 0;
  for (;;) {
    // Skipping up to start_after: big pages; otherwise exactly what is still wanted, so that a
    // page usually ends where the service's does and the token needs no re-read.
    const bool skipping = !from_token && !after.empty() && count == 0;
    const std::size_t want =
        skipping ? kMaxListResults : std::min(kMaxListResults, options.max_keys - count);
    std::string query = "restype=container&comp=list&maxresults=" + std::to_string(want);
    if (!prefix.key.empty()) query += "&prefix=" + encode_query(prefix.key);
    if (options.delimiter) query += "&delimiter=" + encode_query(*options.delimiter);
    if (!marker.empty()) query += "&marker=" + encode_query(marker);
    http::Request request;
    request.url = url(ObjectPath{prefix.bucket, ""}, query);
    STOWAGE_ASSIGN_OR_RETURN(auto response, call("ListBlobs", prefix, std::move(request)));
    STOWAGE_ASSIGN_OR_RETURN(auto result, internal::parse_list_blobs(response.body_text()));

    for (std::size_t i = 0; i < result.entries.size(); ++i) {
      auto& e = result.entries[i];
      bool keep = after.empty() || e.name > after;
      if (!keep && e.is_prefix && !from_token && count == 0 && after.starts_with(e.name)) {
        // start_after points inside this folder: it counts if a key in it comes later.
        STOWAGE_ASSIGN_OR_RETURN(keep, any_key_after(ObjectPath{prefix.bucket, e.name}, after));
      }
      if (!keep) continue;
      if (e.is_prefix) {
        page.prefixes.push_back(e.name);
      } else {
        ObjectInfo info;
        info.path = ObjectPath{prefix.bucket, e.name};
        info.size = e.size;
        info.etag = e.etag;
        info.last_modified = e.last_modified;
        page.objects.push_back(std::move(info));
      }
      if (++count == options.max_keys) {
        const bool last_in_page = i + 1 == result.entries.size();
        if (!last_in_page) {
          page.next_page_token = encode_token(marker, e.name);
        } else if (!result.next_marker.empty()) {
          page.next_page_token = encode_token(result.next_marker, e.name);
        }
        return page;
      }
    }
    if (result.next_marker.empty()) return page;
    marker = std::move(result.next_marker);
  }
}

Result<std::unique_ptr<ObjectStore>> open_azure_store(const config::Config& config) {
  STOWAGE_ASSIGN_OR_RETURN(auto options, AzureOptions::from_config(config));
  STOWAGE_ASSIGN_OR_RETURN(auto store, AzureStore::open(std::move(options)));
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace stowage::store::azure
