// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "stowage/cache/caching_store.hpp"
#include "stowage/cache/disk_cache.hpp"
#include "stowage/metrics/metrics.hpp"
#include "stowage/preview/options.hpp"
#include "stowage/preview/render.hpp"
#include "stowage/preview/signer.hpp"
#include "stowage/service/service.hpp"

/// `/previews/...` (image previews) and `/metrics`, outside the `/public/api/v3/` API. The
/// server's handle() delegates here; the blocking parts run on its worker pool.
namespace stowage::server {

/// What the SDK's preview_url() inserts after scheme://netloc of fullStorageUrl
/// (shared/spec/api.md 1.3); the API's `previewUrl` uses it too.
inline constexpr std::string_view kSdkPreviewPrefix =
    "/previews/q/ext:jpeg/resize:auto:0:0:0/q:70/plain";

/// An answer written as is: a status, a body and its type.
/// The SDK's VideoInfo.image_preview_url up to its source (video_api.py):
/// `<this><kVideoFrameSource><position>/<processingPath>?videoStreamIndex=N`.
inline constexpr std::string_view kSdkVideoPreviewPrefix =
    "/previews/q/ext:jpeg/resize:fill:300:0:0/q:70/plain";
/// A preview source that names a frame of a video item rather than a stored image.
inline constexpr std::string_view kVideoFrameSource = "/image-converter/videoframe/";
/// A video item's processingPath: this and its id.
inline constexpr std::string_view kVideoProcessingPrefix = "v/";
/// The pathOriginal of a linked image: this and its item id. Its bytes are wherever the link
/// points; the previews handler makes them from the storage cache's copy.
inline constexpr std::string_view kLinkedImageSource = "/links/";

struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::string cache_control;
};

struct PreviewsOptions {
  preview::RenderLimits limits;
  /// Where an original is spooled (unlinked at once) when the store has neither local files nor
  /// a storage cache.
  std::filesystem::path spool_dir;
  /// Largest original spooled that way: a bigger one is refused rather than downloaded.
  std::uint64_t max_spooled_bytes = 1ull << 30;
};

/// Answers `GET /previews/<signature>/<options>/plain/<source>` (preview::parse_preview_path).
///
/// - **Who may see it.** The source must be a stored blob ("/<prefix>-public/images/original/
///   .../<sha256>.<ext>") of an item in one of the caller's teams, a linked image of the caller's
///   teams ("/links/<item id>"), or a frame of a video item: the caller is the owner of the
///   `x-api-key` token, or, with `?expires=&signature=` (what the API's previewUrl carries),
///   whoever the API handed the signed URL to. Anything else is refused: both buckets are private.
/// - **Where from.** The preview cache (key: blob sha256, or link and etag, + normalized
///   options); on a miss the original is read from a local file: the local store's, or the
///   storage cache's entry (filled on a miss, and then the remote is not asked again: the docs'
///   "Frontend caching" rule, for links too), or, with the storage cache off, a spooled copy.
/// Thread-safe; handle() blocks.
class Previews {
 public:
  /// `signer`, `preview_cache` and `storage_cache` may be null (no signed URLs; previews made on
  /// every request; no storage cache).
  Previews(service::Service& service, const preview::UrlSigner* signer,
           cache::DiskCache* preview_cache, cache::CachingStore* storage_cache,
           metrics::Registry* metrics, PreviewsOptions options);

  /// The answer to a GET of `target` (path and query) with the request's x-api-key (may be
  /// empty). Blocking: run it on the worker pool.
  Reply handle(std::string_view target, const std::string& api_token);

  /// "expires=...&signature=..." for a source path, or empty without a signer.
  std::string sign(std::string_view source) const;

 private:
  Result<Reply> serve(std::string_view target, const std::string& api_token);
  /// A local file of an original: the store's own, the storage cache's entry (`caching`, may
  /// be null), or a spooled copy.
  Result<io::File> open_original(store::ObjectStore& store, cache::CachingStore* caching,
                                 const store::ObjectPath& path);
  /// The item `source` names by id, if the caller may see it: by a signature of `source`, or by
  /// the token's teams.
  Result<service::ItemSource> item_for(std::string_view source, catalog::Id id,
                                       const std::string& expires, const std::string& signature,
                                       const std::string& api_token);
  /// A linked image (`/links/<id>`), by token or signature.
  Result<Reply> serve_linked_image(const preview::PreviewPath& request, const std::string& expires,
                                   const std::string& signature, const std::string& api_token);
  /// A frame of a video item (`image-converter/videoframe/<position>/v/<id>`), by token or
  /// signature, from the preview cache or decoded with FFmpeg.
  Result<Reply> serve_video_frame(const preview::PreviewPath& request,
                                  std::optional<int> stream_index, const std::string& expires,
                                  const std::string& signature, const std::string& api_token);
  /// The preview under `key` in the preview cache, made by `render` on a miss.
  Result<Reply> cached_reply(const std::string& key,
                             const std::function<Result<preview::Rendered>()>& render);

  service::Service& service_;
  const preview::UrlSigner* signer_;
  cache::DiskCache* preview_cache_;
  cache::CachingStore* storage_cache_;
  metrics::Registry* metrics_;
  PreviewsOptions options_;
  metrics::Counter* rendered_ = nullptr;
  metrics::Histogram* render_seconds_ = nullptr;
};

/// The `/metrics` answer: the registry in the Prometheus text format.
Reply metrics_reply(const metrics::Registry& registry);

/// The `method` label of a request's latency: the API method when it is one the server knows
/// ("images.list"), else "previews", "metrics", "healthz" or "other" (so that arbitrary paths
/// cannot create series).
std::string request_label(std::string_view target);

/// A Beast response for a Reply.
boost::beast::http::response<boost::beast::http::string_body> make_response(Reply reply,
                                                                            unsigned version,
                                                                            bool keep_alive);

}  // namespace stowage::server
