// SPDX-License-Identifier: Apache-2.0
#include "server/multipart.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace stowage::server {
namespace {

struct Part {
  PartHeaders headers;
  std::string data;
};

/// Feeds `body` in pieces of `step` bytes and collects the parts.
Result<std::vector<Part>> parse(const std::string& boundary, const std::string& body,
                                std::size_t step) {
  MultipartParser parser(boundary);
  std::vector<Part> parts;
  for (std::size_t i = 0; i < body.size(); i += step) {
    const auto piece = std::as_bytes(std::span(body.data() + i, std::min(step, body.size() - i)));
    STOWAGE_ASSIGN_OR_RETURN(auto events, parser.feed(piece));
    for (auto& e : events) {
      switch (e.kind) {
        case PartEvent::Kind::Begin:
          parts.push_back({e.headers, {}});
          break;
        case PartEvent::Kind::Data:
          parts.back().data.append(reinterpret_cast<const char*>(e.data.data()), e.data.size());
          break;
        case PartEvent::Kind::End:
          break;
      }
    }
  }
  STOWAGE_TRY(parser.finish());
  return parts;
}

std::string body_of(const std::string& boundary,
                    const std::vector<std::pair<std::string, std::string>>& parts) {
  std::string body;
  for (const auto& [name, data] : parts) {
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name +
            "\"; filename=\"" + name + ".bin\"\r\nContent-Type: image/*\r\n\r\n" + data + "\r\n";
  }
  return body + "--" + boundary + "--\r\n";
}

TEST(MultipartTest, PartsSurviveEveryChunking) {
  // Data that contains near-misses of the delimiter, CRLFs and NULs.
  const std::string boundary = "abc123";
  std::string tricky = "x\r\n--abc12\r\n--abc1x4not\r\n-\r\n--abc12";
  tricky.push_back('\0');
  tricky += "\r\n\r\n--ab";
  const std::string body =
      body_of(boundary, {{"0-file", tricky}, {"1-file", ""}, {"2-file", std::string(5000, 'q')}});
  for (std::size_t step : {1, 2, 3, 7, 10, 64, 4096, 1 << 20}) {
    auto parts = parse(boundary, body, step);
    ASSERT_TRUE(parts) << parts.error().to_string() << " step " << step;
    ASSERT_EQ(parts->size(), 3u) << "step " << step;
    EXPECT_EQ((*parts)[0].headers.name, "0-file");
    EXPECT_EQ((*parts)[0].headers.filename, "0-file.bin");
    EXPECT_EQ((*parts)[0].headers.content_type, "image/*");
    EXPECT_EQ((*parts)[0].data, tricky) << "step " << step;
    EXPECT_EQ((*parts)[1].data, "");
    EXPECT_EQ((*parts)[2].data, std::string(5000, 'q'));
  }
}

TEST(MultipartTest, RandomBinaryRoundTrips) {
  std::mt19937 rng(7);
  std::string data(300000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  const std::string body = body_of("----WebKitFormBoundary7MA4YWxkTrZu0gW", {{"f", data}});
  auto parts = parse("----WebKitFormBoundary7MA4YWxkTrZu0gW", body, 65536);
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, data);
}

TEST(MultipartTest, PreambleAndEpilogueAreIgnored) {
  const std::string body = "preamble text\r\n" + body_of("b", {{"a", "1"}}) + "epilogue";
  auto parts = parse("b", body, 3);
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, "1");
}

TEST(MultipartTest, PartWithoutFilenameIsAPlainField) {
  const std::string body =
      "--b\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\ns3://x/y\r\n--b--\r\n";
  auto parts = parse("b", body, 5);
  ASSERT_TRUE(parts);
  EXPECT_FALSE((*parts)[0].headers.filename.has_value());
  EXPECT_EQ((*parts)[0].data, "s3://x/y");
}

TEST(MultipartTest, MalformedBodiesAreRefused) {
  // Truncated before the closing boundary.
  std::string body = body_of("b", {{"a", "123"}});
  EXPECT_FALSE(parse("b", body.substr(0, body.size() - 6), 4));
  // A part without a Content-Disposition.
  EXPECT_FALSE(parse("b", "--b\r\nContent-Type: x\r\n\r\n1\r\n--b--\r\n", 100));
  // Garbage after a boundary.
  EXPECT_FALSE(parse("b", "--bXYZ\r\n\r\n", 100));
  // Headers without an end.
  EXPECT_FALSE(
      parse("b", "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n" + std::string(20000, 'h'),
            1000));
  // Empty body.
  EXPECT_FALSE(parse("b", "", 1));
}

TEST(MultipartTest, BoundaryFromContentType) {
  EXPECT_EQ(multipart_boundary("multipart/form-data; boundary=abc").value(), "abc");
  EXPECT_EQ(multipart_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b;c\"").value(),
            "a b;c");
  EXPECT_FALSE(multipart_boundary("application/json"));
  EXPECT_FALSE(multipart_boundary("multipart/form-data"));
  EXPECT_FALSE(multipart_boundary("multipart/form-data; boundary=" + std::string(71, 'x')));
}

TEST(MultipartTest, ContentDispositionQuotedNames) {
  auto h = parse_content_disposition(R"(form-data; name="a\"b"; filename="c;d.jpg")");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->name, "a\"b");
  EXPECT_EQ(h->filename, "c;d.jpg");
  EXPECT_FALSE(parse_content_disposition("attachment; filename=x"));
}

// Found by fuzz/multipart_fuzz: a part named "" was taken for a named part.
TEST(MultipartTest, AnEmptyFieldNameIsRefused) {
  EXPECT_FALSE(parse_content_disposition("form-data; name=\"\""));
  EXPECT_FALSE(parse_content_disposition("form-data; name=\""));
  EXPECT_TRUE(parse_content_disposition("form-data; name=\"0-file\"; filename=\"0\""));
}

}  // namespace
}  // namespace stowage::server
