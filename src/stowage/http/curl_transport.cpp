// SPDX-License-Identifier: Apache-2.0
#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "stowage/http/transport.hpp"

namespace stowage::http {

std::optional<std::string_view> find_header(const std::vector<Header>& headers,
                                            std::string_view name) {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() &&
        std::equal(h.name.begin(), h.name.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return std::string_view(h.value);
    }
  }
  return std::nullopt;
}

std::string redact_url(std::string_view url) { return std::string(url.substr(0, url.find('?'))); }

namespace {

void ensure_curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// A multi handle with one easy handle in it. Every transfer goes through a multi handle, so
/// that streamed and whole responses share one connection cache per pooled pair.
struct Connection {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
};

/// The state of one transfer, shared with libcurl's callbacks.
struct Transfer {
  const Request* request = nullptr;
  std::span<const std::byte> body_left;  // in-memory request body not yet sent
  std::optional<Error> body_error;       // the request body's reader failed

  long status = 0;
  std::vector<Header> headers;
  bool headers_done = false;

  std::vector<std::byte> buffer;  // response bytes not yet consumed
  std::size_t read_pos = 0;
  std::size_t buffer_limit = 1 << 20;
  std::uint64_t max_total = UINT64_MAX;
  std::uint64_t received = 0;
  bool too_large = false;
  bool paused = false;

  bool done = false;
  CURLcode result = CURLE_OK;
  curl_slist* header_list = nullptr;
  curl_slist* connect_to = nullptr;
  char error_buffer[CURL_ERROR_SIZE] = {};

