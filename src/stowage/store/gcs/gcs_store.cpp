// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/gcs/gcs_store.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>
#include <fstream>

#include "stowage/io/checksum.hpp"
#include "stowage/io/file.hpp"
#include "stowage/store/gcs/gcs_internal.hpp"
#include "stowage/uri/percent.hpp"

namespace stowage::store::gcs {

namespace json = boost::json;
using internal::describe;
using uri::percent_encode;
using internal::gcs_error;
using internal::transport_error;

namespace {

/// Error bodies are small JSON documents; a larger one is cut here.
constexpr std::size_t kMaxErrorBody = 64 * 1024;

std::string read_error_body(http::ResponseStream& stream) {
  std::string body;
  std::vector<std::byte> buffer(16 * 1024);
  while (body.size() < kMaxErrorBody) {
    auto n = stream.read(buffer);
    if (!n || *n == 0) break;
    body.append(reinterpret_cast<const char*>(buffer.data()), *n);
  }
  return body;
}

bool retryable_status(long status) { return status == 408 || status == 429 || status >= 500; }

class EmptyReader final : public io::Reader {
 public:
  Result<std::size_t> read(std::span<std::byte>) override { return std::size_t{0}; }
  std::optional<std::uint64_t> size() const override { return 0; }
};

}  // namespace

/// The body of an alt=media GET, as it arrives.
class GcsReader final : public io::Reader {
 public:
  GcsReader(std::unique_ptr<http::ResponseStream> stream, ObjectPath path)
      : stream_(std::move(stream)), path_(std::move(path)) {}
  Result<std::size_t> read(std::span<std::byte> out) override {
    auto n = stream_->read(out);
    if (!n) return transport_error(std::move(n).error(), "read", path_);
    return n;
  }
  std::optional<std::uint64_t> size() const override { return stream_->size(); }

 private:
  std::unique_ptr<http::ResponseStream> stream_;
  ObjectPath path_;
};

/// Ranged GETs pinned to one generation: a changed object fails with PreconditionFailed.
class GcsRandomReader final : public io::RandomAccessReader {
 public:
  GcsRandomReader(GcsStore& store, ObjectInfo info, std::string generation)
      : store_(store), info_(std::move(info)), generation_(std::move(generation)) {}

  Result<std::size_t> read_at(std::uint64_t offset, std::span<std::byte> out) override {
    if (offset >= info_.size || out.empty()) return std::size_t{0};
    const std::uint64_t want = std::min<std::uint64_t>(out.size(), info_.size - offset);
    STOWAGE_ASSIGN_OR_RETURN(auto stream,
                             store_.get_media("read_at", info_.path, offset, want, generation_));
    if (stream->status() != 200 && stream->status() != 206) {
      return gcs_error(stream->status(), read_error_body(*stream), "read_at", info_.path);
    }
    std::size_t got = 0;
    while (got < want) {
      auto n = stream->read(out.subspan(got, want - got));
      if (!n) return transport_error(std::move(n).error(), "read_at", info_.path);
      if (*n == 0) break;
      got += *n;
    }
    return got;
  }
  std::uint64_t size() const override { return info_.size; }

