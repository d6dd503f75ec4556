// SPDX-License-Identifier: Apache-2.0
#include "server/server.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <condition_variable>
#include <list>
#include <random>
#include <thread>
#include <unordered_map>

#include "server/api.hpp"
#include "server/console.hpp"
#include "server/console_api.hpp"
#include "stowage/cache/caching_store.hpp"
#include "server/multipart.hpp"
#include "server/previews.hpp"
#include "server/range.hpp"
#include "server/team_files_api.hpp"
#include "stowage/io/file.hpp"

namespace stowage::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

/// `co_await op(..., kToken)` yields (error_code, result...) instead of throwing.
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);

constexpr std::string_view kApiPrefix = "/public/api/v3/";
/// A TLS record starts with content type 22 (handshake); no HTTP method does.
constexpr unsigned char kTlsHandshake = 0x16;
/// Request headers larger than this are refused (Beast's default is 8 KiB; tokens are small).
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
/// Chunk of a streamed request or response body.
constexpr std::size_t kChunkBytes = 1 << 20;
/// The first read of a remote object sent to a client: small, for a quick first byte.
constexpr std::uint64_t kFirstChunkBytes = 128 * 1024;
/// How long, and how many bytes, a closing connection keeps reading a client that is still
/// sending (see linger_close): enough for a request body in flight, bounded for one that never
/// ends.
constexpr std::chrono::seconds kLingerTime{2};
constexpr std::size_t kLingerBytes = 16 << 20;
/// Largest sendfile(2) call, so that one connection does not hold a thread for long.
constexpr std::size_t kSendfileBytes = 4 << 20;
/// Local objects up to this size are read on the worker and sent with the response header in one
/// write: for small images that is one syscall instead of a header write plus sendfile().
constexpr std::uint64_t kInlineBytes = 64 * 1024;
/// A `path` field of remote-storage.upload is a link: a few hundred bytes; refuse much more.
constexpr std::size_t kMaxLinkField = 16 * 1024;
/// Bulk downloads name at most this many objects (the SDK sends 50 at a time).
constexpr std::size_t kMaxBulkObjects = 1000;

using Request = http::request_parser<http::buffer_body>;

/// A part of a bulk download or the single download, opened and ready to send.
struct OpenedObject {
  Download download;
  io::File file;                       ///< when the store keeps objects as local files
  std::unique_ptr<io::Reader> reader;  ///< otherwise
  std::uint64_t size = 0;
  /// A small local object read whole on the worker: sent with its header in one write.
  std::shared_ptr<const std::string> inline_bytes;
};

std::string quote_header_value(std::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\r' || c == '\n') continue;
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

/// The bytes of small stored objects, by SHA-256. Stored objects are content-addressed, so an
/// entry can never be stale; least recently used entries go first when the budget is full.
class HotObjects {
 public:
  explicit HotObjects(std::uint64_t budget_bytes) : budget_(budget_bytes) {}

  std::shared_ptr<const std::string> get(const std::string& sha256) {
    std::lock_guard lock(mutex_);
    const auto it = index_.find(sha256);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);  // now the most recent
    return it->second->second;
  }

  void put(const std::string& sha256, std::shared_ptr<const std::string> bytes) {
    if (bytes->size() > budget_ / 8) return;  // one object never crowds out the rest
    std::lock_guard lock(mutex_);
    if (index_.contains(sha256)) return;
    used_ += bytes->size();
    order_.emplace_front(sha256, std::move(bytes));
    index_[sha256] = order_.begin();
    while (used_ > budget_ && !order_.empty()) {
      used_ -= order_.back().second->size();
      index_.erase(order_.back().first);
      order_.pop_back();
    }
  }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const std::string>>;
  std::mutex mutex_;
  std::uint64_t budget_;
  std::uint64_t used_ = 0;
  std::list<Entry> order_;
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

/// A multipart boundary that cannot occur in the parts: 32 random hex digits.
std::string random_boundary() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "stowage-";
  for (int i = 0; i < 2; ++i) {
    std::uint64_t r = rng();
    for (int j = 0; j < 16; ++j, r >>= 4) out.push_back(kHex[r & 0xf]);
  }
  return out;
}

}  // namespace

/// Blocking work started on the worker pool without waiting for it: the coroutine goes on (say,
/// reading the next chunk from the socket) and collects the result later with wait(). The
/// caller must wait() before the work's inputs go away. One piece of work at a time.
template <class R>
class Background {
 public:
  explicit Background(asio::any_io_executor executor)
      : signal_(std::move(executor), asio::steady_timer::time_point::max()) {}

  template <class F>
  void start(asio::thread_pool& pool, F work) {
    result_.reset();
    running_ = true;
    signal_.expires_at(asio::steady_timer::time_point::max());
    asio::post(pool, [this, work = std::move(work)]() mutable {
      R r = work();
      // Back on the coroutine's executor: set the result there, then wake it.
      asio::post(signal_.get_executor(), [this, r = std::move(r)]() mutable {
        result_.emplace(std::move(r));
        signal_.cancel();
      });
    });
  }

  /// The result of the work started last; nullopt when none is running.
  asio::awaitable<std::optional<R>> wait() {
    if (!running_) co_return std::nullopt;
    while (!result_) co_await signal_.async_wait(kToken);
    running_ = false;
    co_return std::move(result_);
  }

 private:
  asio::steady_timer signal_;
  std::optional<R> result_;
  bool running_ = false;
};