  ~Transfer() {
    curl_slist_free_all(header_list);
    curl_slist_free_all(connect_to);
  }
};

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {  // a new response (after 100 Continue): start over
    t->headers.clear();
    t->headers_done = false;
    const auto sp = line.find(' ');
    t->status =
        sp == std::string_view::npos ? 0 : std::atol(std::string(line.substr(sp + 1, 3)).c_str());
  } else if (line.empty()) {
    if (t->status >= 200) t->headers_done = true;
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    t->headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->received += n;
  if (t->received > t->max_total) {
    t->too_large = true;
    return 0;  // aborts the transfer
  }
  const size_t pending = t->buffer.size() - t->read_pos;
  if (pending > 0 && pending + n > t->buffer_limit) {
    t->received -= n;  // libcurl hands the same bytes again after the pause
    t->paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  if (t->read_pos > 0) {  // compact before growing
    t->buffer.erase(t->buffer.begin(),
                    t->buffer.begin() + static_cast<std::ptrdiff_t>(t->read_pos));
    t->read_pos = 0;
  }
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  t->buffer.insert(t->buffer.end(), bytes, bytes + n);
  return n;
}

size_t on_read(char* out, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t room = size * count;
  // The server answered before taking the whole body; the caller's request is gone by now.
  if (t->request == nullptr) return CURL_READFUNC_ABORT;
  if (t->request->body_reader != nullptr) {
    auto n = t->request->body_reader->read(std::span(reinterpret_cast<std::byte*>(out), room));
    if (!n) {
      t->body_error = n.error();
      return CURL_READFUNC_ABORT;
    }
    return *n;
  }
  const size_t n = std::min(room, t->body_left.size());
  std::memcpy(out, t->body_left.data(), n);
  t->body_left = t->body_left.subspan(n);
  return n;
}

/// Maps a libcurl failure to an Error; every one is worth a retry except a bad URL or option.
Error transport_error(const Transfer& t, const Request& request) {
  const std::string where = request.method + " " + redact_url(request.url);
  if (t.body_error) {
    Error e = *t.body_error;
    e.message = where + ": reading the request body: " + e.message;
    return e;
  }
  if (t.too_large) {
    return make_error(ErrorCode::TooLarge, where + ": response body larger than allowed");
  }
  const std::string detail = t.error_buffer[0] ? t.error_buffer : curl_easy_strerror(t.result);
  Error e = make_error(ErrorCode::Unavailable, where + ": " + detail);
  switch (t.result) {
    case CURLE_OPERATION_TIMEDOUT:
      e.code = ErrorCode::Timeout;
      e.retryable = true;
      break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      e.code = ErrorCode::InvalidArgument;
      break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      e.code = ErrorCode::PermissionDenied;
      break;
    default:
      e.retryable = true;
      break;
  }
  return e;
}

class CurlTransport;

/// A streaming response: drives the multi handle as the caller reads.
class CurlStream final : public ResponseStream {
 public:
  CurlStream(CurlTransport& owner, Connection conn, std::unique_ptr<Transfer> transfer)
      : owner_(owner), conn_(conn), t_(std::move(transfer)) {}
  ~CurlStream() override;

  long status() const override { return t_->status; }
  const std::vector<Header>& headers() const override { return t_->headers; }
  std::optional<std::uint64_t> size() const override {
    const auto length = find_header(t_->headers, "Content-Length");
    if (!length || request_copy_.method == "HEAD") return std::nullopt;
    return std::strtoull(std::string(*length).c_str(), nullptr, 10);
  }

  Result<std::size_t> read(std::span<std::byte> out) override {
    for (;;) {
      if (const std::size_t pending = t_->buffer.size() - t_->read_pos; pending > 0) {
        const std::size_t n = std::min(pending, out.size());
        std::memcpy(out.data(), t_->buffer.data() + t_->read_pos, n);
        t_->read_pos += n;
        if (t_->read_pos == t_->buffer.size()) {
          t_->buffer.clear();
          t_->read_pos = 0;
        }
        return n;
      }
      if (t_->done) {
        if (t_->result != CURLE_OK) return transport_error(*t_, request_copy_);
        return std::size_t{0};
      }
      STOWAGE_TRY(pump());
    }
  }

  /// Moves the transfer forward until it has data, headers, or ends.
  Status pump() {
    if (t_->paused) {
      t_->paused = false;
      curl_easy_pause(conn_.easy, CURLPAUSE_CONT);  // may deliver buffered bytes right away
      if (t_->buffer.size() > t_->read_pos) return {};
    }
    int running = 0;
    if (curl_multi_perform(conn_.multi, &running) != CURLM_OK) {
      return make_error(ErrorCode::Internal, "libcurl multi perform failed");
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(conn_.multi, &queued)) {
      if (msg->msg == CURLMSG_DONE) {
        t_->done = true;
        t_->result = msg->data.result;
        long code = 0;
        curl_easy_getinfo(conn_.easy, CURLINFO_RESPONSE_CODE, &code);
        if (code) t_->status = code;
        t_->headers_done = true;
      }
    }
    if (!t_->done && t_->buffer.size() == t_->read_pos && !t_->paused) {
      curl_multi_poll(conn_.multi, nullptr, 0, 1000, nullptr);
    }
    return {};
  }

  bool headers_done() const { return t_->headers_done; }
  bool done() const { return t_->done; }
  Transfer& transfer() { return *t_; }
  void keep_request(const Request& r) {
    request_copy_.method = r.method;
    request_copy_.url = r.url;
  }

 private:
  CurlTransport& owner_;
  Connection conn_;
  std::unique_ptr<Transfer> t_;
  Request request_copy_;  // method and URL, for messages after the caller's request is gone
};

class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(CurlOptions options) : options_(options) { ensure_curl_global(); }
  ~CurlTransport() override {
    for (auto& c : idle_) destroy(c);
  }

  Result<Response> send(const Request& request, std::uint64_t max_body_bytes) override {
    STOWAGE_ASSIGN_OR_RETURN(auto stream, start(request, max_body_bytes, SIZE_MAX));
    Response response;
    std::vector<std::byte> chunk(64 * 1024);
    for (;;) {
      STOWAGE_ASSIGN_OR_RETURN(std::size_t n, stream->read(chunk));
      if (n == 0) break;
      response.body.insert(response.body.end(), chunk.begin(),
                           chunk.begin() + static_cast<std::ptrdiff_t>(n));
    }
    response.status = stream->status();
    response.headers = stream->headers();
    return response;
  }

  Result<std::unique_ptr<ResponseStream>> open(const Request& request) override {
    STOWAGE_ASSIGN_OR_RETURN(auto stream, start(request, UINT64_MAX, options_.stream_buffer_bytes));
    return std::unique_ptr<ResponseStream>(std::move(stream));
  }

  void release(Connection conn, bool reusable) {
    curl_multi_remove_handle(conn.multi, conn.easy);
    std::lock_guard lock(mutex_);
    if (reusable && idle_.size() < options_.max_idle_handles) {
      idle_.push_back(conn);
    } else {
      destroy(conn);
    }
  }

 private:
  static void destroy(Connection c) {
    curl_easy_cleanup(c.easy);
    curl_multi_cleanup(c.multi);
  }

  Connection acquire() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        Connection c = idle_.back();
        idle_.pop_back();
        curl_easy_reset(c.easy);  // keeps live connections and the DNS cache
        return c;
      }
    }
    return {curl_multi_init(), curl_easy_init()};
  }

  Result<std::unique_ptr<CurlStream>> start(const Request& request, std::uint64_t max_total,
                                            std::size_t buffer_limit) {
    auto t = std::make_unique<Transfer>();
    t->request = &request;
    t->body_left = request.body;
    t->max_total = max_total;
    t->buffer_limit = buffer_limit;
    Connection conn = acquire();
    if (conn.multi == nullptr || conn.easy == nullptr) {
      return make_error(ErrorCode::Internal, "libcurl: cannot create a handle");
    }
    CURL* e = conn.easy;
    curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(request.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(request.stall_timeout.count() / 1000)));
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, options_.verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, options_.verify_tls ? 2L : 0L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, t.get());

    const bool has_body = request.body_reader != nullptr || !request.body.empty() ||
                          request.method == "PUT" || request.method == "POST";
    const curl_off_t body_size = static_cast<curl_off_t>(
        request.body_reader != nullptr ? request.body_size.value_or(0) : request.body.size());
    if (request.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (request.method == "PUT") {
      curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, body_size);
    } else if (request.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
    } else if (request.method != "GET") {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (has_body) {
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, body_size);
      }
    }

    bool has_content_type = false;
    for (const auto& h : request.headers) {
      // "Name;" is libcurl's spelling of a header with an empty value.
      const std::string line = h.value.empty() ? h.name + ";" : h.name + ": " + h.value;
      t->header_list = curl_slist_append(t->header_list, line.c_str());
      if (find_header({h}, "Content-Type")) has_content_type = true;
    }
    // libcurl adds headers of its own that a signature would not cover: remove them.
    t->header_list = curl_slist_append(t->header_list, "Expect:");
    if (!has_content_type) t->header_list = curl_slist_append(t->header_list, "Content-Type:");
    t->header_list = curl_slist_append(t->header_list, "Accept:");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
    for (const auto& c : request.connect_to)
      t->connect_to = curl_slist_append(t->connect_to, c.c_str());
    if (t->connect_to != nullptr) curl_easy_setopt(e, CURLOPT_CONNECT_TO, t->connect_to);

    curl_multi_add_handle(conn.multi, e);
    auto stream = std::make_unique<CurlStream>(*this, conn, std::move(t));
    stream->keep_request(request);
    // Run until the status and headers are in (or the transfer ends).
    while (!stream->headers_done() && !stream->done()) STOWAGE_TRY(stream->pump());
    if (stream->done() && stream->transfer().result != CURLE_OK) {
      return transport_error(stream->transfer(), request);
    }
    stream->transfer().request = nullptr;  // the caller's request may go away now
    return stream;
  }

  CurlOptions options_;
  std::mutex mutex_;
  std::vector<Connection> idle_;
};

CurlStream::~CurlStream() {
  // A transfer abandoned midway leaves its connection in an unknown state: do not reuse it.
  owner_.release(conn_, t_->done && t_->result == CURLE_OK);
}

}  // namespace

std::unique_ptr<Transport> make_curl_transport(CurlOptions options) {
  return std::make_unique<CurlTransport>(options);
}

}  // namespace stowage::http