 private:
  GcsStore& store_;
  ObjectInfo info_;
  std::string generation_;
};

// ---- GcsStore -----------------------------------------------------------------------------------

GcsStore::GcsStore(GcsOptions options, std::shared_ptr<http::Transport> transport,
                   std::shared_ptr<auth::TokenSource> tokens)
    : options_(std::move(options)), transport_(std::move(transport)), tokens_(std::move(tokens)) {}

Result<std::unique_ptr<GcsStore>> GcsStore::open(GcsOptions options,
                                                 std::shared_ptr<http::Transport> transport) {
  STOWAGE_TRY(options.validate());
  STOWAGE_ASSIGN_OR_RETURN(auto account, auth::ServiceAccount::from_file(options.credentials_path));
  if (!transport) {
    http::CurlOptions curl;
    curl.verify_tls = options.verify_tls;
    transport = http::make_curl_transport(curl);
  }
  auth::TokenSourceOptions token_options;
  token_options.retry = options.retry;
  auto tokens = std::make_shared<auth::ServiceAccountTokenSource>(std::move(account), *transport,
                                                                  std::move(token_options));
  return open(std::move(options), std::move(transport), std::move(tokens));
}

Result<std::unique_ptr<GcsStore>> GcsStore::open(GcsOptions options,
                                                 std::shared_ptr<http::Transport> transport,
                                                 std::shared_ptr<auth::TokenSource> tokens) {
  STOWAGE_TRY(options.validate());
  if (!transport || !tokens) {
    return make_error(ErrorCode::InvalidArgument, "gcs: a transport and a token source are needed");
  }
  return std::unique_ptr<GcsStore>(
      new GcsStore(std::move(options), std::move(transport), std::move(tokens)));
}

Status GcsStore::check(std::string_view op, const ObjectPath& path, bool prefix) const {
  auto rewrap = [&](Error e) -> Error {
    e.message = describe(op, path) + ": " + e.message;
    return e;
  };
  if (auto valid = validate_bucket(path.bucket); !valid) return rewrap(std::move(valid).error());
  if (prefix && path.key.empty()) return {};
  if (auto valid = validate_key(path.key); !valid) return rewrap(std::move(valid).error());
  if (!prefix && path.key.back() == '/') {
    return make_error(ErrorCode::InvalidArgument,
                      describe(op, path) + ": invalid object key: ends with '/'");
  }
  return {};
}

std::string GcsStore::object_url(const ObjectPath& path) const {
  return options_.endpoint + "/storage/v1/b/" + percent_encode(path.bucket) + "/o/" + percent_encode(path.key);
}

Result<http::Response> GcsStore::call(std::string_view op, const ObjectPath& path,
                                      http::Request request, bool authorize) {
  bool token_refreshed = false;
  return http::with_retries(options_.retry, [&]() -> Result<http::Response> {
    http::Request attempt = request;
    std::optional<Redacted<>> used;
    if (authorize) {
      auto token = tokens_->token();
      if (!token) return transport_error(std::move(token).error(), op, path);
      used = token->value;
      attempt.headers.push_back({"Authorization", "Bearer " + token->value.reveal()});
    }
    auto sent = transport_->send(attempt);
    if (!sent) return transport_error(std::move(sent).error(), op, path);
    if (sent->status == 401 && used && !token_refreshed) {
      // Revoked or expired early: one more try with a fresh token.
      token_refreshed = true;
      tokens_->invalidate(*used);
      Error e = gcs_error(401, sent->body_text(), op, path);
      e.retryable = true;
      return e;
    }
    if (retryable_status(sent->status)) return gcs_error(sent->status, sent->body_text(), op, path);
    return sent;
  });
}

Result<std::unique_ptr<http::ResponseStream>> GcsStore::call_stream(std::string_view op,
                                                                    const ObjectPath& path,
                                                                    http::Request request) {
  bool token_refreshed = false;
  return http::with_retries(options_.retry, [&]() -> Result<std::unique_ptr<http::ResponseStream>> {
    http::Request attempt = request;
    auto token = tokens_->token();
    if (!token) return transport_error(std::move(token).error(), op, path);
    attempt.headers.push_back({"Authorization", "Bearer " + token->value.reveal()});
    auto opened = transport_->open(attempt);
    if (!opened) return transport_error(std::move(opened).error(), op, path);
    auto& stream = **opened;
    if (stream.status() == 401 && !token_refreshed) {
      token_refreshed = true;
      tokens_->invalidate(token->value);
      Error e = gcs_error(401, read_error_body(stream), op, path);
      e.retryable = true;
      return e;
    }
    if (retryable_status(stream.status())) {
      return gcs_error(stream.status(), read_error_body(stream), op, path);
    }
    return opened;
  });
}

Result<std::unique_ptr<http::ResponseStream>> GcsStore::get_media(
    std::string_view op, const ObjectPath& path, std::uint64_t offset,
    std::optional<std::uint64_t> length, const std::optional<std::string>& generation) {
  http::Request request;
  request.url = object_url(path) + "?alt=media";
  if (generation) request.url += "&ifGenerationMatch=" + *generation;
  if (offset > 0 || length) {
    std::string range = "bytes=" + std::to_string(offset) + "-";
    if (length) range += std::to_string(offset + *length - 1);
    request.headers.push_back({"Range", std::move(range)});
  }
  return call_stream(op, path, std::move(request));
}

Result<ObjectInfo> GcsStore::stat(const ObjectPath& path) {
  STOWAGE_TRY(check("stat", path, false));
  http::Request request;
  request.url = object_url(path);
  STOWAGE_ASSIGN_OR_RETURN(auto response, call("stat", path, std::move(request)));
  if (response.status != 200) return gcs_error(response.status, response.body_text(), "stat", path);
  return internal::parse_object_text(response.body_text(), path.bucket, "stat", path);
}

Result<std::unique_ptr<io::Reader>> GcsStore::open_read(const ObjectPath& path,
                                                        const ReadOptions& options) {
  STOWAGE_TRY(check("open_read", path, false));
  std::optional<std::string> generation;
  if (options.if_match) {
    generation = internal::generation_of(*options.if_match);
    if (!generation) {  // not a generation, so it cannot match; but absence wins
      STOWAGE_TRY(stat(path));
      return make_error(ErrorCode::PreconditionFailed,
                        describe("open_read", path) + ": the object changed (etag mismatch)");
    }
  }
  const std::uint64_t offset = options.range ? options.range->offset : 0;
  const auto length = options.range ? options.range->length : std::nullopt;
  if (length && *length == 0) {
    STOWAGE_TRY(stat(path));
    return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
  }
  STOWAGE_ASSIGN_OR_RETURN(auto stream, get_media("open_read", path, offset, length, generation));
  if (stream->status() == 200 || stream->status() == 206) {
    return std::unique_ptr<io::Reader>(std::make_unique<GcsReader>(std::move(stream), path));
  }
  Error e = gcs_error(stream->status(), read_error_body(*stream), "open_read", path);
  if (e.code == ErrorCode::RangeNotSatisfiable && offset == 0) {
    // GCS refuses every range of an empty object; an empty object read from 0 is just empty.
    return std::unique_ptr<io::Reader>(std::make_unique<EmptyReader>());
  }
  return e;
}

Result<std::unique_ptr<io::RandomAccessReader>> GcsStore::open_random(const ObjectInfo& info) {
  STOWAGE_TRY(check("open_random", info.path, false));
  auto generation = internal::generation_of(info.etag);
  if (!generation) {
    return make_error(ErrorCode::PreconditionFailed,
                      describe("open_random", info.path) + ": the etag is not a GCS generation");
  }
  return std::unique_ptr<io::RandomAccessReader>(
      std::make_unique<GcsRandomReader>(*this, info, std::move(*generation)));
}

Result<std::unique_ptr<Writer>> GcsStore::open_write(const ObjectPath& path,
                                                     const WriteOptions& options) {
  STOWAGE_ASSIGN_OR_RETURN(auto writer, open_gcs_write(path, options));
  return std::unique_ptr<Writer>(std::move(writer));
}

Result<std::unique_ptr<GcsWriter>> GcsStore::open_gcs_write(const ObjectPath& path,
                                                            const WriteOptions& options) {
  STOWAGE_TRY(check("open_write", path, false));
  std::unique_ptr<GcsWriter> writer(new GcsWriter(*this, path, options));
  if (options.resume_id.empty() || options_.sessions_dir.empty()) return writer;
  // One file per (upload id, object): a later writer with the same id continues the session.
  const std::string name = options.resume_id + "\n" + path.bucket + "\n" + path.key;
  writer->session_file_ =
      options_.sessions_dir /
      io::to_hex(io::Sha256::of(std::as_bytes(std::span(name)))).substr(0, 32);
  std::ifstream in(writer->session_file_);
  std::string uri;
  if (!std::getline(in, uri) || uri.empty()) return writer;
  writer->session_ = Redacted(uri);
  auto state = writer->query_session();
  if (!state || *state) {
    // Expired, cancelled or already finished: start over with a fresh session.
    writer->forget_session();
    std::unique_ptr<GcsWriter> fresh(new GcsWriter(*this, path, options));
    fresh->session_file_ = writer->session_file_;
    writer->session_file_.clear();
    writer->session_.reset();
    return fresh;
  }
  writer->skip_ = writer->persisted_;
  return writer;
}

Status GcsWriter::record_session() const {
  if (session_file_.empty() || !session_) return {};
  STOWAGE_TRY(io::create_directories_durable(session_file_.parent_path()));
  const auto temp = io::unique_temp_path(session_file_.parent_path(), "session");
  STOWAGE_ASSIGN_OR_RETURN(auto file, io::File::create_exclusive(temp, 0600));
  const std::string line = session_->reveal() + "\n";
  STOWAGE_TRY(file.write_all(std::as_bytes(std::span(line))));
  STOWAGE_TRY(file.sync());
  STOWAGE_TRY(file.close());
  return io::publish(temp, session_file_);
}

void GcsWriter::forget_session() const {
  if (session_file_.empty()) return;
  std::error_code ec;
  std::filesystem::remove(session_file_, ec);
}

Result<std::unique_ptr<GcsWriter>> GcsStore::resume_write(const ObjectPath& path,
                                                          const Redacted<>& session_uri) {
  STOWAGE_TRY(check("resume_write", path, false));
  std::unique_ptr<GcsWriter> writer(new GcsWriter(*this, path, WriteOptions{}));
  writer->session_ = session_uri;
  STOWAGE_ASSIGN_OR_RETURN(auto finished, writer->query_session());
  if (finished) {
    writer->finished_ = std::move(finished);
  }
  return writer;
}

Result<ListPage> GcsStore::list(const ObjectPath& prefix, const ListOptions& options) {
  STOWAGE_TRY(check("list", prefix, true));
  if (options.delimiter && options.delimiter->empty()) {
    return make_error(ErrorCode::InvalidArgument, describe("list", prefix) + ": empty delimiter");
  }
  // maxResults counts items and prefixes together, as ListPage does; 1000 is GCS's ceiling.
  const std::size_t max_keys = std::clamp<std::size_t>(options.max_keys, 1, 1000);
  http::Request request;
  request.url = options_.endpoint + "/storage/v1/b/" + percent_encode(prefix.bucket) +
                "/o?maxResults=" + std::to_string(max_keys);
  if (!prefix.key.empty()) request.url += "&prefix=" + percent_encode(prefix.key);
  if (options.delimiter) request.url += "&delimiter=" + percent_encode(*options.delimiter);
  // startOffset is inclusive where start_after is not: the one equal name is dropped below.
  if (!options.start_after.empty()) request.url += "&startOffset=" + percent_encode(options.start_after);
  if (!options.page_token.empty()) request.url += "&pageToken=" + percent_encode(options.page_token);
  STOWAGE_ASSIGN_OR_RETURN(auto response, call("list", prefix, std::move(request)));
  if (response.status != 200)
    return gcs_error(response.status, response.body_text(), "list", prefix);

  boost::system::error_code ec;
  const json::value parsed = json::parse(response.body_text(), ec);
  if (ec || !parsed.is_object()) {
    return make_error(ErrorCode::Corrupt, describe("list", prefix) + ": the answer is not JSON");
  }
  const auto& o = parsed.as_object();
  ListPage page;
  if (const auto* items = o.if_contains("items"); items && items->is_array()) {
    for (const auto& item : items->as_array()) {
      auto info = internal::parse_object(item, prefix.bucket);
      if (!info) {
        Error e = std::move(info).error();
        e.message = describe("list", prefix) + ": " + e.message;
        return e;
      }
      if (info->path.key == options.start_after) continue;
      page.objects.push_back(std::move(*info));
    }
  }
  if (const auto* prefixes = o.if_contains("prefixes"); prefixes && prefixes->is_array()) {
    for (const auto& p : prefixes->as_array()) {
      if (p.is_string()) page.prefixes.emplace_back(p.as_string());
    }
  }
  if (const auto* token = o.if_contains("nextPageToken"); token && token->is_string()) {
    page.next_page_token = std::string(token->as_string());
  }
  return page;
}

Status GcsStore::remove(const ObjectPath& path) {
  STOWAGE_TRY(check("remove", path, false));
  http::Request request;
  request.method = "DELETE";
  request.url = object_url(path);
  STOWAGE_ASSIGN_OR_RETURN(auto response, call("remove", path, std::move(request)));
  if (response.status == 200 || response.status == 204 || response.status == 404) return {};
  return gcs_error(response.status, response.body_text(), "remove", path);
}

// ---- GcsWriter ----------------------------------------------------------------------------------

GcsWriter::GcsWriter(GcsStore& store, ObjectPath path, WriteOptions options)
    : store_(store), path_(std::move(path)), options_(options) {}

GcsWriter::~GcsWriter() {
  if (!committed_ && !aborted_) (void)abort();
}

Error GcsWriter::closed_error(std::string_view op) const {
  return make_error(ErrorCode::InvalidArgument, describe(op, path_) + ": the writer was already " +
                                                    (committed_ ? "committed" : "aborted"));
}

Status GcsWriter::write(std::span<const std::byte> bytes) {
  if (committed_ || aborted_ || finished_) return closed_error("write");
  // A continued session holds the stream's first bytes already.
  const auto skipped = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, bytes.size()));
  bytes = bytes.subspan(skipped);
  skip_ -= skipped;
  const std::size_t capacity = store_.options_.chunk_bytes;
  while (!bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), capacity - std::min(capacity, buffer_.size()));
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    bytes = bytes.subspan(n);
    if (buffer_.size() >= capacity) {
      if (!session_) STOWAGE_TRY(start_session());
      STOWAGE_ASSIGN_OR_RETURN(auto finished, send_chunk(false));
      (void)finished;  // a non-final chunk never finishes the object
    }
  }
  return {};
}

