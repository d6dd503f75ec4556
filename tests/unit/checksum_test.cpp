// SPDX-License-Identifier: Apache-2.0
#include "stowage/io/checksum.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace stowage::io {
namespace {

std::span<const std::byte> bytes_of(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string hex_sha256(std::string_view text) { return to_hex(Sha256::of(bytes_of(text))); }

// FIPS 180-2 appendix B test vectors.
TEST(ChecksumTest, Sha256KnownVectors) {
  EXPECT_EQ(hex_sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(ChecksumTest, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 300000; ++i) data.push_back(static_cast<char>(i * 31 + (i >> 9)));
  const auto one_shot = Sha256::of(bytes_of(data));
  for (std::size_t piece : {1u, 63u, 64u, 65u, 4096u, 65537u}) {
    Sha256 h;
    for (std::size_t off = 0; off < data.size(); off += piece) {
      h.update(bytes_of(std::string_view(data).substr(off, piece)));
    }
    EXPECT_EQ(h.finish(), one_shot) << "pieces of " << piece;
  }
  Sha256 text_updates;  // the string_view overload hashes the same bytes
  text_updates.update(std::string_view("ab"));
  text_updates.update(std::string_view("c"));
  EXPECT_EQ(to_hex(text_updates.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 moved_from;
  moved_from.update(std::string_view("abc"));
  Sha256 moved = std::move(moved_from);
  EXPECT_EQ(moved.finish(), Sha256::of(bytes_of("abc")));
}

std::string base64_of(std::string_view text) {
  return to_base64(std::span(reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

// RFC 4648 section 10: every padding case.
TEST(ChecksumTest, Base64RoundTripWithPadding) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_of(plain), encoded) << plain;
    EXPECT_EQ(from_base64(encoded), plain) << encoded;
  }
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= binary.size(); n += 37) {
    const std::string part = binary.substr(0, n);
    EXPECT_EQ(from_base64(base64_of(part)), part) << n << " bytes";
  }
  EXPECT_EQ(from_base64("Zm9"), "") << "length not a multiple of 4 is malformed";
  EXPECT_EQ(from_base64("Zm9v!!!!"), "") << "characters outside the alphabet are malformed";
}

// The Supervisely SDK identifies uploads by base64(sha256(bytes)) (standard alphabet, padded).
TEST(ChecksumTest, SuperviselyHashOfAbc) {
  const auto digest = Sha256::of(bytes_of("abc"));
  EXPECT_EQ(to_base64(digest), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  const std::string back = from_base64("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  ASSERT_EQ(back.size(), digest.size());
  EXPECT_TRUE(std::equal(digest.begin(), digest.end(),
                         reinterpret_cast<const unsigned char*>(back.data())));
}

}  // namespace
}  // namespace stowage::io
