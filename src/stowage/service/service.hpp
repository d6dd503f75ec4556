// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/io/checksum.hpp"
#include "stowage/io/file.hpp"
#include "stowage/links/link_resolver.hpp"
#include "stowage/store/object_store.hpp"

/// The application logic behind the API: who may do what, how uploads become blobs and blobs
/// become items. The server and the CLI are thin layers over it. Every method blocks (catalog,
/// disk) and is safe to call from several threads at once.
namespace stowage::service {

using catalog::Id;
using catalog::Principal;

struct ServiceOptions {
  std::string public_bucket;   ///< "<prefix>-public": where uploaded items' blobs go
  std::string private_bucket;  ///< "<prefix>-private"
  /// Folder for upload spool files; on the same filesystem as a local store, so that publishing
  /// a blob is a rename.
  std::filesystem::path staging_dir;
  /// How long an authenticated token is trusted before the catalog is asked again; a token
  /// revoked from another process stops working within this time (plus one request: the
  /// documented bound, 2 s, holds with room).
  std::chrono::milliseconds token_cache_ttl{1500};
  /// How long an item's location is remembered for downloads; a change made by another process
  /// (a removal, a new link) is seen within this time. Changes made here are seen at once.
  std::chrono::milliseconds item_cache_ttl{2000};
  /// The query ("expires=...&signature=...") that lets a browser load the previews of a stored
  /// item's pathOriginal without a token (server/previews.hpp); unset: items carry no previewUrl.
  std::function<std::string(std::string_view path_original)> sign_preview;
};

/// What a project holds, and so how an upload is probed and where its blob goes.
enum class MediaKind { Image, Video };

/// An upload in progress: bytes are spooled to a temp file and hashed as they stream, then
/// published content-addressed. Destroying an unfinished upload removes its spool file.
class Upload {
 public:
  ~Upload();
  Upload(const Upload&) = delete;
  Upload& operator=(const Upload&) = delete;

  /// Appends bytes to the spool file and the running hash.
  Status write(std::span<const std::byte> bytes);
  /// Probes the bytes (an image header read, or for a video the container's streams and frames),
  /// publishes them under their SHA-256 unless a blob with that hash exists already, and records
  /// the blob. InvalidArgument when the bytes are not a readable image (video), saying why.
  Result<catalog::Blob> finish();
  std::uint64_t size() const noexcept { return size_; }

 private:
  friend class Service;
  Upload(class Service& service, MediaKind kind, Id uploader, io::File file,
         std::filesystem::path path);

  class Service& service_;
  MediaKind kind_;
  Id uploader_;  ///< the user granted the blob on finish(); 0: nobody (tools)
  io::File file_;
  std::filesystem::path path_;
  io::Sha256 hash_;
  std::uint64_t size_ = 0;
  std::uint64_t written_back_ = 0;  ///< bytes whose writeback to disk has been started
  bool finished_ = false;
};

/// Where an item's bytes can be read.
struct ItemSource {
  catalog::Item item;
  /// The store of a linked item; null for stored items (the instance's own store).
  std::shared_ptr<store::ObjectStore> store;
  store::ObjectPath path;
  std::string sha256_base64;  ///< empty for links
};

/// The outcome of adding items when names clash: the clashing names and the ids they have.
struct NameConflict {
  std::string name;
  Id id = 0;
};

class Service {
 public:
  Service(catalog::Catalog& catalog, store::ObjectStore& store, ServiceOptions options);

  catalog::Catalog& catalog() noexcept { return catalog_; }
  /// Links resolve through `resolver` (remote_links.yml); without one every link is refused.
  void set_link_resolver(links::LinkResolver* resolver) noexcept { links_ = resolver; }
  links::LinkResolver* link_resolver() noexcept { return links_; }
  /// Resolves a link, or says that links are not configured. Checks no caller: for links already
  /// admitted (an item's) and for tools; what a caller names goes through resolve_link_for().
  Result<links::LinkTarget> resolve_link(std::string_view link);
  /// resolve_link(), then check_connection(): for links a caller names.
  Result<links::LinkTarget> resolve_link_for(const Principal& who, std::string_view link);
  /// PermissionDenied unless `who` may use the connection a link resolved through: public URLs
  /// are anyone's; a connection of remote_links.yml is its `teams`' (by name or id) and the
  /// administrators' (issue 18; no `teams`: administrators only).
  Status check_connection(const Principal& who, const links::LinkTarget& target);
  /// Whether `who` may use a connection whose `teams` are these (see check_connection()).
  Result<bool> may_use_connection(const Principal& who, const std::vector<std::string>& teams);
  store::ObjectStore& store() noexcept { return store_; }
  const ServiceOptions& options() const noexcept { return options_; }