Status GcsWriter::start_session() {
  if (session_) return {};
  if (committed_ || aborted_) return closed_error("upload");
  std::string url = store_.options_.endpoint + "/upload/storage/v1/b/" + percent_encode(path_.bucket) +
                    "/o?uploadType=resumable&name=" + percent_encode(path_.key);
  // ifGenerationMatch=0: GCS publishes only if no live object has the name (create-only).
  if (options_.if_none_match) url += "&ifGenerationMatch=0";
  const std::string metadata = json::serialize(json::object{{"name", path_.key}});
  http::Request request;
  request.method = "POST";
  request.url = std::move(url);
  request.headers = {{"Content-Type", "application/json; charset=UTF-8"}};
  request.body = std::as_bytes(std::span(metadata.data(), metadata.size()));
  STOWAGE_ASSIGN_OR_RETURN(auto response, store_.call("upload", path_, std::move(request)));
  const auto location = response.header("Location");
  if (response.status != 200 || !location) {
    Error e = gcs_error(response.status, response.body_text(), "upload", path_);
    if (e.code == ErrorCode::PreconditionFailed) e.code = ErrorCode::AlreadyExists;
    return e;
  }
  session_ = Redacted(std::string(*location));
  // Best effort: without the record a later process only starts over.
  (void)record_session();
  return {};
}

