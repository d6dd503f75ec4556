// SPDX-License-Identifier: Apache-2.0
// SigV4 on AWS's own test suite (tests/testdata/sigv4, from botocore) and on the S3 API
// Reference's worked examples (tests/testdata/s3-presign), stage by stage: canonical request,
// string to sign, signature, Authorization. The clock is injected: the vectors' own dates.
#include "stowage/auth/sigv4.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "stowage/io/checksum.hpp"
#include "stowage/uri/percent.hpp"

namespace stowage::auth::sigv4 {
namespace {

namespace fs = std::filesystem;
using std::chrono::system_clock;

const fs::path kData = STOWAGE_TESTDATA_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

system_clock::time_point at(int y, int mo, int d, int h, int mi, int s) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return system_clock::from_time_t(timegm(&tm));
}

/// A `.req` file: request line, headers (folded lines joined by a space), blank line, body.
SignableRequest parse_req(const std::string& text, std::string* body_out = nullptr) {
  SignableRequest r;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  const auto sp = line.find(' ');
  const auto http = line.rfind(" HTTP/");
  r.method = line.substr(0, sp);
  const std::string target = line.substr(sp + 1, http - sp - 1);
  const auto q = target.find('?');
  r.path = uri::percent_decode(target.substr(0, q));
  if (q != std::string::npos) {
    std::string_view query(target);
    query.remove_prefix(q + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view item = query.substr(0, amp);
      const auto eq = item.find('=');
      r.query.emplace_back(
          uri::percent_decode(item.substr(0, eq)),
          eq == std::string_view::npos ? "" : uri::percent_decode(item.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  while (std::getline(in, line)) {
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !r.headers.empty()) {
      const auto first = line.find_first_not_of(" \t");
      r.headers.back().value += " " + line.substr(first);
      continue;
    }
    const auto colon = line.find(':');
    r.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  r.payload_hash = io::to_hex(io::Sha256::of(std::as_bytes(std::span(body.data(), body.size()))));
  for (const auto& h : r.headers) {
    if (h.name == "x-amz-content-sha256") r.payload_hash = h.value;
  }
  if (body_out != nullptr) *body_out = body;
  return r;
}

std::string no_space_after_comma(std::string s) {
  for (std::size_t i; (i = s.find(", ")) != std::string::npos;) s.erase(i + 1, 1);
  return s;
}

// ---- the generic AWS suite ----------------------------------------------------------------------

const system_clock::time_point kSuiteTime = at(2015, 8, 30, 12, 36, 0);
constexpr std::string_view kSuiteKeyId = "AKIDEXAMPLE";
constexpr std::string_view kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kSuiteToken =
    "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";

std::vector<fs::path> suite_cases() {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(kData / "sigv4")) {
    if (e.path().extension() == ".req") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SigV4Suite, EveryCaseStageByStage) {
  const auto cases = suite_cases();
  ASSERT_GE(cases.size(), 30u) << "vectors missing under " << kData;
  for (const auto& req_file : cases) {
    const std::string name = req_file.stem().string();
    SCOPED_TRACE(name);
    const fs::path dir = req_file.parent_path();
    SignableRequest r = parse_req(slurp(req_file));
    Credentials c{std::string(kSuiteKeyId), Redacted<>(std::string(kSuiteSecret)), {}, {}};
    if (name == "get-vanilla-with-session-token") {
      c.session_token = Redacted<>(std::string(kSuiteToken));
      r.headers.push_back({"X-Amz-Security-Token", std::string(kSuiteToken)});
    }
    // Generic services normalize the path; S3 does not (see the S3 cases below).
    const std::string creq = canonical_request(r, /*normalize_path=*/true);
    EXPECT_EQ(creq, slurp(dir / (name + ".creq")));
    const std::string sts = string_to_sign(creq, kSuiteTime, "us-east-1", "service");
    EXPECT_EQ(sts, slurp(dir / (name + ".sts")));
    const auto key = signing_key(kSuiteSecret, kSuiteTime, "us-east-1", "service");
    const auto names = canonical_headers(r.headers).second;
    const std::string authz =
        authorization(kSuiteKeyId, credential_scope(kSuiteTime, "us-east-1", "service"), names,
                      signature(key, sts));
    EXPECT_EQ(authz, slurp(dir / (name + ".authz")));

    // The whole signer, from a request without X-Amz-Date: it adds the date (and token).
    SignableRequest bare = r;
    std::erase_if(bare.headers, [](const http::Header& h) {
      return h.name == "X-Amz-Date" || h.name == "X-Amz-Security-Token";
    });
    if (name == "post-sts-header-before") {
      c.session_token = Redacted<>(r.headers.back().value);
    }
    SigningParams p;
    p.region = "us-east-1";
    p.service = "service";
    p.time = kSuiteTime;
    p.normalize_path = true;
    EXPECT_EQ(sign(bare, c, p), slurp(dir / (name + ".authz")));
  }
}

TEST(SigV4Suite, S3DoesNotNormalizeThePath) {
  SignableRequest r;
  r.path = "/my-object//example//photo.user";
  EXPECT_EQ(canonical_uri(r.path, false), "/my-object//example//photo.user");
  EXPECT_EQ(canonical_uri(r.path, true), "/my-object/example/photo.user");
  EXPECT_EQ(canonical_uri("/a/../b", false), "/a/../b");
  EXPECT_EQ(canonical_uri("/test$file.text", false), "/test%24file.text") << "encoded once";
  EXPECT_EQ(canonical_uri("/pct%20%2F", false), "/pct%2520%252F") << "a key's '%' is data";
}

TEST(SigV4Suite, Encoding) {
  EXPECT_EQ(uri::percent_encode("a b+c/d~e"), "a%20b%2Bc%2Fd~e");
  EXPECT_EQ(uri::percent_encode("a b+c/d~e", true), "a%20b%2Bc/d~e");
  EXPECT_EQ(uri::percent_encode("\xC3\xA9"), "%C3%A9");
  EXPECT_EQ(uri::percent_decode("%E1%88%B4=x%2"), "\xE1\x88\xB4=x%2");
  EXPECT_EQ(canonical_query({{"b", "2"}, {"a", "z"}, {"a", "y"}, {"uploads", ""}}),
            "a=y&a=z&b=2&uploads=");
}

// ---- S3's worked examples -----------------------------------------------------------------------

const system_clock::time_point kS3Time = at(2013, 5, 24, 0, 0, 0);
const Credentials kS3Credentials{
    "AKIAIOSFODNN7EXAMPLE",
    Redacted<>(std::string("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")),
    {},
    {}};

TEST(SigV4S3, SigningKey) {
  const auto key =
      signing_key(kS3Credentials.secret_access_key.reveal(), kS3Time, "us-east-1", "s3");
  std::string expected = slurp(kData / "s3-presign" / "signing-key-20130524-us-east-1-s3.hex");
  while (!expected.empty() && std::isspace(static_cast<unsigned char>(expected.back())))
    expected.pop_back();
  EXPECT_EQ(io::to_hex(key), expected);
}

TEST(SigV4S3, HeaderExamplesStageByStage) {
  for (const std::string name : {"header-get-object-range", "header-put-object",
                                 "header-get-bucket-lifecycle", "header-list-objects"}) {
    SCOPED_TRACE(name);
    const fs::path dir = kData / "s3-presign" / name;
    std::string body;
    SignableRequest r = parse_req(slurp(dir / (name + ".req")), &body);
    const std::string creq = canonical_request(r, /*normalize_path=*/false);
    EXPECT_EQ(creq, slurp(dir / (name + ".creq")));
    const std::string sts = string_to_sign(creq, kS3Time, "us-east-1", "s3");
    EXPECT_EQ(sts, slurp(dir / (name + ".sts")));

    // The whole signer: it adds x-amz-date itself, from the injected clock.
    SignableRequest bare = r;
    std::erase_if(bare.headers, [](const http::Header& h) { return h.name == "x-amz-date"; });
    SigningParams p;
    p.time = kS3Time;
    EXPECT_EQ(no_space_after_comma(sign(bare, kS3Credentials, p)), slurp(dir / (name + ".authz")));
  }
}

TEST(SigV4S3, PresignedGet) {
  const fs::path dir = kData / "s3-presign" / "presign-get-object";
  SignableRequest r;
  r.path = "/test.txt";
  r.headers.push_back({"Host", "examplebucket.s3.amazonaws.com"});
  SigningParams p;
  p.time = kS3Time;
  // Stage by stage: the query the presigner adds, then the canonical request and string to sign.
  SignableRequest q = r;
  q.payload_hash = std::string(kUnsignedPayload);
  q.query = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
             {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
             {"X-Amz-Date", "20130524T000000Z"},
             {"X-Amz-Expires", "86400"},
             {"X-Amz-SignedHeaders", "host"}};
  const std::string creq = canonical_request(q, false);
  EXPECT_EQ(creq, slurp(dir / "presign-get-object.creq"));
  EXPECT_EQ(string_to_sign(creq, kS3Time, "us-east-1", "s3"),
            slurp(dir / "presign-get-object.sts"));
  EXPECT_EQ(presign(r, "https://examplebucket.s3.amazonaws.com", kS3Credentials, p,
                    std::chrono::seconds(86400)),
            slurp(dir / "presign-get-object.url"));
}

TEST(SigV4S3, SessionTokenIsSignedAndSecretsStayOut) {
  Credentials c = kS3Credentials;
  c.session_token = Redacted<>(std::string("SESSION-TOKEN-SENTINEL"));
  SignableRequest r;
  r.path = "/k";
  r.headers.push_back({"Host", "b.s3.amazonaws.com"});
  SigningParams p;
  p.time = kS3Time;
  const std::string authz = sign(r, c, p);
  EXPECT_NE(authz.find("x-amz-security-token"), std::string::npos);
  EXPECT_EQ(authz.find("SESSION-TOKEN-SENTINEL"), std::string::npos);
  EXPECT_EQ(authz.find(c.secret_access_key.reveal()), std::string::npos);
  std::ostringstream printed;
  printed << c.secret_access_key << c.session_token;
  EXPECT_EQ(printed.str(), "******");
}

}  // namespace
}  // namespace stowage::auth::sigv4
