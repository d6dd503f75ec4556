// SPDX-License-Identifier: Apache-2.0
#include "stowage/store/object_store.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

namespace stowage::store {

Result<ObjectInfo> ObjectStore::adopt_file(const std::filesystem::path& file,
                                           const ObjectPath& path, const WriteOptions& options) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::IoError, "adopt " + path.to_string() + ": cannot open spool file");
  STOWAGE_ASSIGN_OR_RETURN(auto writer, open_write(path, options));
  std::vector<std::byte> buffer(io::kDefaultChunkBytes);
  while (in) {
    in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    if (n == 0) break;
    STOWAGE_TRY(writer->write(std::span<const std::byte>(buffer.data(), n)));
  }
  if (in.bad()) {
    (void)writer->abort();
    return make_error(ErrorCode::IoError, "adopt " + path.to_string() + ": cannot read spool file");
  }
  STOWAGE_ASSIGN_OR_RETURN(auto info, writer->commit());
  std::error_code ec;
  std::filesystem::remove(file, ec);
  return info;
}

Result<NativeFile> ObjectStore::native_file(const ObjectPath& path) {
  return make_error(ErrorCode::Unsupported,
                    "native_file " + path.to_string() + ": " + std::string(name()) +
                        " objects are not local files");
}

Status validate_key(std::string_view key) {
  auto bad = [&](std::string_view why) -> Status {
    return make_error(ErrorCode::InvalidArgument, "invalid object key: " + std::string(why));
  };
  if (key.empty()) return bad("empty");
  if (key.size() > 1024) return bad("longer than 1024 bytes");
  if (key.front() == '/') return bad("absolute (starts with '/')");
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return bad("contains a control character or NUL");
    if (c == '\\') return bad("contains a backslash");
  }
  std::size_t start = 0;
  while (start <= key.size()) {
    const std::size_t end = std::min(key.find('/', start), key.size());
    const std::string_view segment = key.substr(start, end - start);
    const bool last = end == key.size();
    if (segment.empty() && !last) return bad("contains an empty segment ('//')");
    if (segment == "." || segment == "..") return bad("contains a '.' or '..' segment");
    start = end + 1;
  }
  return {};
}

Status validate_bucket(std::string_view bucket) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (bucket.size() < 3 || bucket.size() > 63 || !alnum(bucket.front()) || !alnum(bucket.back())) {
    return make_error(ErrorCode::InvalidArgument,
                      "invalid bucket name '" + std::string(bucket) +
                          "': 3 to 63 characters, starting and ending with a letter or digit");
  }
  for (char c : bucket) {
    if (!alnum(c) && c != '-' && c != '.') {
      return make_error(ErrorCode::InvalidArgument,
                        "invalid bucket name '" + std::string(bucket) + "': only a-z, 0-9, '-' and '.'");
    }
  }
  return {};
}

}  // namespace stowage::store
