// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/catalog/catalog.hpp"
#include "stowage/store/object_store.hpp"

/// Team files (the SDK's `api.file`): models, checkpoints and other artifacts a team keeps beside
/// its datasets. They live in the instance's private bucket under a root of their own per team,
/// `teams/<team id>/files/<path>`, written through the store's own writers (one PUT, multipart,
/// blocks or a resumable session, as the provider needs), so memory stays flat whatever the size.
/// No catalog rows: the objects are the files. docs/api-files.md has the wire shapes.
namespace stowage::service {

class Service;

/// A team-files path as the SDK writes it, checked and normalized: "/a/b.bin" for a file,
/// "/a/" for a folder, "/" for the team's root.
struct TeamPath {
  std::string path;      ///< normalized, with a leading '/'; a folder ends with '/'
  std::string relative;  ///< without the leading '/' ("" for the root)
  bool is_folder = false;
};

/// What a listing or an info answers about one file (or, in a non-recursive listing, a folder).
struct TeamFile {
  catalog::Id team_id = 0;
  std::string path;  ///< "/a/b.bin", or "/a/" for a folder
  std::string name;  ///< the last segment
  bool is_folder = false;
  std::uint64_t size = 0;
  std::string mime;  ///< from the name's extension
  std::string ext;   ///< the name's extension, without the dot ("" when none)
  std::chrono::system_clock::time_point modified{};
  store::ObjectPath object;  ///< where the bytes are (the folder's prefix for a folder)
  std::string etag;
};

/// One page of a listing; `next_token` is empty on the last page.
struct TeamFilePage {
  std::vector<TeamFile> entries;
  std::string next_token;
};

/// A file being uploaded: bytes go straight to the store's writer; nothing is visible at the
/// path until commit(). Dropping an uncommitted upload aborts it. One thread at a time.
class TeamFileUpload {
 public:
  TeamFileUpload(catalog::Id team_id, TeamPath path, store::ObjectPath object,
                 std::unique_ptr<store::Writer> writer);
  ~TeamFileUpload();
  TeamFileUpload(const TeamFileUpload&) = delete;
  TeamFileUpload& operator=(const TeamFileUpload&) = delete;

  Status write(std::span<const std::byte> bytes);
  /// Publishes the file atomically (an existing file at the path is replaced whole).
  Result<TeamFile> commit();
  std::uint64_t size() const noexcept { return size_; }
  const TeamPath& path() const noexcept { return path_; }

 private:
  catalog::Id team_id_;
  TeamPath path_;
  store::ObjectPath object_;
  std::unique_ptr<store::Writer> writer_;
  std::uint64_t size_ = 0;
  bool committed_ = false;
};

/// The team-files logic over a Service: who may touch which team's files, and where they are.
/// Cheap to construct; every method blocks (catalog, store) and is safe from several threads.
class TeamFiles {
 public:
  explicit TeamFiles(Service& service) : service_(service) {}

  /// Checks and normalizes a path from a user. A leading '/' is added when missing. Refused
  /// (InvalidArgument, saying why): empty, NUL or control characters, a backslash, "." or ".."
  /// segments, empty segments ("a//b"), invalid UTF-8, longer than 900 bytes. `folder_ok`:
  /// whether a folder ("/a/", "/") is acceptable; a file path never ends with '/'.
  static Result<TeamPath> parse_path(std::string_view path, bool folder_ok);

  /// The key prefix of a team's files: "teams/<id>/files/".
  static std::string root_key(catalog::Id team_id);
  /// The object of a (checked) path of a team.
  store::ObjectPath object_of(catalog::Id team_id, const TeamPath& path) const;

  /// Starts writing the file at `path` (a file path). PermissionDenied unless the caller is in
  /// the team; AlreadyExists when a folder is at that path or a file is at one of its parents.
  /// `size_hint` (an upper bound is fine) lets the provider plan its parts.
  Result<std::unique_ptr<TeamFileUpload>> begin_upload(const catalog::Principal& who,
                                                       catalog::Id team_id, std::string_view path,
                                                       std::optional<std::uint64_t> size_hint);

  /// One page of what is under `path`: a folder's files (every file beneath it with
  /// `recursive`, else its files and sub-folders); a file path lists that file and, if a folder
  /// of that name exists too, what is in it. `page_token` continues a listing; at most
  /// `max_entries` per page.
  Result<TeamFilePage> list(const catalog::Principal& who, catalog::Id team_id,
                            std::string_view path, bool recursive, const std::string& page_token,
                            std::size_t max_entries = 1000);
  /// The file at `path`; NotFound when there is none.
  Result<TeamFile> info(const catalog::Principal& who, catalog::Id team_id, std::string_view path);
  /// Removes the file at `path`, or everything under a folder path ("/a/"); a path without a
  /// trailing '/' that names a folder removes the folder too (the SDK's `remove`). Returns the
  /// number of files removed; NotFound when nothing was there.
  Result<std::uint64_t> remove(const catalog::Principal& who, catalog::Id team_id,
                               std::string_view path);

 private:
  Status check(const catalog::Principal& who, catalog::Id team_id);
  TeamFile file_of(catalog::Id team_id, const store::ObjectInfo& info) const;

  Service& service_;
};

/// A mime type for a team file's name: images and videos as media::mime_from_name, plus the
/// artifacts teams keep (json, yaml, txt, csv, archives, model weights).
std::string team_file_mime(std::string_view name);

}  // namespace stowage::service
