// SPDX-License-Identifier: Apache-2.0
// Azure Shared Key on the documented worked examples (tests/testdata/azure-sharedkey/, copied
// from ../shared/testdata), plus the provider's pure helpers: options, error translation, XML,
// block ids and sizes. No network.
#include "stowage/auth/azure_shared_key.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "stowage/io/checksum.hpp"
#include "stowage/store/azure/azure_internal.hpp"
#include "stowage/store/azure/azure_options.hpp"

namespace stowage::testing {
namespace {

namespace fs = std::filesystem;
namespace az = stowage::auth::azure;
namespace internal = stowage::store::azure::internal;
using stowage::store::azure::AzureOptions;

/// The emulator's public, documented key: the .authz-devkey files are HMACs under it.
constexpr std::string_view kDevKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const fs::path kVectors = fs::path(STOWAGE_TESTDATA_DIR) / "azure-sharedkey";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string chomp(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

/// A .req file: "METHOD URL HTTP/1.1" then "Name:value" lines.
http::Request parse_req(const std::string& text) {
  http::Request request;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  std::istringstream first(line);
  first >> request.method >> request.url;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto colon = line.find(':');
    request.headers.push_back({line.substr(0, colon), line.substr(colon + 1)});
  }
  return request;
}

class SharedKeyVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(SharedKeyVectors, StringToSignAndSignature) {
  const fs::path dir = kVectors / GetParam();
  const http::Request request = parse_req(slurp(dir / (GetParam() + ".req")));
  const std::string expected_sts = slurp(dir / (GetParam() + ".sts"));
  const std::string authz = chomp(slurp(dir / (GetParam() + ".authz-devkey")));
  // "SharedKey <account>:<signature>"
  const std::string account = authz.substr(10, authz.find(':') - 10);
  const std::string sts = az::string_to_sign(request, account);
  EXPECT_EQ(sts, expected_sts);
  const auto credentials = az::SharedKeyCredentials::from_base64(account, kDevKey).value();
  EXPECT_EQ("SharedKey " + account + ":" + az::signature(sts, credentials.key), authz);
}

INSTANTIATE_TEST_SUITE_P(Documented, SharedKeyVectors,
                         ::testing::Values("sharedkey-create-container-zero-length",
                                           "sharedkey-get-container-metadata-2009",
                                           "sharedkey-get-container-metadata-2015",
                                           "sharedkey-list-blobs-contosorest",
                                           "sharedkey-list-containers-contosorest",
                                           "sharedkey-put-block-derived"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(AzureSharedKey, CanonicalizedHeadersExamples) {
  const auto doc = boost::json::parse(slurp(kVectors / "canonicalization-examples.json"));
  for (const auto& example : doc.at("canonicalized_headers").as_array()) {
    std::vector<http::Header> headers;
    for (const auto& [name, value] : example.at("headers").as_object()) {
      headers.push_back({std::string(name), std::string(value.as_string())});
    }
    EXPECT_EQ(az::canonicalized_headers(headers), example.at("expected").as_string());
  }
}

TEST(AzureSharedKey, CanonicalizedResourceExamples) {
  const auto doc = boost::json::parse(slurp(kVectors / "canonicalization-examples.json"));
  int checked = 0;
  for (const auto& example : doc.at("canonicalized_resource_sharedkey").as_array()) {
    const std::string account(example.at("account").as_string());
    std::string url(example.at("url").as_string());
    std::string expected(example.at("expected").as_string());
    SCOPED_TRACE(url);
    if (url.find("myaccount-secondary") != std::string::npos) {
      // The account comes from the configuration, never from the host: the primary name.
      url.replace(url.find("myaccount-secondary"), 19, "myaccount");
    }
    if (const auto note = example.as_object().if_contains("note");
        note && note->as_string().find("typo in the doc") != boost::json::string::npos) {
      // The doc prints /mycontainer for a URL path of /container: the URL is what is signed.
      expected.replace(expected.find("/mycontainer"), 12, "/container");
    }
    EXPECT_EQ(az::canonicalized_resource(account, url), expected);
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

TEST(AzureSharedKey, EmulatorPathStyleNamesTheAccountTwice) {
  http::Request request;
  request.method = "PUT";
  request.url = "http://127.0.0.1:10000/devstoreaccount1/c/dir/a%20b?comp=block&blockid=QQ%3D%3D";
  request.headers = {{"x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"},
                     {"x-ms-version", "2021-12-02"}};
  std::vector<std::byte> body(5);
  request.body = body;
  EXPECT_EQ(az::string_to_sign(request, "devstoreaccount1"),
            "PUT\n\n\n5\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n"
            "x-ms-version:2021-12-02\n/devstoreaccount1/devstoreaccount1/c/dir/a%20b\n"
            "blockid:QQ==\ncomp:block");
}

TEST(AzureSharedKey, HeadersAreFoldedAndSorted) {
  EXPECT_EQ(az::canonicalized_headers({{"X-MS-Version", " 2021-12-02 "},
                                       {"x-ms-meta-a", "one   two\tthree"},
                                       {"Content-Type", "text/plain"},
                                       {"x-ms-blob-type", "BlockBlob"}}),
            "x-ms-blob-type:BlockBlob\nx-ms-meta-a:one two three\nx-ms-version:2021-12-02\n");
}

TEST(AzureSharedKey, SignAddsDateVersionAndAuthorization) {
  const auto credentials =
      az::SharedKeyCredentials::from_base64("devstoreaccount1", kDevKey).value();
  http::Request request;
  request.method = "GET";
  request.url = "https://devstoreaccount1.blob.core.windows.net/c/k";
  az::sign(request, credentials, std::chrono::system_clock::from_time_t(1435362000));
  EXPECT_EQ(http::find_header(request.headers, "x-ms-date").value(),
            "Fri, 26 Jun 2015 23:40:00 GMT");
  EXPECT_EQ(http::find_header(request.headers, "x-ms-version").value(), az::kApiVersion);
  const auto authz = http::find_header(request.headers, "Authorization").value();
  EXPECT_TRUE(authz.starts_with("SharedKey devstoreaccount1:")) << authz;
}

TEST(AzureSharedKey, BadKeyIsRefusedWithoutEchoingIt) {
  auto bad = az::SharedKeyCredentials::from_base64("acct", "not base64 !!! SENTINEL-SECRET");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(bad.error().message.find("SENTINEL"), std::string::npos) << bad.error().message;
}

// ---- options ----------------------------------------------------------------------------------

TEST(AzureOptions, SecretIsAKeyOrASasWithOrWithoutQuestionMark) {
  const auto key = AzureOptions::from_settings("https://acct.blob.core.windows.net/", std::nullopt,
                                               "acct", kDevKey)
                       .value();
  EXPECT_TRUE(key.shared_key.has_value());
  EXPECT_TRUE(key.sas.empty());
  EXPECT_EQ(key.endpoint, "https://acct.blob.core.windows.net");

  for (const std::string sas :
       {"?sv=2020-12-06&sp=racwdl&sr=c&se=2030-01-01T00:00:00Z&sig=abc%3D",
        "sv=2020-12-06&sp=racwdl&sr=c&se=2030-01-01T00:00:00Z&sig=abc%3D"}) {
    const auto opts =
        AzureOptions::from_settings("acct.blob.core.windows.net", std::nullopt, "acct", sas)
            .value();
    EXPECT_FALSE(opts.shared_key.has_value());
    EXPECT_EQ(opts.sas.reveal(), "sv=2020-12-06&sp=racwdl&sr=c&se=2030-01-01T00:00:00Z&sig=abc%3D");
    EXPECT_EQ(opts.endpoint, "https://acct.blob.core.windows.net");
  }
}

TEST(AzureOptions, EndpointDefaultsAndPort) {
  EXPECT_EQ(AzureOptions::from_settings("", std::nullopt, "acct", kDevKey).value().endpoint,
            "https://acct.blob.core.windows.net");
  EXPECT_EQ(AzureOptions::from_settings("http://127.0.0.1/devstoreaccount1", 10000,
                                        "devstoreaccount1", kDevKey)
                .value()
                .endpoint,
            "http://127.0.0.1:10000/devstoreaccount1");
  EXPECT_EQ(
      AzureOptions::from_settings("http://127.0.0.1:9/x", 10000, "x", kDevKey).value().endpoint,
      "http://127.0.0.1:9/x");
  EXPECT_FALSE(AzureOptions::from_settings("ftp://host", std::nullopt, "x", kDevKey));
}

// ---- error translation ------------------------------------------------------------------------

TEST(AzureError, CodesRetryabilityAndNoSignatureEcho) {
  const store::ObjectPath path{"container", "dir/key"};
  const std::string auth_body =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code>"
      "<Message>Server failed to authenticate the request.\nRequestId:abc\nTime:x</Message>"
      "<AuthenticationErrorDetail>The MAC signature found in the HTTP request "
      "'SENTINELSIGNATURE=' is not the same as any computed signature.</AuthenticationErrorDetail>"
      "</Error>";
  const auto auth =
      internal::azure_error("GetBlob", path, 403, {{"x-ms-request-id", "4F2A-1"}}, auth_body);
  EXPECT_EQ(auth.code, ErrorCode::Unauthenticated);
  EXPECT_FALSE(auth.retryable);
  EXPECT_EQ(auth.provider_code, "AuthenticationFailed");
  EXPECT_EQ(auth.request_id, "4F2A-1");
  EXPECT_EQ(auth.message.find("SENTINEL"), std::string::npos) << auth.message;
  EXPECT_TRUE(auth.message.starts_with(
      "GetBlob azure://container/dir/key: AuthenticationFailed: Server failed to authenticate"))
      << auth.message;
  EXPECT_NE(auth.message.find("(request 4F2A-1)"), std::string::npos);

  const auto busy =
      internal::azure_error("PutBlock", path, 503, {{"x-ms-error-code", "ServerBusy"}}, "");
  EXPECT_EQ(busy.code, ErrorCode::Unavailable);
  EXPECT_TRUE(busy.retryable);
  EXPECT_TRUE(internal::azure_error("x", path, 500, {}, "").retryable);
  EXPECT_TRUE(internal::azure_error("x", path, 429, {}, "").retryable);
  EXPECT_EQ(
      internal::azure_error("x", path, 500, {{"x-ms-error-code", "OperationTimedOut"}}, "").code,
      ErrorCode::Timeout);
  EXPECT_EQ(internal::azure_error("x", path, 404, {{"x-ms-error-code", "BlobNotFound"}}, "").code,
            ErrorCode::NotFound);
  EXPECT_EQ(
      internal::azure_error("x", path, 409, {{"x-ms-error-code", "BlobAlreadyExists"}}, "").code,
      ErrorCode::AlreadyExists);
  EXPECT_EQ(internal::azure_error("x", path, 412, {}, "").code, ErrorCode::PreconditionFailed);
  EXPECT_EQ(internal::azure_error("x", path, 416, {}, "").code, ErrorCode::RangeNotSatisfiable);
  const auto denied = internal::azure_error(
      "x", path, 403, {{"x-ms-error-code", "AuthorizationPermissionMismatch"}}, "");
  EXPECT_EQ(denied.code, ErrorCode::PermissionDenied);
  EXPECT_FALSE(denied.retryable);
  EXPECT_FALSE(internal::azure_error("x", path, 400, {}, "").retryable);
}

// ---- XML, block ids and sizes -----------------------------------------------------------------

TEST(AzureXml, ListBlobsMergesPrefixesAndBlobs) {
  const std::string xml =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ContainerName=\"c\">"
      "<Prefix>p/</Prefix><Blobs>"
      "<Blob><Name>p/a&amp;b</Name><Properties><Last-Modified>Fri, 26 Jun 2015 23:39:12 GMT"
      "</Last-Modified><Etag>0x8D</Etag><Content-Length>12</Content-Length></Properties></Blob>"
      "<BlobPrefix><Name>p/d/</Name></BlobPrefix>"
      "<Blob><Name>p/c</Name><Properties><Content-Length>0</Content-Length></Properties></Blob>"
      "</Blobs><NextMarker>m2</NextMarker></EnumerationResults>";
  const auto result = internal::parse_list_blobs(xml).value();
  ASSERT_EQ(result.entries.size(), 3u);
  EXPECT_EQ(result.entries[0].name, "p/a&b");
  EXPECT_EQ(result.entries[0].size, 12u);
  EXPECT_EQ(result.entries[0].etag, "0x8D");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(result.entries[0].last_modified), 1435361952);
  EXPECT_EQ(result.entries[1].name, "p/c");
  EXPECT_TRUE(result.entries[2].is_prefix);
  EXPECT_EQ(result.next_marker, "m2");
  EXPECT_FALSE(internal::parse_list_blobs("not xml <"));
}

TEST(AzureXml, BlockListRoundTrip) {
  EXPECT_EQ(internal::block_list_xml({"QQ==", "Qg=="}),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>QQ==</Latest>"
            "<Latest>Qg==</Latest></BlockList>");
  const auto blocks = internal::parse_uncommitted_blocks(
                          "<?xml version=\"1.0\"?><BlockList><CommittedBlocks/><UncommittedBlocks>"
                          "<Block><Name>QQ==</Name><Size>4194304</Size></Block>"
                          "</UncommittedBlocks></BlockList>")
                          .value();
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].id, "QQ==");
  EXPECT_EQ(blocks[0].size, 4194304u);
}

TEST(AzureBlocks, IdsHaveEqualLengthAndAreDistinct) {
  std::set<std::string> ids;
  std::size_t length = 0;
  for (std::uint64_t i : {0ull, 1ull, 9ull, 10ull, 4999ull, 49999ull}) {
    const std::string id = internal::block_id("0123456789abcdef", i, std::string(64, 'a'));
    if (length == 0) length = id.size();
    EXPECT_EQ(id.size(), length);
    EXPECT_LE(io::from_base64(id).size(), 64u);
    EXPECT_EQ(io::from_base64(id).size(), internal::kBlockIdRawBytes);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 6u);
}

TEST(AzureBlocks, SizesGrowSoThatEveryBlobFits) {
  constexpr std::uint64_t kMin = 4 << 20;
  EXPECT_EQ(internal::block_size_for(kMin, 100 << 20, 0), kMin);
  EXPECT_EQ(internal::block_size_for(kMin, 1ull << 40, 0), ((1ull << 40) + 9999) / 10000);
  EXPECT_EQ(internal::block_size_for(kMin, std::nullopt, 499), kMin);
  EXPECT_EQ(internal::block_size_for(kMin, std::nullopt, 500), 2 * kMin);
  // Unknown size: 50,000 growing blocks hold over 170 TiB (Azure's own limit is 190.7 TiB).
  long double total = 0;
  for (std::uint64_t i = 0; i < internal::kMaxBlocks; i += 500) {
    total += 500.0L * internal::block_size_for(kMin, std::nullopt, i);
  }
  EXPECT_GT(total, 170.0L * (1ull << 40));
}

TEST(AzureInternal, EncodingKeepsSlashesInPathsOnly) {
  EXPECT_EQ(internal::encode_path("a b/c?d#e%f+g/\xC3\xA9"), "a%20b/c%3Fd%23e%25f%2Bg/%C3%A9");
  EXPECT_EQ(internal::encode_query("a/b=c&d"), "a%2Fb%3Dc%26d");
}

}  // namespace
}  // namespace stowage::testing