Status GcsWriter::acknowledge(std::uint64_t persisted) {
  if (persisted < persisted_ || persisted > persisted_ + buffer_.size()) {
    return make_error(ErrorCode::Corrupt, describe("upload", path_) + ": the session holds " +
                                              std::to_string(persisted) + " bytes, expected " +
                                              std::to_string(persisted_) + " to " +
                                              std::to_string(persisted_ + buffer_.size()));
  }
  buffer_.erase(buffer_.begin(),
                buffer_.begin() + static_cast<std::ptrdiff_t>(persisted - persisted_));
  persisted_ = persisted;
  return {};
}

Result<std::optional<ObjectInfo>> GcsWriter::query_session() {
  http::Request request;
  request.method = "PUT";
  request.url = session_->reveal();
  request.headers = {{"Content-Range", "bytes */*"}};
  STOWAGE_ASSIGN_OR_RETURN(auto response,
                           store_.call("upload", path_, std::move(request), /*authorize=*/false));
  if (response.status == 308) {
    const auto persisted = internal::persisted_from_range(response.header("Range"));
    if (!persisted) {
      return make_error(ErrorCode::Corrupt, describe("upload", path_) + ": malformed Range");
    }
    if (*persisted < persisted_) {
      return make_error(ErrorCode::Corrupt, describe("upload", path_) + ": the session lost bytes");
    }
    if (persisted_ == 0 && buffer_.empty()) {
      persisted_ = *persisted;  // a reattached session: nothing buffered yet
      return std::optional<ObjectInfo>();
    }
    STOWAGE_TRY(acknowledge(*persisted));
    return std::optional<ObjectInfo>();
  }
  if (response.status == 200 || response.status == 201) {
    STOWAGE_ASSIGN_OR_RETURN(auto info, internal::parse_object_text(response.body_text(),
                                                                    path_.bucket, "upload", path_));
    return std::optional<ObjectInfo>(std::move(info));
  }
  Error e = gcs_error(response.status, response.body_text(), "upload", path_);
  if (e.code == ErrorCode::NotFound) e.message += " (the upload session expired or was cancelled)";
  return e;
}

