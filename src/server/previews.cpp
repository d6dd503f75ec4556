// SPDX-License-Identifier: Apache-2.0
#include "server/previews.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <charconv>
#include <vector>

#include "server/api.hpp"
#include "stowage/media/video.hpp"

namespace stowage::server {
namespace {

namespace http = boost::beast::http;

constexpr std::string_view kPreviewsPrefix = "/previews/";
constexpr std::string_view kApiPrefix = "/public/api/v3/";
/// Previews of a blob never change (blobs are content-addressed), so browsers may keep them;
/// `private` because they are not public images.
constexpr std::string_view kCacheControl = "private, max-age=86400";

Reply error_reply(const Error& error) {
  auto r = Api::error_response(error);
  return Reply{r.status, "application/json; charset=utf-8", std::move(r.json), "no-store"};
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

/// The sha256 of a blob key "images/original/<h0h1>/<h2h3>/<hex>[.ext]" (Service::blob_key).
std::optional<std::string> blob_hash_of(std::string_view key) {
  constexpr std::string_view kOriginals = "images/original/";
  if (!key.starts_with(kOriginals)) return std::nullopt;
  std::string_view name = key.substr(key.rfind('/') + 1);
  name = name.substr(0, name.find('.'));
  if (!is_hex64(name)) return std::nullopt;
  return std::string(name);
}

}  // namespace

Previews::Previews(service::Service& service, const preview::UrlSigner* signer,
                   cache::DiskCache* preview_cache, cache::CachingStore* storage_cache,
                   metrics::Registry* metrics, PreviewsOptions options)
    : service_(service),
      signer_(signer),
      preview_cache_(preview_cache),
      storage_cache_(storage_cache),
      metrics_(metrics),
      options_(std::move(options)) {
  if (metrics_) {
    rendered_ = &metrics_->counter("stowage_previews_rendered_total",
                                   "Previews made with libvips (preview cache misses).");
    render_seconds_ = &metrics_->histogram("stowage_preview_render_duration_seconds",
                                           "Time to read an original and make its preview.");
  }
}

std::string Previews::sign(std::string_view source) const {
  if (signer_ == nullptr) return {};
  return signer_->query(source, std::chrono::system_clock::now());
}

Reply Previews::handle(std::string_view target, const std::string& api_token) {
  auto reply = serve(target, api_token);
  if (!reply) return error_reply(reply.error());
  return std::move(*reply);
}

Result<Reply> Previews::serve(std::string_view target, const std::string& api_token) {
  const std::string_view path = target.substr(0, target.find('?'));
  std::string expires;
  std::string signature;
  if (const auto q = target.find('?'); q != std::string_view::npos) {
    auto url = boost::urls::parse_origin_form(target);
    if (!url) return make_error(ErrorCode::InvalidArgument, "malformed query string");
    for (const auto& param : url->params()) {
      if (param.key == "expires") expires = param.value;
      if (param.key == "signature") signature = param.value;
    }
  }
  STOWAGE_ASSIGN_OR_RETURN(auto request,
                           preview::parse_preview_path(path.substr(kPreviewsPrefix.size())));
  if (std::string_view(request.source).starts_with(kVideoFrameSource)) {
    std::optional<int> stream;
    if (const auto q = target.find('?'); q != std::string_view::npos) {
      auto url = boost::urls::parse_origin_form(target);
      for (const auto& param : url->params()) {
        if (param.key != "videoStreamIndex") continue;
        int n = 0;
        const auto [end, ec] =
            std::from_chars(param.value.data(), param.value.data() + param.value.size(), n);
        if (ec != std::errc() || end != param.value.data() + param.value.size() || n < 0) {
          return make_error(ErrorCode::InvalidArgument, "videoStreamIndex must be a number");
        }
        stream = n;
      }
    }
    return serve_video_frame(request, stream, expires, signature, api_token);
  }

  if (std::string_view(request.source).starts_with(kLinkedImageSource)) {
    return serve_linked_image(request, expires, signature, api_token);
  }

  // The source: a stored blob of this instance, in one of its two buckets.
  const std::string_view source = request.source;
  const auto slash = source.find('/', 1);
  const auto not_found = make_error(ErrorCode::NotFound, "no stored image at that path");
  if (slash == std::string_view::npos) return not_found;
  const store::ObjectPath object{std::string(source.substr(1, slash - 1)),
                                 std::string(source.substr(slash + 1))};
  const auto& opts = service_.options();
  if (object.bucket != opts.public_bucket && object.bucket != opts.private_bucket) {
    return not_found;
  }
  const auto hash = blob_hash_of(object.key);
  if (!hash) return not_found;

  // Who is asking: a signed URL the API handed out, or a token whose teams use the blob.
  if (!signature.empty() || !expires.empty()) {
    if (signer_ == nullptr) {
      return make_error(ErrorCode::PermissionDenied, "signed preview URLs are not enabled");
    }
    STOWAGE_TRY(signer_->verify(source, expires, signature, std::chrono::system_clock::now()));
  } else {
    STOWAGE_ASSIGN_OR_RETURN(auto who, service_.authenticate(api_token));
    STOWAGE_ASSIGN_OR_RETURN(auto teams, service_.catalog().blob_team_ids(*hash));
    const bool allowed = std::any_of(teams.begin(), teams.end(), [&](catalog::Id t) {
      return std::find(who.team_ids.begin(), who.team_ids.end(), t) != who.team_ids.end();
    });
    if (!allowed) {
      return make_error(ErrorCode::PermissionDenied,
                        "no item of your teams has that image; previews are private");
    }
  }
  auto blob = service_.catalog().get_blob(*hash);
  if (!blob) return blob.error().code == ErrorCode::NotFound ? not_found : blob.error();
  if (blob->bucket != object.bucket || blob->key != object.key) return not_found;

  auto render = [&]() -> Result<preview::Rendered> {
    const auto started = std::chrono::steady_clock::now();
    STOWAGE_ASSIGN_OR_RETURN(auto original, open_original(service_.store(), storage_cache_, object));
    STOWAGE_ASSIGN_OR_RETURN(auto rendered,
                             preview::render_preview(original, request.options, options_.limits));
    if (rendered_) rendered_->inc();
    if (render_seconds_) render_seconds_->observe(std::chrono::steady_clock::now() - started);
    return rendered;
  };

  return cached_reply(*hash + "\n" + request.options.canonical(), render);
}

Result<Reply> Previews::cached_reply(const std::string& key,
                                     const std::function<Result<preview::Rendered>()>& render) {
  Reply reply;
  reply.cache_control = kCacheControl;
  if (preview_cache_ == nullptr) {
    STOWAGE_ASSIGN_OR_RETURN(auto rendered, render());
    reply.content_type = std::move(rendered.mime);
    reply.body = std::move(rendered.bytes);
    return reply;
  }
  STOWAGE_ASSIGN_OR_RETURN(
      auto hit,
      preview_cache_->get_or_fill(key, [&](cache::EntryWriter& writer) -> Result<std::string> {
        STOWAGE_ASSIGN_OR_RETURN(auto rendered, render());
        STOWAGE_TRY(writer.write(std::as_bytes(std::span(rendered.bytes))));
        return rendered.mime;
      }));
  reply.content_type = std::move(hit.meta);
  reply.body.resize(hit.size);
  STOWAGE_ASSIGN_OR_RETURN(std::size_t n,
                           hit.file.read_at(0, std::as_writable_bytes(std::span(reply.body))));
  if (n != hit.size) return make_error(ErrorCode::Corrupt, "preview cache entry is short");
  return reply;
}

Result<Reply> Previews::serve_video_frame(const preview::PreviewPath& request,
                                          std::optional<int> stream_index,
                                          const std::string& expires,
                                          const std::string& signature,
                                          const std::string& api_token) {
  // <position>/v/<item id>: the SDK's image_preview_url with a video item's processingPath.
  const std::string_view source = request.source;
  const std::string_view rest = source.substr(kVideoFrameSource.size());
  const auto slash = rest.find('/');
  const auto not_found = make_error(ErrorCode::NotFound, "no video at that path");
  if (slash == std::string_view::npos) return not_found;
  STOWAGE_ASSIGN_OR_RETURN(auto position, media::FramePosition::parse(rest.substr(0, slash)));
  std::string_view processing = rest.substr(slash + 1);
  if (!processing.starts_with(kVideoProcessingPrefix)) return not_found;
  processing.remove_prefix(kVideoProcessingPrefix.size());
  catalog::Id id = 0;
  const auto [end, ec] = std::from_chars(processing.data(), processing.data() + processing.size(), id);
  if (ec != std::errc() || end != processing.data() + processing.size()) return not_found;

  auto found = item_for(source, id, expires, signature, api_token);
  if (!found) return found.error().code == ErrorCode::NotFound ? not_found : found.error();
  service::ItemSource& item = *found;
  if (!item.item.mime.starts_with("video/")) return not_found;
  // The item's own stream unless the URL names another one (the SDK always sends 0).
  int stream = 0;
  {
    boost::system::error_code jec;
    const auto meta = boost::json::parse(item.item.file_meta, jec);
    if (!jec && meta.is_object()) {
      if (const auto* index = meta.get_object().if_contains("index"); index && index->is_int64()) {
        stream = static_cast<int>(index->get_int64());
      }
    }
  }
  if (stream_index && *stream_index != 0) stream = *stream_index;

  store::ObjectStore& store = item.store ? *item.store : service_.store();
  STOWAGE_ASSIGN_OR_RETURN(auto info, store.stat(item.path));
  auto render = [&]() -> Result<preview::Rendered> {
    const auto started = std::chrono::steady_clock::now();
    std::unique_ptr<io::RandomAccessReader> reader;
    if (!item.store && storage_cache_ != nullptr && storage_cache_->cache() != nullptr &&
        !store.capabilities().native_files) {
      if (auto cached = storage_cache_->open_cached(item.path)) {
        reader = std::make_unique<io::FileRandomReader>(std::move(cached->file), cached->info.size);
      }
    }
    if (!reader) {
      STOWAGE_ASSIGN_OR_RETURN(reader, store.open_random(info));
    }
    STOWAGE_ASSIGN_OR_RETURN(auto frame, media::decode_video_frame(*reader, stream, position));
    STOWAGE_ASSIGN_OR_RETURN(auto rendered,
                             preview::render_frame_preview(frame, request.options, options_.limits));
    if (rendered_) rendered_->inc();
    if (render_seconds_) render_seconds_->observe(std::chrono::steady_clock::now() - started);
    return rendered;
  };

  // Stored bytes never change under a hash; a link's may, so its version is in the key.
  const std::string bytes_key = item.item.blob_sha256_hex
                                    ? *item.item.blob_sha256_hex
                                    : item.item.link.value_or("") + "\n" + info.etag;
  const std::string key = "videoframe\n" + bytes_key + "\n" + std::to_string(stream) + "\n" +
                          std::string(rest.substr(0, slash)) + "\n" + request.options.canonical();
  return cached_reply(key, render);
}

Result<service::ItemSource> Previews::item_for(std::string_view source, catalog::Id id,
                                               const std::string& expires,
                                               const std::string& signature,
                                               const std::string& api_token) {
  if (!signature.empty() || !expires.empty()) {
    if (signer_ == nullptr) {
      return make_error(ErrorCode::PermissionDenied, "signed preview URLs are not enabled");
    }
    STOWAGE_TRY(signer_->verify(source, expires, signature, std::chrono::system_clock::now()));
    STOWAGE_ASSIGN_OR_RETURN(auto found, service_.catalog().get_item(id));
    return service_.locate(std::move(found));
  }
  STOWAGE_ASSIGN_OR_RETURN(auto who, service_.authenticate(api_token));
  return service_.item_source(who, id);
}

Result<Reply> Previews::serve_linked_image(const preview::PreviewPath& request,
                                           const std::string& expires,
                                           const std::string& signature,
                                           const std::string& api_token) {
  const std::string_view source = request.source;
  const std::string_view digits = source.substr(kLinkedImageSource.size());
  const auto not_found = make_error(ErrorCode::NotFound, "no linked image at that path");
  catalog::Id id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
    return not_found;
  }
  auto item = item_for(source, id, expires, signature, api_token);
  if (!item) return item.error().code == ErrorCode::NotFound ? not_found : item.error();
  if (!item->item.link || !item->store || !item->item.mime.starts_with("image/")) return not_found;