struct Server::Impl {
  Impl(service::Service& service, ServerOptions options)
      : service(service),
        api(service),
        options(std::move(options)),
        hot(this->options.hot_cache_bytes),
        ioc(static_cast<int>(io_thread_count())),
        workers(worker_thread_count()),
        acceptor(ioc) {}

  unsigned io_thread_count() const {
    return options.io_threads ? options.io_threads
                              : std::max(1u, std::thread::hardware_concurrency());
  }
  unsigned worker_thread_count() const {
    return options.worker_threads ? options.worker_threads
                                  : 4 * std::max(1u, std::thread::hardware_concurrency());
  }

  service::Service& service;
  Api api;
  ServerOptions options;
  HotObjects hot;
  asio::io_context ioc;
  asio::thread_pool workers;
  tcp::acceptor acceptor;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};
  std::atomic<int> in_flight{0};
  std::mutex drain_mutex;
  std::condition_variable drained;
  bool stopped = false;

  // --- Running blocking work off the event loop

  /// Runs `f` on the worker pool and resumes the calling coroutine on its own executor.
  template <class F>
  asio::awaitable<std::invoke_result_t<F&>> offload(F f) {
    using R = std::invoke_result_t<F&>;
    std::optional<R> out;
    std::exception_ptr failure;
    co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
        [&](auto handler) {
          asio::post(workers, [&, handler = std::move(handler)]() mutable {
            try {
              out.emplace(f());
            } catch (...) {
              failure = std::current_exception();
            }
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, std::move(handler));
          });
        },
        asio::use_awaitable);
    if (failure) std::rethrow_exception(failure);
    co_return std::move(*out);
  }

  // --- Accepting

  asio::awaitable<void> listen() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(kToken);
      if (ec) {
        if (ec == asio::error::operation_aborted || stopping) co_return;
        spdlog::warn("accept: {}", ec.message());
        continue;
      }
      socket.set_option(tcp::no_delay(true));
      auto strand = asio::make_strand(ioc);
      asio::co_spawn(strand, session(beast::tcp_stream(std::move(socket))), asio::detached);
    }
  }

  // --- One connection

  asio::awaitable<void> session(beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    // A TLS ClientHello (the SDK probes https:// first) gets the connection closed at once
    // rather than a wait for an HTTP header that never comes.
    stream.expires_after(options.io_timeout);
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kToken);
    if (ec) co_return;
    buffer.commit(n);
    if (n > 0 && static_cast<unsigned char>(*static_cast<const char*>(buffer.data().data())) ==
                     kTlsHandshake) {
      stream.socket().close(ec);
      co_return;
    }
    for (;;) {
      Request parser;
      parser.header_limit(kMaxHeaderBytes);
      // The limit depends on the method; handle() sets it once the target is known.
      parser.body_limit(boost::none);
      stream.expires_after(options.io_timeout);
      auto [rec, rn] = co_await http::async_read_header(stream, buffer, parser, kToken);
      if (rec) {
        if (rec != http::error::end_of_stream && rec != asio::error::operation_aborted &&
            rec != beast::error::timeout && rec != asio::error::eof &&
            rec != asio::error::connection_reset) {
          co_await send_error(stream, 400, "BadRequest", "malformed HTTP request: " + rec.message(),
                              false, 11);
        }
        break;
      }
      ++in_flight;
      bool keep_alive = false;
      const auto started = std::chrono::steady_clock::now();
      const auto target = parser.get().target();
      const std::string label = request_label(std::string_view(target.data(), target.size()));
      try {
        keep_alive = co_await handle(stream, buffer, parser);
      } catch (const std::exception& e) {
        spdlog::error("request failed: {}", e.what());
      }
      if (options.metrics != nullptr) {
        options.metrics
            ->histogram("stowage_request_duration_seconds", "Time to answer a request.",
                        {{"method", label}})
            .observe(std::chrono::steady_clock::now() - started);
      }
      if (--in_flight == 0 && stopping) drained.notify_all();
      if (!keep_alive || stopping) break;
    }
    co_await linger_close(stream);
  }

  /// Ends a connection so that the client reads our last response: after an early answer (a 413,
  /// a refused upload) the client may still be sending its body, and closing a socket with
  /// unread bytes makes the kernel send a reset that can destroy the response before the client
  /// reads it. So: stop sending, then read and drop what still comes, for a bounded time and
  /// amount, before closing (what nginx calls a lingering close).
  asio::awaitable<void> linger_close(beast::tcp_stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) co_return;
    const auto deadline = std::chrono::steady_clock::now() + kLingerTime;
    std::array<char, 64 * 1024> sink;
    std::size_t dropped = 0;
    while (dropped < kLingerBytes && std::chrono::steady_clock::now() < deadline) {
      stream.expires_after(kLingerTime);
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), kToken);
      if (rec) break;  // the client closed too (EOF), or the time ran out
      dropped += n;
    }
  }

  // --- Writing responses

  asio::awaitable<bool> send_json(beast::tcp_stream& stream, int status, std::string body,
                                  bool keep_alive, unsigned version) {
    http::response<http::string_body> res{static_cast<http::status>(status), version};
    res.set(http::field::server, "stowage");
    res.set(http::field::content_type, "application/json; charset=utf-8");
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    stream.expires_after(options.io_timeout);
    auto [ec, n] = co_await http::async_write(stream, res, kToken);
    co_return !ec && keep_alive;
  }

  asio::awaitable<bool> send_error(beast::tcp_stream& stream, int status, std::string_view error,
                                   std::string_view message, bool keep_alive, unsigned version) {
    co_return co_await send_json(stream, status, Api::error_json(error, message), keep_alive,
                                 version);
  }

  asio::awaitable<bool> send_api_error(beast::tcp_stream& stream, const Error& error,
                                       bool keep_alive, unsigned version) {
    auto r = Api::error_response(error);
    co_return co_await send_json(stream, r.status, std::move(r.json), keep_alive, version);
  }

  // --- Reading request bodies

  /// Reads the next piece of the body into `out`; returns the bytes read (0 once the body is
  /// done). TooLarge past the parser's body limit.
  asio::awaitable<Result<std::size_t>> read_body_some(beast::tcp_stream& stream,
                                                      beast::flat_buffer& buffer, Request& parser,
                                                      std::span<std::byte> out) {
    if (parser.is_done()) co_return std::size_t{0};
    auto& body = parser.get().body();
    body.data = out.data();
    body.size = out.size();
    stream.expires_after(options.io_timeout);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, kToken);
    if (ec == http::error::need_buffer) ec = {};
    if (ec == http::error::body_limit) {
      co_return make_error(ErrorCode::TooLarge, "the request body is larger than allowed");
    }
    if (ec)
      co_return make_error(ErrorCode::InvalidArgument, "reading the request body: " + ec.message());
    co_return out.size() - body.size;
  }

  /// Reads a whole (small) body as text.
  asio::awaitable<Result<std::string>> read_body_text(beast::tcp_stream& stream,
                                                      beast::flat_buffer& buffer, Request& parser) {
    std::string text;
    std::array<std::byte, 64 * 1024> chunk;
    for (;;) {
      auto n = co_await read_body_some(stream, buffer, parser, chunk);
      if (!n) co_return n.error();
      text.append(reinterpret_cast<const char*>(chunk.data()), *n);
      if (parser.is_done()) co_return text;
    }
  }

  // --- Dispatch

  /// Handles one request whose header has been read; returns whether to keep the connection.
  asio::awaitable<bool> handle(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                               Request& parser) {
    const auto& req = parser.get();
    const unsigned version = req.version();
    const bool keep_alive = req.keep_alive() && !stopping;
    const std::string_view target(req.target().data(), req.target().size());
    const std::string_view path = target.substr(0, target.find('?'));

    if (path == "/healthz") {
      co_return co_await send_json(stream, 200, R"({"status":"ok"})", keep_alive, version);
    }
    // Previews and /metrics (server/previews.cpp); blocking work goes to the workers.
    if ((path == "/metrics" && options.metrics) ||
        (path.starts_with("/previews/") && options.previews)) {
      // (No co_await inside ?: here: GCC 12 destroys its temporaries twice.)
      Reply reply;
      if (path == "/metrics") {
        boost::system::error_code ec;
        const bool loopback = stream.socket().remote_endpoint(ec).address().is_loopback() && !ec;
        const std::string token(req["x-api-key"]);
        bool valid_token = false;
        if (!metrics_allowed(options.metrics_access, loopback, false) && !token.empty()) {
          valid_token = co_await offload([&] { return service.authenticate(token).has_value(); });
        }
        if (metrics_allowed(options.metrics_access, loopback, valid_token)) {
          reply = metrics_reply(*options.metrics);
        } else {
          reply.status = 401;
          reply.content_type = "application/json; charset=utf-8";
          reply.body = Api::error_json(
              "Unauthenticated",
              token.empty() ? "/metrics needs an x-api-key header (STOWAGE_METRICS_ACCESS)"
                            : "/metrics: the x-api-key token is not valid");
        }
      } else {
        const std::string token(req["x-api-key"]);
        const std::string whole(target);
        reply = co_await offload([&] { return options.previews->handle(whole, token); });
      }
      auto res = make_response(std::move(reply), version, keep_alive && parser.is_done());
      stream.expires_after(options.io_timeout);
      auto [ec, n] = co_await http::async_write(stream, res, kToken);
      co_return !ec && res.keep_alive();
    }
    // The web console's pages: static files only, their data comes through the API.
    if (options.console && is_console_path(path) &&
        (req.method() == http::verb::get || req.method() == http::verb::head)) {
      auto file = console_reply(path, req[http::field::if_none_match]);
      http::response<http::string_body> res{static_cast<http::status>(file.status), version};
      res.set(http::field::server, "stowage");
      for (auto& [name, value] : file.headers) res.set(name, value);
      if (req.method() == http::verb::get) res.body() = std::string(file.body);
      res.prepare_payload();
      if (req.method() == http::verb::head) res.content_length(file.body.size());
      res.keep_alive(keep_alive && parser.is_done());
      stream.expires_after(options.io_timeout);
      auto [ec, n] = co_await http::async_write(stream, res, kToken);
      co_return !ec && res.keep_alive();
    }
    if (!path.starts_with(kApiPrefix)) {
      co_return co_await send_error(stream, 404, "NotFound", "no such path: " + std::string(path),
                                    keep_alive && parser.is_done(), version);
    }
    ApiRequest api_request;
    api_request.method = std::string(path.substr(kApiPrefix.size()));
    api_request.is_get = req.method() == http::verb::get;
    if (!api_request.is_get && req.method() != http::verb::post) {
      co_return co_await send_error(stream, 405, "MethodNotAllowed", "use GET or POST", false,
                                    version);
    }
    const bool upload = Api::is_upload(api_request.method);
    const bool console_method = options.console && ConsoleApi::handles(api_request.method);
    if (!upload && !console_method && !Api::handles(api_request.method)) {
      co_return co_await send_error(stream, 404, "NotFound",
                                    "unknown API method '" + api_request.method + "'", false,
                                    version);
    }
    // Refuse an oversized body before reading it, when its length is announced.
    const std::uint64_t limit = upload ? options.max_upload_bytes : options.max_json_bytes;
    if (const auto length = parser.content_length(); length && *length > limit) {
      co_return co_await send_error(
          stream, 413, "TooLarge",
          "the request body is larger than " + std::to_string(limit) + " bytes", false, version);
    }
    parser.body_limit(limit);
    if (const auto expect = req[http::field::expect]; beast::iequals(expect, "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, version};
      auto [ec, n] = co_await http::async_write(stream, cont, kToken);
      if (ec) co_return false;
    }
    api_request.content_type = std::string(req[http::field::content_type]);
    const auto host = req[http::field::host];
    api_request.base_url = "http://" + std::string(host.empty() ? "localhost" : host);
    const std::string token(req["x-api-key"]);
    if (const auto q = target.find('?'); q != std::string_view::npos) {
      auto url = boost::urls::parse_origin_form(target);
      if (!url) {
        co_return co_await send_error(stream, 400, "InvalidArgument", "malformed query string",
                                      false, version);
      }
      for (const auto& param : url->params()) api_request.query[param.key] = param.value;
    }

    if (upload && team_files_is_upload(api_request.method)) {
      co_return co_await handle_sink_upload(stream, buffer, parser, token, api_request,
                                            keep_alive, version);
    }
    if (upload && api_request.method == "remote-storage.upload") {
      co_return co_await handle_remote_upload(stream, buffer, parser, token, keep_alive, version);
    }
    if (upload) {
      const auto kind = api_request.method == "videos.bulk.upload" ? service::MediaKind::Video
                                                                   : service::MediaKind::Image;
      co_return co_await handle_upload(stream, buffer, parser, token, kind, keep_alive, version);
    }

    auto body = co_await read_body_text(stream, buffer, parser);
    if (!body) co_return co_await send_api_error(stream, body.error(), false, version);
    api_request.body = std::move(*body);
    const std::string range(req[http::field::range]);

    // A download whose caller, item and bytes are all in memory is answered right here.
    if ((api_request.method == "images.download" || api_request.method == "videos.download") &&
        !api_request.is_get) {
      if (auto hit = cached_download(token, api_request)) {
        co_return co_await send_object(stream, *hit, range, keep_alive, version);
      }
    }
    // Authentication, the handler and opening what it returns: one trip to the workers.
    struct Outcome {
      ApiResponse response;
      std::vector<OpenedObject> objects;
    };
    Outcome outcome = co_await offload([&]() -> Outcome {
      auto principal = service.authenticate(token);
      if (!principal) return {Api::error_response(principal.error()), {}};
      api_request.principal = std::move(*principal);
      Outcome o{console_method ? options.console->handle(api_request) : api.handle(api_request),
                {}};
      auto opened = open_downloads(o.response);
      if (!opened) return {Api::error_response(opened.error()), {}};
      o.objects = std::move(*opened);
      return o;
    });
    ApiResponse& response = outcome.response;
    if (response.download) {
      co_return co_await send_object(stream, outcome.objects.front(), range, keep_alive, version);
    }
    if (!response.bulk_download.empty()) {
      co_return co_await send_bulk(stream, outcome.objects, keep_alive, version);
    }
    co_return co_await send_json(stream, response.status, std::move(response.json), keep_alive,
                                 version);
  }

  // --- Downloads

  /// The object of an images.download request when the token, the item and its bytes are all in
  /// memory; nullopt sends the request down the usual path. Touches neither disk nor catalog.
  std::optional<OpenedObject> cached_download(const std::string& token, const ApiRequest& request) {
    const auto id = Api::download_id(request);
    if (!id) return std::nullopt;
    const auto principal = service.cached_principal(token);
    if (!principal) return std::nullopt;
    const auto source = service.cached_item_source(*principal, *id);
    if (!source || source->sha256_base64.empty()) return std::nullopt;
    auto bytes = hot.get(source->sha256_base64);
    if (!bytes) return std::nullopt;
    OpenedObject o;
    o.download = Api::download_of(*source);
    o.size = bytes->size();
    o.inline_bytes = std::move(bytes);
    return o;
  }

  /// Opens every object a response names (blocking; on a worker).
  Result<std::vector<OpenedObject>> open_downloads(const ApiResponse& response) {
    std::vector<Download> wanted;
    if (response.download) wanted.push_back(*response.download);
    wanted.insert(wanted.end(), response.bulk_download.begin(), response.bulk_download.end());
    if (wanted.size() > kMaxBulkObjects) {
      return make_error(ErrorCode::InvalidArgument,
                        "at most " + std::to_string(kMaxBulkObjects) + " images per bulk download");
    }
    std::vector<OpenedObject> out;
    out.reserve(wanted.size());
    for (auto& d : wanted) {
      OpenedObject o;
      store::ObjectStore& store = d.store ? *d.store : service.store();
      if (store.capabilities().native_files) {
        STOWAGE_ASSIGN_OR_RETURN(auto native, store.native_file(d.path));
        o.file = std::move(native.file);
        STOWAGE_ASSIGN_OR_RETURN(o.size, o.file.size());
        if (o.size <= kInlineBytes) {
          auto bytes = std::make_shared<std::string>(o.size, '\0');
          STOWAGE_ASSIGN_OR_RETURN(std::size_t n,
                                   o.file.read_at(0, std::as_writable_bytes(std::span(*bytes))));
          if (n != o.size) return make_error(ErrorCode::Corrupt, d.path.to_string() + " shrank");
          if (!d.sha256_base64.empty()) hot.put(d.sha256_base64, bytes);
          o.inline_bytes = std::move(bytes);
          (void)o.file.close();
        } else {
          // Ask the kernel to read ahead now, so that sendfile() on the event loop finds the
          // bytes in the page cache.
          ::posix_fadvise(o.file.fd(), 0, 0, POSIX_FADV_SEQUENTIAL);
          ::posix_fadvise(o.file.fd(), 0,
                          static_cast<off_t>(std::min<std::uint64_t>(o.size, 8 << 20)),
                          POSIX_FADV_WILLNEED);
        }
      } else {
        STOWAGE_TRY(open_remote(store, d, o));
      }
      o.download = std::move(d);
      out.push_back(std::move(o));
    }
    return out;
  }

  /// An object of a store without local files. A storage-cache hit is a local file all the
  /// same, sent with sendfile(2) like one; otherwise only its size is known now, and a reader is
  /// opened when the body is sent.
  Status open_remote(store::ObjectStore& store, const Download& d, OpenedObject& o) {
    if (auto* caching = dynamic_cast<cache::CachingStore*>(&store)) {
      STOWAGE_ASSIGN_OR_RETURN(auto hit, caching->cached_file(d.path));
      if (hit) {
        o.file = std::move(hit->file);
        o.size = hit->info.size;
        ::posix_fadvise(o.file.fd(), 0, 0, POSIX_FADV_SEQUENTIAL);
        return {};
      }
    }
    if (!d.sha256_base64.empty()) {
      // A stored blob is content-addressed: the catalog's size is the object's size, and a
      // round trip to the remote for it would only add latency.
      o.size = d.size;
      return {};
    }
    STOWAGE_ASSIGN_OR_RETURN(auto info, store.stat(d.path));
    o.size = info.size;
    return {};
  }

  /// Sends [offset, offset + length) of an opened object on the socket.
  asio::awaitable<Status> send_range(beast::tcp_stream& stream, OpenedObject& object,
                                     std::uint64_t offset, std::uint64_t length) {
    if (object.inline_bytes) {
      auto [ec, n] = co_await asio::async_write(
          stream, asio::buffer(object.inline_bytes->data() + offset, length), kToken);
      if (ec) co_return make_error(ErrorCode::Cancelled, "client went away");
      co_return Status{};
    }
    if (object.file.is_open()) {
      co_return co_await sendfile_range(stream, object.file, offset, length);
    }
    // A store without local files: a worker fills one buffer from the remote while the loop
    // writes the other to the client. Each buffer is filled whole (a remote stream hands out
    // small pieces), so a worker trip moves a megabyte, not a few kilobytes.
    auto reader = co_await offload([&]() {
      store::ObjectStore& store = object.download.store ? *object.download.store : service.store();
      // A whole object is asked for as such: the storage cache fills on whole reads only.
      store::ReadOptions read;
      if (offset != 0 || length != object.size) read.range = store::ByteRange{offset, length};
      return store.open_read(object.download.path, read);
    });
    if (!reader) co_return reader.error();
    io::Reader& source = **reader;
    std::vector<std::byte> ready(kChunkBytes), filling(kChunkBytes);
    auto fill = [&source](std::vector<std::byte>& buffer,
                          std::uint64_t want) -> Result<std::size_t> {
      const std::size_t cap =
          static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), want));
      std::size_t got = 0;
      while (got < cap) {
        STOWAGE_ASSIGN_OR_RETURN(std::size_t n,
                                 source.read(std::span(buffer).subspan(got, cap - got)));
        if (n == 0) break;
        got += n;
      }
      return got;
    };
    Background<Result<std::size_t>> reading(co_await asio::this_coro::executor);
    std::uint64_t left = length;
    // The first read is small, so that the first bytes reach the client after a short remote
    // read rather than after a whole megabyte; later reads overlap with the writes anyway.
    reading.start(workers, [&, first = std::min<std::uint64_t>(left, kFirstChunkBytes)] {
      return fill(filling, first);
    });
    while (left > 0) {
      auto n = std::move(*co_await reading.wait());
      if (!n) co_return n.error();
      if (*n == 0) co_return make_error(ErrorCode::Corrupt, "object ended early");
      std::swap(ready, filling);
      left -= *n;
      if (left > 0) reading.start(workers, [&, left] { return fill(filling, left); });
      stream.expires_after(options.io_timeout);
      auto [ec, w] = co_await asio::async_write(stream, asio::buffer(ready.data(), *n), kToken);
      if (ec) {
        co_await reading.wait();  // the worker still uses `filling` and `source`
        co_return make_error(ErrorCode::Cancelled, "client went away");
      }
    }
    co_return Status{};
  }

  /// sendfile(2) from the page cache straight to the socket; waits for the socket to drain
  /// between calls.
  asio::awaitable<Status> sendfile_range(beast::tcp_stream& stream, const io::File& file,
                                         std::uint64_t offset, std::uint64_t length) {
    auto& socket = stream.socket();
    socket.native_non_blocking(true);
    asio::steady_timer deadline(socket.get_executor());
    off_t off = static_cast<off_t>(offset);
    std::uint64_t left = length;
    while (left > 0) {
      const ssize_t n =
          ::sendfile(socket.native_handle(), file.fd(), &off,
                     static_cast<std::size_t>(std::min<std::uint64_t>(left, kSendfileBytes)));
      if (n > 0) {
        left -= static_cast<std::uint64_t>(n);
        continue;
      }
      if (n == 0) co_return make_error(ErrorCode::Corrupt, "object ended early");
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return make_error(ErrorCode::Cancelled, "client went away");
      deadline.expires_after(options.io_timeout);
      deadline.async_wait([&socket](boost::system::error_code ec) {
        if (!ec) socket.cancel();
      });
      auto [ec] = co_await socket.async_wait(tcp::socket::wait_write, kToken);
      deadline.cancel();
      if (ec) co_return make_error(ErrorCode::Timeout, "client stopped reading");
    }
    co_return Status{};
  }

  asio::awaitable<bool> send_object(beast::tcp_stream& stream, OpenedObject& object,
                                    const std::string& range_header, bool keep_alive,
                                    unsigned version) {
    const std::uint64_t size = object.size;
    const auto range = parse_range(range_header, range_header.empty() ? 0 : size);
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::server, "stowage");
    res.set(http::field::accept_ranges, "bytes");
    if (!object.download.content_type.empty()) {
      res.set(http::field::content_type, object.download.content_type);
    }
    std::uint64_t offset = 0;
    std::uint64_t length = size;
    if (!range_header.empty() && range.kind == RangeRequest::Kind::Unsatisfiable) {
      res.result(http::status::range_not_satisfiable);
      res.set(http::field::content_range, "bytes */" + std::to_string(size));
      length = 0;
    } else if (!range_header.empty() && range.kind == RangeRequest::Kind::Partial) {
      res.result(http::status::partial_content);
      offset = range.offset;
      length = range.length;
      res.set(http::field::content_range, "bytes " + std::to_string(offset) + "-" +
                                              std::to_string(offset + length - 1) + "/" +
                                              std::to_string(size));
    } else if (!object.download.sha256_base64.empty()) {
      // Lets the client detect a damaged transfer (shared/spec/api.md 1.8).
      res.set("x-content-checksum-sha256", object.download.sha256_base64);
    }
    res.content_length(length);
    res.keep_alive(keep_alive);
    stream.expires_after(options.io_timeout);
    if (object.inline_bytes) {
      http::response<http::string_body> whole{std::move(res.base()),
                                              object.inline_bytes->substr(offset, length)};
      auto [ec, n] = co_await http::async_write(stream, whole, kToken);
      co_return !ec && keep_alive;
    }
    http::response_serializer<http::empty_body> sr{res};
    auto [ec, n] = co_await http::async_write_header(stream, sr, kToken);
    if (ec) co_return false;
    if (length == 0) co_return keep_alive;
    auto sent = co_await send_range(stream, object, offset, length);
    co_return sent&& keep_alive;
  }

  /// multipart/form-data with one part per image, named by its id (the SDK parses name="<id>").
  asio::awaitable<bool> send_bulk(beast::tcp_stream& stream, std::vector<OpenedObject>& objects,
                                  bool keep_alive, unsigned version) {
    const std::string boundary = random_boundary();
    std::vector<std::string> heads;
    std::uint64_t total = 0;
    for (const auto& o : objects) {
      std::string head = "--" + boundary + "\r\nContent-Disposition: form-data; name=" +
                         quote_header_value(o.download.part_name) +
                         "; filename=" + quote_header_value(o.download.filename) + "\r\n";
      if (!o.download.content_type.empty())
        head += "Content-Type: " + o.download.content_type + "\r\n";
      head += "\r\n";
      total += head.size() + o.size + 2;
      heads.push_back(std::move(head));
    }
    const std::string tail = "--" + boundary + "--\r\n";
    total += tail.size();
    http::response<http::empty_body> res{http::status::ok, version};
    res.set(http::field::server, "stowage");
    res.set(http::field::content_type, "multipart/form-data; boundary=" + boundary);
    res.content_length(total);
    res.keep_alive(keep_alive);
    http::response_serializer<http::empty_body> sr{res};
    stream.expires_after(options.io_timeout);
    auto [ec, n] = co_await http::async_write_header(stream, sr, kToken);
    if (ec) co_return false;
    for (std::size_t i = 0; i < objects.size(); ++i) {
      auto [hec, hn] = co_await asio::async_write(stream, asio::buffer(heads[i]), kToken);
      if (hec) co_return false;
      if (!co_await send_range(stream, objects[i], 0, objects[i].size)) co_return false;
      auto [cec, cn] = co_await asio::async_write(stream, asio::buffer("\r\n", 2), kToken);
      if (cec) co_return false;
    }
    auto [tec, tn] = co_await asio::async_write(stream, asio::buffer(tail), kToken);
    co_return !tec && keep_alive;
  }

  // --- Uploads

  /// images.bulk.upload: every file part is streamed to a spool file while it is hashed, then
  /// published content-addressed. Answers a JSON array in part order: {"hash"} or {"errors"}.
  /// remote-storage.upload: ordered `path` (a link) and `file` parts, repeated; each file is
  /// streamed straight into the store its link resolves to and published only complete.
  /// Answers a JSON array of {"path", "size"} in part order.
  asio::awaitable<bool> handle_remote_upload(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                             Request& parser, const std::string& token,
                                             bool keep_alive, unsigned version) {
    auto principal = co_await offload([&]() { return service.authenticate(token); });
    if (!principal) co_return co_await send_api_error(stream, principal.error(), false, version);
    auto boundary = multipart_boundary(parser.get()[http::field::content_type]);
    if (!boundary) co_return co_await send_api_error(stream, boundary.error(), false, version);

    enum class Part { Other, Path, File };
    MultipartParser multipart(*boundary);
    boost::json::array results;
    Part part = Part::Other;
    std::string field;         // the text of the `path` part being read
    std::string pending_path;  // the link the next `file` part goes to
    links::LinkTarget target;
    std::unique_ptr<store::Writer> writer;
    // A writer dropped on failure aborts its upload, which may be a network call: on a worker.
    auto fail = [&](const Error& e) -> asio::awaitable<bool> {
      if (writer)
        co_await offload([&]() {
          writer.reset();
          return 0;
        });
      co_return co_await send_api_error(stream, e, false, version);
    };
    std::vector<std::byte> chunk(kChunkBytes);
    for (;;) {
      auto n = co_await read_body_some(stream, buffer, parser, chunk);
      if (!n) co_return co_await fail(n.error());
      auto events = multipart.feed(std::span<const std::byte>(chunk.data(), *n));
      if (!events) co_return co_await fail(events.error());
      for (auto& event : *events) {
        switch (event.kind) {
          case PartEvent::Kind::Begin: {
            part = Part::Other;
            if (event.headers.name == "path" && !event.headers.filename) {
              part = Part::Path;
              field.clear();
            } else if (event.headers.name == "file") {
              if (pending_path.empty()) {
                co_return co_await fail(make_error(
                    ErrorCode::InvalidArgument, "each 'file' part must follow its 'path' field"));
              }
              auto opened = co_await offload([&]() -> Result<std::unique_ptr<store::Writer>> {
                STOWAGE_ASSIGN_OR_RETURN(target,
                                         service.resolve_link_for(*principal, pending_path));
                return target.store->open_write(target.path, {});
              });
              if (!opened) co_return co_await fail(opened.error());
              writer = std::move(*opened);
              part = Part::File;
            }
            break;
          }
          case PartEvent::Kind::Data: {
            if (part == Part::Path) {
              if (field.size() + event.data.size() > kMaxLinkField) {
                co_return co_await fail(
                    make_error(ErrorCode::InvalidArgument, "a 'path' field is too long"));
              }
              field.append(reinterpret_cast<const char*>(event.data.data()), event.data.size());
            } else if (part == Part::File) {
              auto written = co_await offload([&]() { return writer->write(event.data); });
              if (!written) co_return co_await fail(written.error());
            }
            break;
          }
          case PartEvent::Kind::End: {
            if (part == Part::Path) {
              pending_path = field;
            } else if (part == Part::File) {
              auto info = co_await offload([&]() { return writer->commit(); });
              writer.reset();
              if (!info) co_return co_await fail(info.error());
              results.push_back(
                  boost::json::object{{"path", target.locator.to_string()}, {"size", info->size}});
              pending_path.clear();
            }
            part = Part::Other;
            break;
          }
        }
      }
      if (parser.is_done()) break;
    }
    if (auto ok = multipart.finish(); !ok) co_return co_await fail(ok.error());
    co_return co_await send_json(stream, 200, boost::json::serialize(results), keep_alive, version);
  }

  /// file-storage.upload and .bulk.upload (server/team_files_api.hpp): the body's part events go
  /// to the method's sink on the workers, one at a time; its writers stream to the store.
  asio::awaitable<bool> handle_sink_upload(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                           Request& parser, const std::string& token,
                                           ApiRequest& api_request, bool keep_alive,
                                           unsigned version) {
    auto boundary = multipart_boundary(parser.get()[http::field::content_type]);
    if (!boundary) co_return co_await send_api_error(stream, boundary.error(), false, version);
    std::optional<std::uint64_t> body_bytes;
    if (const auto length = parser.content_length()) body_bytes = *length;
    auto opened = co_await offload([&]() -> Result<std::unique_ptr<UploadSink>> {
      STOWAGE_ASSIGN_OR_RETURN(api_request.principal, service.authenticate(token));
      return team_files_upload(service, api_request, body_bytes);
    });
    if (!opened) co_return co_await send_api_error(stream, opened.error(), false, version);
    std::unique_ptr<UploadSink> sink = std::move(*opened);
    // Dropping the sink aborts the file in flight, which may be a network call: on a worker.
    auto fail = [&](const Error& e) -> asio::awaitable<bool> {
      co_await offload([&]() {
        sink.reset();
        return 0;
      });
      co_return co_await send_api_error(stream, e, false, version);
    };
    MultipartParser multipart(*boundary);
    std::vector<std::byte> chunk(kChunkBytes);
    for (;;) {
      auto n = co_await read_body_some(stream, buffer, parser, chunk);
      if (!n) co_return co_await fail(n.error());
      auto events = multipart.feed(std::span<const std::byte>(chunk.data(), *n));
      if (!events) co_return co_await fail(events.error());
      if (!events->empty()) {
        auto fed = co_await offload([&]() -> Status {
          for (auto& event : *events) {
            switch (event.kind) {
              case PartEvent::Kind::Begin:
                STOWAGE_TRY(sink->begin_part(event.headers));
                break;
              case PartEvent::Kind::Data:
                STOWAGE_TRY(sink->part_data(event.data));
                break;
              case PartEvent::Kind::End:
                STOWAGE_TRY(sink->end_part());
                break;
            }
          }
          return {};
        });
        if (!fed) co_return co_await fail(fed.error());
      }
      if (parser.is_done()) break;
    }
    if (auto ok = multipart.finish(); !ok) co_return co_await fail(ok.error());
    auto answer = co_await offload([&]() { return sink->finish(); });
    if (!answer) co_return co_await fail(answer.error());
    co_await offload([&]() {
      sink.reset();
      return 0;
    });
    co_return co_await send_json(stream, 200, std::move(*answer), keep_alive, version);
  }

  asio::awaitable<bool> handle_upload(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                      Request& parser, const std::string& token,
                                      service::MediaKind kind, bool keep_alive, unsigned version) {
    auto principal = co_await offload([&]() { return service.authenticate(token); });
    if (!principal) co_return co_await send_api_error(stream, principal.error(), false, version);
    auto boundary = multipart_boundary(parser.get()[http::field::content_type]);
    if (!boundary) co_return co_await send_api_error(stream, boundary.error(), false, version);

    MultipartParser multipart(*boundary);
    boost::json::array results;
    std::unique_ptr<service::Upload> current;
    // The bytes of one socket read go to disk on a worker while the next read comes in: two
    // buffers, one being written (in_flight) while the other fills (staged).
    Background<Status> writing(co_await asio::this_coro::executor);
    std::vector<std::byte> staged, in_flight;
    staged.reserve(kChunkBytes + 64 * 1024);
    in_flight.reserve(kChunkBytes + 64 * 1024);
    auto drain = [&]() -> asio::awaitable<Status> {
      auto done = co_await writing.wait();
      if (done && !*done) co_return std::move(*done).error();
      co_return Status{};
    };
    // Every exit waits for the write in flight first: it uses `current` and `in_flight`.
    auto fail = [&](const Error& e) -> asio::awaitable<bool> {
      co_await writing.wait();
      co_return co_await send_api_error(stream, e, false, version);
    };
    std::vector<std::byte> chunk(kChunkBytes);
    for (;;) {
      auto n = co_await read_body_some(stream, buffer, parser, chunk);
      if (!n) co_return co_await fail(n.error());
      auto events = multipart.feed(std::span<const std::byte>(chunk.data(), *n));
      if (!events) co_return co_await fail(events.error());
      for (auto& event : *events) {
        switch (event.kind) {
          case PartEvent::Kind::Begin: {
            if (auto ok = co_await drain(); !ok) co_return co_await fail(ok.error());
            auto upload = co_await offload(
                [&]() { return service.begin_upload(kind, principal->user.id); });
            if (!upload) co_return co_await fail(upload.error());
            current = std::move(*upload);
            break;
          }
          case PartEvent::Kind::Data: {
            if (current) staged.insert(staged.end(), event.data.begin(), event.data.end());
            break;
          }
          case PartEvent::Kind::End: {
            if (!current) break;
            if (auto ok = co_await drain(); !ok) co_return co_await fail(ok.error());
            auto blob = co_await offload([&]() -> Result<catalog::Blob> {
              STOWAGE_TRY(current->write(staged));
              return current->finish();
            });
            staged.clear();
            current.reset();
            if (blob) {
              results.push_back(boost::json::object{
                  {"hash", service::Service::hash_hex_to_base64(blob->sha256_hex)}});
            } else if (blob.error().code == ErrorCode::InvalidArgument) {
              results.push_back(
                  boost::json::object{{"errors", {{"message", blob.error().message}}}});
            } else {
              co_return co_await fail(blob.error());
            }
            break;
          }
        }
      }
      if (current && !staged.empty()) {
        if (auto ok = co_await drain(); !ok) co_return co_await fail(ok.error());
        std::swap(staged, in_flight);
        staged.clear();
        writing.start(workers,
                      [upload = current.get(), &in_flight] { return upload->write(in_flight); });
      }
      if (parser.is_done()) break;
    }
    if (auto ok = co_await drain(); !ok) co_return co_await fail(ok.error());
    if (auto ok = multipart.finish(); !ok) co_return co_await fail(ok.error());
    co_return co_await send_json(stream, 200, boost::json::serialize(results), keep_alive, version);
  }
};