Result<std::optional<ObjectInfo>> GcsWriter::send_chunk(bool final) {
  const auto& retry = store_.options_.retry;
  for (int attempt = 1;; ++attempt) {
    const std::size_t n = final ? buffer_.size() : buffer_.size() / kChunkQuantum * kChunkQuantum;
    if (!final && n == 0) return std::optional<ObjectInfo>();
    const std::uint64_t total = persisted_ + buffer_.size();
    http::Request request;
    request.method = "PUT";
    request.url = session_->reveal();
    if (n == 0) {
      request.headers = {{"Content-Range", "bytes */" + std::to_string(total)}};
    } else {
      request.headers = {{"Content-Range", "bytes " + std::to_string(persisted_) + "-" +
                                               std::to_string(persisted_ + n - 1) + "/" +
                                               (final ? std::to_string(total) : std::string("*"))}};
    }
    request.body = std::span<const std::byte>(buffer_.data(), n);
    auto sent = store_.transport_->send(request);
    Error error;
    if (sent && (sent->status == 200 || sent->status == 201)) {
      STOWAGE_ASSIGN_OR_RETURN(
          auto info, internal::parse_object_text(sent->body_text(), path_.bucket, "upload", path_));
      persisted_ += buffer_.size();
      buffer_.clear();
      buffer_.shrink_to_fit();
      return std::optional<ObjectInfo>(std::move(info));
    }
    if (sent && sent->status == 308) {
      const auto persisted = internal::persisted_from_range(sent->header("Range"));
      if (!persisted) {
        return make_error(ErrorCode::Corrupt, describe("upload", path_) + ": malformed Range");
      }
      STOWAGE_TRY(acknowledge(*persisted));
      if (!final) return std::optional<ObjectInfo>();  // what is left goes with the next chunk
      error = make_error(ErrorCode::Unavailable,
                         describe("upload", path_) + ": the session did not take the last chunk");
      error.retryable = true;
    } else if (sent) {
      error = gcs_error(sent->status, sent->body_text(), "upload", path_);
      if (error.code == ErrorCode::PreconditionFailed) error.code = ErrorCode::AlreadyExists;
    } else {
      error = transport_error(std::move(sent).error(), "upload", path_);
    }
    if (!error.retryable || attempt >= retry.max_attempts) return error;
    retry.sleep(retry.delay(attempt));
    // Where did the server stop? Resend from there.
    auto state = query_session();
    if (state && *state) {
      persisted_ += buffer_.size();
      buffer_.clear();
      return state;
    }
    if (!state && !state.error().retryable) return std::move(state).error();
  }
}