  store::ObjectStore& store = *item->store;
  // The cached copy's version when it is fresh (or the remote is down): no remote request.
  STOWAGE_ASSIGN_OR_RETURN(auto info, store.stat(item->path));
  auto* caching = dynamic_cast<cache::CachingStore*>(&store);
  auto render = [&]() -> Result<preview::Rendered> {
    const auto started = std::chrono::steady_clock::now();
    STOWAGE_ASSIGN_OR_RETURN(auto original, open_original(store, caching, item->path));
    STOWAGE_ASSIGN_OR_RETURN(auto rendered,
                             preview::render_preview(original, request.options, options_.limits));
    if (rendered_) rendered_->inc();
    if (render_seconds_) render_seconds_->observe(std::chrono::steady_clock::now() - started);
    return rendered;
  };
  // A link's bytes may change in place: their version is in the key.
  return cached_reply("link\n" + *item->item.link + "\n" + info.etag + "\n" +
                          std::to_string(info.size) + "\n" + request.options.canonical(),
                      render);
}

Result<io::File> Previews::open_original(store::ObjectStore& store, cache::CachingStore* caching,
                                         const store::ObjectPath& path) {
  if (store.capabilities().native_files) {
    STOWAGE_ASSIGN_OR_RETURN(auto native, store.native_file(path));
    return io::File::open_read(native.path);
  }
  if (caching != nullptr && caching->cache() != nullptr) {
    auto cached = caching->open_cached(path);
    if (cached) return std::move(cached->file);
    if (cached.error().code != ErrorCode::TooLarge) return cached.error();
  }
  // No local copy: spool the original to a temp file, reopened for reading (libvips maps it)
  // and unlinked at once, so that nothing is left behind.
  STOWAGE_ASSIGN_OR_RETURN(auto info, store.stat(path));
  if (info.size > options_.max_spooled_bytes) {
    return make_error(ErrorCode::TooLarge, "the original is too large to make a preview of");
  }
  STOWAGE_TRY(io::create_directories_durable(options_.spool_dir));
  const auto temp = io::unique_temp_path(options_.spool_dir, "preview-source");
  STOWAGE_ASSIGN_OR_RETURN(auto out, io::File::create_exclusive(temp, 0600));
  auto spool = [&]() -> Result<io::File> {
    STOWAGE_ASSIGN_OR_RETURN(auto reader, store.open_read(path, {.if_match = info.etag}));
    std::vector<std::byte> chunk(io::kDefaultChunkBytes);
    STOWAGE_TRY(io::drain(
        *reader, [&](std::span<const std::byte> b) { return out.write_all(b); }, chunk));
    STOWAGE_TRY(out.close());
    return io::File::open_read(temp);
  };
  auto file = spool();
  ::unlink(temp.c_str());
  return file;
}

Reply metrics_reply(const metrics::Registry& registry) {
  return Reply{200, "text/plain; version=0.0.4; charset=utf-8", registry.render(), "no-store"};
}

std::string request_label(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path.starts_with(kApiPrefix)) {
    const std::string_view method = path.substr(kApiPrefix.size());
    if (Api::handles(method) || Api::is_upload(method)) return std::string(method);
    return "other";
  }
  if (path.starts_with(kPreviewsPrefix)) return "previews";
  if (path == "/metrics") return "metrics";
  if (path == "/healthz") return "healthz";
  return "other";
}

http::response<http::string_body> make_response(Reply reply, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(reply.status), version};
  res.set(http::field::server, "stowage");
  res.set(http::field::content_type, reply.content_type);
  if (!reply.cache_control.empty()) res.set(http::field::cache_control, reply.cache_control);
  res.keep_alive(keep_alive);
  res.body() = std::move(reply.body);
  res.prepare_payload();
  return res;
}

}  // namespace stowage::server
