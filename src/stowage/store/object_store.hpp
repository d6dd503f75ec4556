// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stowage/base/error.hpp"
#include "stowage/io/file.hpp"
#include "stowage/io/stream.hpp"

namespace stowage::store {

/// Names one object: a bucket (a folder on local disk, a container on Azure) and a key inside it.
/// Keys are '/'-separated, relative, and never contain "..", NUL or an empty segment.
struct ObjectPath {
  std::string bucket;
  std::string key;

  /// "bucket/key", for messages.
  std::string to_string() const { return bucket + "/" + key; }
  friend bool operator==(const ObjectPath&, const ObjectPath&) = default;
};

/// What a store knows about an object without reading it.
struct ObjectInfo {
  ObjectPath path;
  std::uint64_t size = 0;
  /// An opaque version tag that changes whenever the bytes change (quoted as the provider gives
  /// it, or derived from size and mtime locally).
  std::string etag;
  std::chrono::system_clock::time_point last_modified{};
};

/// A byte range [offset, offset + length). `length` unset means "to the end".
struct ByteRange {
  std::uint64_t offset = 0;
  std::optional<std::uint64_t> length;
};

struct ReadOptions {
  std::optional<ByteRange> range;
  /// Fail with PreconditionFailed unless the object still has this etag.
  std::optional<std::string> if_match;
};

struct WriteOptions {
  /// Expected size, when known; lets a provider plan its parts.
  std::optional<std::uint64_t> size_hint;
  /// Fail with AlreadyExists when an object is already at the path.
  bool if_none_match = false;
  /// Non-empty: this upload may continue one that an earlier writer given the same id (and the
  /// same size_hint) left unfinished at the path, e.g. in a process that was killed: the parts
  /// or blocks already there with the same bytes are not sent again (S3 multipart, Azure
  /// blocks). Providers without resumable uploads, and objects small enough for one request,
  /// ignore it. The id names the content (say, the source's path and version), never a secret.
  std::string resume_id;
};

struct ListOptions {
  /// Only keys strictly greater than this one.
  std::string start_after;
  /// When set (usually "/"), keys are grouped at the first delimiter after the prefix.
  std::optional<std::string> delimiter;
  std::size_t max_keys = 1000;
  /// The page token of the previous page, if any.
  std::string page_token;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  /// With a delimiter: the common prefixes ("a/b/"), each once, sorted.
  std::vector<std::string> prefixes;
  /// Empty on the last page.
  std::string next_page_token;
};

/// What a store supports, so that one conformance suite can run over every provider.
struct Capabilities {
  bool atomic_publish = true;   ///< objects appear only complete
  bool conditional_put = true;  ///< WriteOptions::if_none_match is honoured
  bool native_files = false;    ///< objects are local files (NativeFile can be asked for)
};

/// An object that is a file on this machine; lets the server send it with sendfile(2).
struct NativeFile {
  std::filesystem::path path;
  std::uint64_t size = 0;
  /// The object opened for reading, resolved safely beneath its bucket: use it rather than
  /// opening `path` again, which a symlink swapped in meanwhile could redirect.
  io::File file;
};

/// Streams an object in. Bytes become visible only on a successful commit(); destroying a Writer
/// that was not committed aborts it. Blocking; one thread at a time.
class Writer {
 public:
  virtual ~Writer() = default;
  /// Appends bytes. May block while the provider's parts are in flight.
  virtual Status write(std::span<const std::byte> bytes) = 0;
  /// Publishes the object atomically and returns what was written.
  virtual Result<ObjectInfo> commit() = 0;
  /// Drops everything written. Idempotent.
  virtual Status abort() = 0;
};

/// One interface for every place that keeps objects: local disk, S3, Azure, GCS. All methods
/// block and are safe to call from several threads at once.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  /// A short name for messages and metrics, e.g. "local", "s3".
  virtual std::string_view name() const = 0;
  virtual const Capabilities& capabilities() const = 0;

  /// Size and version of an object. NotFound when absent.
  virtual Result<ObjectInfo> stat(const ObjectPath& path) = 0;
  /// A stream of the object's bytes (or of a range of them). RangeNotSatisfiable when the range
  /// starts at or past the end of a non-empty object.
  virtual Result<std::unique_ptr<io::Reader>> open_read(const ObjectPath& path,
                                                        const ReadOptions& options) = 0;
  /// Random access to an object already stat'ed; no extra round trip.
  virtual Result<std::unique_ptr<io::RandomAccessReader>> open_random(const ObjectInfo& info) = 0;
  /// Starts writing an object; nothing is visible until Writer::commit().
  virtual Result<std::unique_ptr<Writer>> open_write(const ObjectPath& path,
                                                     const WriteOptions& options) = 0;
  /// One page of the objects whose keys start with `prefix.key`, in key order.
  virtual Result<ListPage> list(const ObjectPath& prefix, const ListOptions& options) = 0;
  /// Removes an object. Removing an absent object succeeds.
  virtual Status remove(const ObjectPath& path) = 0;

  /// Publishes a finished local file as the object at `path` and consumes the file. The default
  /// streams it through open_write(); the local store renames it in place when it can.
  virtual Result<ObjectInfo> adopt_file(const std::filesystem::path& file, const ObjectPath& path,
                                        const WriteOptions& options);

  /// The object as a file on this machine, when capabilities().native_files.
  virtual Result<NativeFile> native_file(const ObjectPath& path);
};

/// Checks a key as every provider must: relative, '/'-separated, no empty, "." or ".." segment,
/// no NUL or control character, at most 1024 bytes. InvalidArgument names what is wrong.
Status validate_key(std::string_view key);

/// Checks a bucket name: 3 to 63 characters of [a-z0-9.-], starting and ending alphanumeric.
Status validate_bucket(std::string_view bucket);

}  // namespace stowage::store
