// SPDX-License-Identifier: Apache-2.0
#include "stowage/migration/copy.hpp"

#include <vector>

#include "stowage/io/checksum.hpp"

namespace stowage::migration {
namespace {

using store::ObjectInfo;
using store::ObjectPath;
using store::ObjectStore;

std::string describe(const ObjectStore& store, const ObjectPath& path) {
  return std::string(store.name()) + "://" + path.to_string();
}

/// `error` with the operation and object named first, keeping its code and retryability.
Error annotate(Error error, std::string_view op, const ObjectStore& store,
               const ObjectPath& path) {
  const std::string where = describe(store, path);
  if (error.message.find(where) == std::string::npos) {
    error.message = std::string(op) + " " + where + ": " + error.message;
  }
  return error;
}

/// The source does not hold the bytes the caller expects (CopyOptions::expected_sha256_hex): not
/// retryable, since reading it again gives the same bytes.
Error unexpected_content(const ObjectStore& source, const ObjectPath& path,
                         const std::string& sha256_hex, const CopyOptions& options) {
  return make_error(ErrorCode::Corrupt, "read " + describe(source, path) + ": the bytes hash to " +
                                            sha256_hex + ", not to the expected " +
                                            options.expected_sha256_hex);
}

/// One attempt at streaming `source` into a new object at `target_path`, then verifying it.
/// Returns the SHA-256 and the committed target's etag.
struct Attempt {
  std::string sha256_hex;
  std::string target_etag;
};

Result<Attempt> copy_once(ObjectStore& source, const ObjectInfo& source_info, ObjectStore& target,
                          const ObjectPath& target_path, const CopyOptions& options,
                          std::vector<std::byte>& buffer, std::uint64_t& written) {
  store::ReadOptions read;
  read.if_match = source_info.etag;
  auto reader = source.open_read(source_info.path, read);
  if (!reader) return annotate(reader.error(), "read", source, source_info.path);
  store::WriteOptions write;
  write.size_hint = source_info.size;
  // Named after the source's version, so that a run killed mid-object continues the upload it
  // left at the target (the parts or blocks already there are not sent again).
  const std::string version = source_info.path.to_string() + "\n" + source_info.etag + "\n" +
                              std::to_string(source_info.size);
  write.resume_id = io::to_hex(io::Sha256::of(std::as_bytes(std::span(version)))).substr(0, 32);
  auto writer = target.open_write(target_path, write);
  if (!writer) return annotate(writer.error(), "write", target, target_path);

  // Any early return below destroys the Writer uncommitted, which aborts it; abort() is called
  // explicitly too so that a provider's abort error is not silently the destructor's.
  auto fail = [&](Error e) -> Error {
    (void)(*writer)->abort();
    return e;
  };
  io::Sha256 sha;
  std::uint64_t total = 0;
  for (;;) {
    auto n = (*reader)->read(std::span(buffer));
    if (!n) return fail(annotate(n.error(), "read", source, source_info.path));
    if (*n == 0) break;
    const std::span<const std::byte> chunk(buffer.data(), *n);
    total += *n;
    if (total > source_info.size) break;
    sha.update(chunk);
    if (auto ok = (*writer)->write(chunk); !ok) {
      return fail(annotate(ok.error(), "write", target, target_path));
    }
    written += *n;
    if (options.on_bytes) options.on_bytes(*n);
  }
  if (total != source_info.size) {
    return fail(make_error(ErrorCode::Corrupt,
                           "read " + describe(source, source_info.path) + ": " +
                               std::to_string(total) + " bytes where " +
                               std::to_string(source_info.size) + " were listed"));
  }
  const std::string sha256_hex = io::to_hex(sha.finish());
  if (!options.expected_sha256_hex.empty() && sha256_hex != options.expected_sha256_hex) {
    return fail(unexpected_content(source, source_info.path, sha256_hex, options));
  }
  auto committed = (*writer)->commit();
  if (!committed) return fail(annotate(committed.error(), "commit", target, target_path));

  // Verify what the target now serves, not what it says it received: stat, then read it all back
  // pinned to that etag and compare SHA-256s. A mismatch is retryable: the next attempt writes
  // the object again.
  auto info = target.stat(target_path);
  if (!info) return annotate(info.error(), "verify", target, target_path);
  auto back = hash_object(target, target_path, info->etag, options.chunk_bytes);
  if (!back) return annotate(back.error(), "verify", target, target_path);
  if (back->second != source_info.size || back->first != sha256_hex) {
    Error e = make_error(ErrorCode::Corrupt,
                         "verify " + describe(target, target_path) + ": the copy reads back as " +
                             std::to_string(back->second) + " bytes with sha256 " + back->first +
                             ", the source has " + std::to_string(source_info.size) +
                             " bytes with sha256 " + sha256_hex);
    e.retryable = true;
    // A complete but wrong object must not stay where a provider switch would serve it: remove
    // it (only ever our own copy, never anything at the source).
    if (auto removed = target.remove(target_path); !removed) {
      e.message += "; removing the bad copy failed too: " + removed.error().message;
    }
    return e;
  }
  return Attempt{sha256_hex, info->etag};
}

}  // namespace

Result<std::pair<std::string, std::uint64_t>> hash_object(ObjectStore& store,
                                                          const ObjectPath& path,
                                                          const std::string& etag,
                                                          std::size_t chunk_bytes) {
  store::ReadOptions read;
  if (!etag.empty()) read.if_match = etag;
  auto reader = store.open_read(path, read);
  if (!reader) return annotate(reader.error(), "read", store, path);
  std::vector<std::byte> buffer(chunk_bytes);
  io::Sha256 sha;
  auto n = io::drain(
      **reader,
      [&](std::span<const std::byte> chunk) -> Status {
        sha.update(chunk);
        return {};
      },
      std::span(buffer));
  if (!n) return annotate(n.error(), "read", store, path);
  return std::pair(io::to_hex(sha.finish()), *n);
}

Result<CopyResult> copy_object(ObjectStore& source, const ObjectInfo& listed, ObjectStore& target,
                               const ObjectPath& target_path, const CopyOptions& options) {
  ObjectInfo source_info = listed;
  CopyResult result;
  result.size_bytes = source_info.size;

  // 1. What is at the target now.
  auto existing = http::with_retries(options.retry, [&] { return target.stat(target_path); });
  if (!existing && existing.error().code != ErrorCode::NotFound) {
    return annotate(existing.error(), "stat", target, target_path);
  }
  if (existing && existing->size == source_info.size) {
    if (options.journal != nullptr) {
      auto entry = options.journal->find(options.journal_scope, target_path);
      if (!entry) return entry.error();
      if (*entry && (*entry)->size_bytes == source_info.size &&
          (*entry)->source_etag == source_info.etag && (*entry)->target_etag == existing->etag) {
        if (!options.expected_sha256_hex.empty() &&
            (*entry)->sha256_hex != options.expected_sha256_hex) {
          return unexpected_content(source, source_info.path, (*entry)->sha256_hex, options);
        }
        result.outcome = CopyOutcome::Skipped;
        result.sha256_hex = (*entry)->sha256_hex;
        return result;
      }
    }
    // No trusted record: compare the bytes themselves.
    auto there = http::with_retries(options.retry, [&] {
      return hash_object(target, target_path, existing->etag, options.chunk_bytes);
    });
    if (!there) return there.error();
    auto here = http::with_retries(options.retry, [&] {
      return hash_object(source, source_info.path, source_info.etag, options.chunk_bytes);
    });
    if (!here && here.error().code == ErrorCode::PreconditionFailed) {
      // The listing's etag may be spelled differently from a stat's; take the stat's.
      auto now = source.stat(source_info.path);
      if (!now) return annotate(now.error(), "stat", source, source_info.path);
      source_info = *now;
      result.size_bytes = source_info.size;
      here = http::with_retries(options.retry, [&] {
        return hash_object(source, source_info.path, source_info.etag, options.chunk_bytes);
      });
    }
    if (!here) return here.error();
    if (!options.expected_sha256_hex.empty() && here->first != options.expected_sha256_hex) {
      return unexpected_content(source, source_info.path, here->first, options);
    }
    if (here->first == there->first && here->second == there->second) {
      result.outcome = CopyOutcome::Skipped;
      result.sha256_hex = here->first;
      if (options.journal != nullptr && !options.dry_run) {
        STOWAGE_TRY(options.journal->record(
            options.journal_scope, target_path,
            Journal::Entry{source_info.size, source_info.etag, existing->etag, here->first}));
      }
      return result;
    }
    result.sha256_hex = here->first;
  }
  if (options.dry_run) {
    result.outcome = CopyOutcome::WouldCopy;
    return result;
  }

  // 2. Copy, with whole-object retries.
  std::vector<std::byte> buffer(options.chunk_bytes);
  bool restated = false;
  Result<Attempt> attempt = make_error(ErrorCode::Internal, "no attempt");
  for (int n = 1;; ++n) {
    ++result.attempts;
    attempt = copy_once(source, source_info, target, target_path, options, buffer,
                        result.bytes_written);
    if (attempt) break;
    if (attempt.error().code == ErrorCode::PreconditionFailed && !restated) {
      // Listed etags may differ in spelling from what If-Match expects, or the object was
      // replaced since the listing: take its current version once.
      restated = true;
      auto now = source.stat(source_info.path);
      if (!now) return annotate(now.error(), "stat", source, source_info.path);
      source_info = *now;
      result.size_bytes = source_info.size;
      continue;
    }
    if (!attempt.error().retryable || n >= options.retry.max_attempts) {
      return attempt.error();
    }
    options.retry.sleep(options.retry.delay(n));
  }
  result.outcome = CopyOutcome::Copied;
  result.sha256_hex = attempt->sha256_hex;
  if (options.journal != nullptr) {
    STOWAGE_TRY(options.journal->record(
        options.journal_scope, target_path,
        Journal::Entry{source_info.size, source_info.etag, attempt->target_etag,
                       attempt->sha256_hex}));
  }
  return result;
}

}  // namespace stowage::migration