Result<ObjectInfo> GcsWriter::commit() {
  if (committed_ || aborted_) return closed_error("commit");
  if (finished_) {
    committed_ = true;
    return *finished_;
  }
  if (!session_) {
    // Small object: one request, published atomically by GCS.
    std::string url = store_.options_.endpoint + "/upload/storage/v1/b/" + percent_encode(path_.bucket) +
                      "/o?uploadType=media&name=" + percent_encode(path_.key);
    if (options_.if_none_match) url += "&ifGenerationMatch=0";
    http::Request request;
    request.method = "POST";
    request.url = std::move(url);
    request.headers = {{"Content-Type", "application/octet-stream"}};
    request.body = std::span<const std::byte>(buffer_.data(), buffer_.size());
    STOWAGE_ASSIGN_OR_RETURN(auto response, store_.call("upload", path_, std::move(request)));
    if (response.status != 200 && response.status != 201) {
      Error e = gcs_error(response.status, response.body_text(), "upload", path_);
      if (e.code == ErrorCode::PreconditionFailed) e.code = ErrorCode::AlreadyExists;
      return e;
    }
    STOWAGE_ASSIGN_OR_RETURN(auto info, internal::parse_object_text(response.body_text(),
                                                                    path_.bucket, "upload", path_));
    committed_ = true;
    buffer_.clear();
    buffer_.shrink_to_fit();
    return info;
  }
  if (skip_ > 0) {
    return make_error(ErrorCode::Corrupt, describe("upload", path_) +
                                              ": the stream ended before the bytes the continued "
                                              "session already holds");
  }
  for (int round = 0; round < 4; ++round) {
    STOWAGE_ASSIGN_OR_RETURN(auto finished, send_chunk(true));
    if (finished) {
      committed_ = true;
      forget_session();
      return std::move(*finished);
    }
  }
  return make_error(ErrorCode::Unavailable,
                    describe("upload", path_) + ": the session did not finish the object");
}

Status GcsWriter::abort() {
  if (committed_ || aborted_) return {};
  aborted_ = true;
  buffer_.clear();
  buffer_.shrink_to_fit();
  forget_session();
  if (!session_ || finished_) return {};
  http::Request request;
  request.method = "DELETE";
  request.url = session_->reveal();
  auto response = store_.call("abort", path_, std::move(request), /*authorize=*/false);
  if (!response) return std::move(response).error();
  // GCS answers a cancelled session with 499; 404/410 mean it is gone already.
  if (response->status == 499 || response->status == 204 || response->status == 200 ||
      response->status == 404 || response->status == 410) {
    return {};
  }
  return gcs_error(response->status, response->body_text(), "abort", path_);
}

}  // namespace stowage::store::gcs