  // --- Who is calling ---------------------------------------------------------------------------
  /// The principal behind an API token (cached for options().token_cache_ttl).
  /// Unauthenticated for a missing, unknown or revoked token.
  Result<Principal> authenticate(const std::string& token);
  /// The principal for a token if it is in the cache; never blocks. For hot paths that avoid a
  /// trip to the worker pool.
  std::optional<Principal> cached_principal(const std::string& token);
  /// Revokes a token in the catalog and drops it from the cache here, so that its next request
  /// to this server is refused at once (other processes see it within token_cache_ttl).
  /// NotFound for an unknown id.
  Status revoke_token(Id token_id);
  /// PermissionDenied unless the principal belongs to the team.
  static Status check_team(const Principal& who, Id team_id);

  // --- Entities, checked against the caller's teams ---------------------------------------------
  Result<catalog::Team> team(const Principal& who, Id id);
  Result<std::vector<catalog::Team>> teams(const Principal& who);
  Result<catalog::Workspace> workspace(const Principal& who, Id id);
  Result<catalog::Project> project(const Principal& who, Id id);
  Result<catalog::Dataset> dataset(const Principal& who, Id id);
  Result<catalog::Item> item(const Principal& who, Id id);

  Result<catalog::Workspace> add_workspace(const Principal& who, Id team_id,
                                           const std::string& name, const std::string& description);
  /// InvalidArgument for an unknown type or an empty name.
  Result<catalog::Project> add_project(const Principal& who, catalog::Project project);
  Result<catalog::Dataset> add_dataset(const Principal& who, catalog::Dataset dataset);

  // --- Items ------------------------------------------------------------------------------------
  /// Which of these base64 SHA-256 hashes already have stored bytes that the caller may name, in
  /// the order given: bytes the caller uploaded, or that an item of one of their teams uses.
  /// Another team's bytes are not reported (content-addressed storage must not tell one team
  /// what another holds); the SDK then uploads them, which grants them to this caller too.
  Result<std::vector<std::string>> existing_hashes(const Principal& who,
                                                   const std::vector<std::string>& base64_hashes);
  /// Starts an upload of one file; once finished, `uploader` (a user id; 0 for none) may name
  /// its bytes by their hash.
  Result<std::unique_ptr<Upload>> begin_upload(MediaKind kind = MediaKind::Image,
                                               Id uploader = 0);
  /// The container metadata of uploaded videos (import-storage.internal.meta.list), one JSON
  /// object text per base64 hash, in order. Probed once per blob and kept. NotFound for a hash
  /// never uploaded or not the caller's to name (existing_hashes()); InvalidArgument for bytes
  /// that are not a video.
  Result<std::vector<std::string>> video_metas(const Principal& who,
                                               const std::vector<std::string>& base64_hashes);
  /// NotFound (as for bytes never uploaded) unless the caller may name the hash: they uploaded
  /// its bytes, or an item of one of their teams uses them. `upload_method` names the method
  /// the message suggests.
  Status check_hash_usable(const Principal& who, std::string_view base64_hash,
                           std::string_view upload_method);
  /// Names in `names` already taken in the dataset, or repeated in the list.
  Result<std::vector<NameConflict>> name_conflicts(const Principal& who, Id dataset_id,
                                                   const std::vector<std::string>& names);
  /// One item to add: stored bytes named by their hash (base64 SHA-256, uploaded before), or a
  /// link that stays where it points.
  struct NewItem {
    std::string name;
    std::optional<std::string> hash_base64;
    std::optional<std::string> link;
    std::string meta = "{}";
    /// Videos: the stream the item shows (the SDK's meta.videoStreamIndex); unset, the first.
    std::optional<int> video_stream_index;
  };
  /// Adds items to a dataset, all or none. For hashes: NotFound when no bytes were uploaded or
  /// they are not the caller's to name (check_hash_usable()).
  /// For links: every link must resolve through the links configuration (PermissionDenied
  /// otherwise); with `force_metadata` the object is stat'ed and its header read (a ranged read)
  /// for mime, size, width and height, without it nothing is fetched and the mime comes from the
  /// name. AlreadyExists on a name clash (name_conflicts() says which). `kind` must be the
  /// project's (InvalidArgument otherwise, naming the right API). Video links are always probed
  /// (a video item without its streams and frames is of no use to the SDK), reading only what
  /// the container needs.
  Result<std::vector<catalog::Item>> add_items(const Principal& who, Id dataset_id,
                                               const std::vector<NewItem>& items,
                                               bool force_metadata,
                                               MediaKind kind = MediaKind::Image);
  /// The kind of items a dataset's project holds.
  Result<MediaKind> dataset_kind(const Principal& who, Id dataset_id);