bool metrics_allowed(config::MetricsAccess access, bool loopback, bool valid_token) {
  switch (access) {
    case config::MetricsAccess::Open:
      return true;
    case config::MetricsAccess::Loopback:
      return loopback || valid_token;
    case config::MetricsAccess::Token:
      return valid_token;
  }
  return false;
}

Server::Server(service::Service& service, ServerOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}

Server::~Server() { stop(); }

Result<std::uint16_t> Server::start() {
  Impl& s = *impl_;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(s.options.host, ec);
  if (ec)
    return make_error(ErrorCode::InvalidArgument,
                      "invalid listen address '" + s.options.host + "'");
  const tcp::endpoint endpoint(address, s.options.port);
  s.acceptor.open(endpoint.protocol(), ec);
  if (!ec) s.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor.bind(endpoint, ec);
  if (!ec) s.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return make_error(ErrorCode::Unavailable, "cannot listen on " + s.options.host + ":" +
                                                  std::to_string(s.options.port) + ": " +
                                                  ec.message());
  }
  const auto port = s.acceptor.local_endpoint().port();
  s.work.emplace(s.ioc.get_executor());
  asio::co_spawn(s.ioc, s.listen(), asio::detached);
  for (unsigned i = 0; i < s.io_thread_count(); ++i) {
    s.threads.emplace_back([&s] {
      // sendfile(2) to a peer that has gone raises SIGPIPE, which would kill the process: block
      // it on the threads that write to sockets, so the call fails with EPIPE instead.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      s.ioc.run();
    });
  }
  return port;
}

void Server::stop() {
  Impl& s = *impl_;
  if (s.stopped) return;
  s.stopped = true;
  s.stopping = true;
  asio::post(s.ioc, [&s] {
    boost::system::error_code ec;
    s.acceptor.close(ec);
  });
  {
    std::unique_lock lock(s.drain_mutex);
    s.drained.wait_for(lock, s.options.drain_timeout, [&s] { return s.in_flight.load() == 0; });
  }
  s.work.reset();
  s.ioc.stop();
  for (auto& t : s.threads) t.join();
  s.threads.clear();
  s.workers.join();
}

}  // namespace stowage::server
