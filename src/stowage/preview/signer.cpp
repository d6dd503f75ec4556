// SPDX-License-Identifier: Apache-2.0
#include "stowage/preview/signer.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <charconv>

#include "stowage/io/checksum.hpp"
#include "stowage/io/file.hpp"

namespace stowage::preview {

Result<std::string> UrlSigner::make_secret() {
  std::array<unsigned char, 32> random{};
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    return make_error(ErrorCode::Internal, "no randomness for the preview signing secret");
  }
  return io::to_hex(random);
}

Result<UrlSigner> UrlSigner::load_or_create(const std::filesystem::path& file) {
  auto existing = io::File::open_read(file);
  if (existing) {
    std::array<std::byte, 256> buf{};
    STOWAGE_ASSIGN_OR_RETURN(std::size_t n, existing->read_at(0, buf));
    std::string text(reinterpret_cast<const char*>(buf.data()), n);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.size() < 32) {
      return make_error(ErrorCode::Corrupt, file.string() +
                                                " holds no preview signing secret; "
                                                "delete it to make a new one");
    }
    return UrlSigner(std::move(text));
  }
  if (existing.error().code != ErrorCode::NotFound) return existing.error();
  STOWAGE_ASSIGN_OR_RETURN(const std::string secret, make_secret());
  const auto temp = io::unique_temp_path(file.parent_path(), ".preview-secret");
  STOWAGE_ASSIGN_OR_RETURN(auto out, io::File::create_exclusive(temp, 0600));
  const std::string line = secret + "\n";
  STOWAGE_TRY(out.write_all(std::as_bytes(std::span(line))));
  STOWAGE_TRY(out.sync());
  STOWAGE_TRY(out.close());
  STOWAGE_TRY(io::publish(temp, file));
  return UrlSigner(secret);
}

std::string UrlSigner::signature(std::string_view source, std::int64_t expires) const {
  const std::string message = std::string(source) + "\n" + std::to_string(expires);
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac.data(), &length);
  return io::to_hex(std::span<const unsigned char>(mac.data(), length));
}

std::string UrlSigner::query(std::string_view source,
                             std::chrono::system_clock::time_point now) const {
  const std::int64_t t =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count() +
      kLifetime.count();
  const std::int64_t expires = (t / kStep.count() + 1) * kStep.count();
  return "expires=" + std::to_string(expires) + "&signature=" + signature(source, expires);
}

Status UrlSigner::verify(std::string_view source, std::string_view expires_text,
                         std::string_view given, std::chrono::system_clock::time_point now) const {
  std::int64_t expires = 0;
  const auto [end, ec] =
      std::from_chars(expires_text.data(), expires_text.data() + expires_text.size(), expires);
  if (ec != std::errc{} || end != expires_text.data() + expires_text.size()) {
    return make_error(ErrorCode::PermissionDenied, "preview URL: malformed 'expires'");
  }
  const std::string expected = signature(source, expires);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    return make_error(ErrorCode::PermissionDenied, "preview URL: bad signature");
  }
  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
  if (now_s.count() >= expires) {
    return make_error(ErrorCode::PermissionDenied,
                      "preview URL has expired; ask the API for the item again");
  }
  return {};
}

}  // namespace stowage::preview