  /// One item to point at a link (images.update.links, videos.update.links).
  struct LinkUpdate {
    Id item_id = 0;
    std::string link;
  };
  /// The SDK's set_remote: points items at links, all or none. Every item must be the caller's
  /// and of `kind`; every link must resolve through the links configuration (PermissionDenied
  /// otherwise); with `check_exists` each link's object must exist (NotFound) with the item's
  /// size (PreconditionFailed). The items' stored bytes stay where they are.
  Status set_links(const Principal& who, MediaKind kind, const std::vector<LinkUpdate>& updates,
                   bool check_exists);
  /// The outcome of one line of a links file.
  struct LinkLine {
    std::size_t line = 0;  ///< 1-based
    std::string link;
    enum class Status { Added, Exists, Failed } status = Status::Failed;
    Id item_id = 0;     ///< the item added, or the one already there
    std::string error;  ///< why the line failed
  };
  /// The Links plugin: each non-blank line of `text` that is not a `#` comment is a link,
  /// added to the dataset under its file name. A bad line does not stop the others. A line whose
  /// link is already an item of the dataset under that name is reported as existing, so a rerun
  /// adds nothing twice. Fails as a whole only when the dataset is not the caller's.
  Result<std::vector<LinkLine>> import_links(const Principal& who, Id dataset_id,
                                             std::string_view text, bool force_metadata);

  /// Size, mime and dimensions of a link's object, reading only its first bytes where they
  /// suffice.
  Result<catalog::NewItem> link_metadata(const links::LinkTarget& target);
  /// Size, mime, streams and frames of a linked video, read through ranged reads of only what
  /// its container needs.
  Result<catalog::NewItem> link_video_metadata(const links::LinkTarget& target,
                                               std::optional<int> stream_index);

  /// Where to read an item's bytes.
  Result<ItemSource> item_source(const Principal& who, Id item_id);
  /// Where to read the bytes of an item the caller was already allowed (e.g. by a signed URL).
  Result<ItemSource> locate(catalog::Item item);
  /// item_source() from memory when it was looked up recently and the caller may read it;
  /// never blocks. nullopt means "ask item_source()".
  std::optional<ItemSource> cached_item_source(const Principal& who, Id item_id);
  /// Removes items the caller may change; PermissionDenied if any belongs to another team.
  Status remove_items(const Principal& who, const std::vector<Id>& ids);

  /// base64(sha256) <-> hex.
  static Result<std::string> hash_base64_to_hex(std::string_view base64);
  static std::string hash_hex_to_base64(std::string_view hex);
  /// The key of a blob in the public bucket: images/original/<h0h1>/<h2h3>/<hex>.<ext>, and
  /// videos/original/... for a video mime type.
  static std::string blob_key(std::string_view sha256_hex, std::string_view mime);

 private:
  friend class Upload;
  Result<catalog::Blob> publish(Upload& upload, const io::Sha256::Digest& digest);
  /// video_metas() without the caller's check.
  Result<std::vector<std::string>> probe_video_metas(
      const std::vector<std::string>& base64_hashes);
  /// Forgets remembered item locations, after their rows changed.
  void forget_items(const std::vector<Id>& ids);

  catalog::Catalog& catalog_;
  store::ObjectStore& store_;
  links::LinkResolver* links_ = nullptr;
  ServiceOptions options_;

  struct CachedPrincipal {
    Principal principal;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex token_mutex_;
  std::unordered_map<std::string, CachedPrincipal> token_cache_;

  struct CachedSource {
    ItemSource source;
    std::chrono::steady_clock::time_point expires;
  };
  std::mutex item_mutex_;
  std::unordered_map<Id, CachedSource> item_cache_;
};

}  // namespace stowage::service
