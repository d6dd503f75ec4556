// SPDX-License-Identifier: Apache-2.0
// What a remote answers, as the S3, Azure and GCS stores read it: every request of a list, a
// stat, a read and a remove gets the input's status and body (XML listings and errors, JSON
// resources and errors), through the stores' public interface and a transport that plays the
// remote. Refusals are errors; nothing may crash, and no read may yield more bytes than were
// answered.
#include <algorithm>
#include <cstring>

#include "fuzz.hpp"
#include "stowage/auth/credentials.hpp"
#include "stowage/auth/gcp_token.hpp"
#include "stowage/http/transport.hpp"
#include "stowage/store/azure/azure_store.hpp"
#include "stowage/store/gcs/gcs_store.hpp"
#include "stowage/store/s3/s3_store.hpp"

namespace {

namespace http = stowage::http;
using stowage::Result;

/// Every request answered alike: a status, an ETag and Content-Length, and the input's body.
class Answers final : public http::Transport {
 public:
  Answers(long status, std::span<const std::byte> body) : status_(status), body_(body) {}

  Result<http::Response> send(const http::Request&, std::uint64_t max_body_bytes) override {
    http::Response r;
    r.status = status_;
    r.headers = headers();
    if (body_.size() > max_body_bytes) {
      return stowage::make_error(stowage::ErrorCode::TooLarge, "answer too large");
    }
    r.body.assign(body_.begin(), body_.end());
    return r;
  }
  Result<std::unique_ptr<http::ResponseStream>> open(const http::Request&) override {
    return std::unique_ptr<http::ResponseStream>(std::make_unique<Stream>(status_, headers(), body_));
  }

 private:
  class Stream final : public http::ResponseStream {
   public:
    Stream(long status, std::vector<http::Header> headers, std::span<const std::byte> body)
        : status_(status), headers_(std::move(headers)), body_(body) {}
    long status() const override { return status_; }
    const std::vector<http::Header>& headers() const override { return headers_; }
    Result<std::size_t> read(std::span<std::byte> out) override {
      const std::size_t n = std::min(out.size(), body_.size() - at_);
      std::memcpy(out.data(), body_.data() + at_, n);
      at_ += n;
      return n;
    }
    std::optional<std::uint64_t> size() const override { return body_.size(); }

   private:
    long status_;
    std::vector<http::Header> headers_;
    std::span<const std::byte> body_;
    std::size_t at_ = 0;
  };
  std::vector<http::Header> headers() const {
    return {{"ETag", "\"0123456789abcdef\""},
            {"Content-Length", std::to_string(body_.size())},
            {"Last-Modified", "Wed, 25 Nov 2026 23:03:41 GMT"},
            {"x-goog-generation", "17"},
            {"Content-Range", "bytes 0-" + std::to_string(body_.empty() ? 0 : body_.size() - 1) +
                                  "/" + std::to_string(body_.size())}};
  }
  long status_;
  std::span<const std::byte> body_;
};

class FixedTokens final : public stowage::auth::TokenSource {
 public:
  Result<stowage::auth::AccessToken> token() override {
    return stowage::auth::AccessToken{stowage::Redacted<>(std::string("fuzz-token")),
                                      std::chrono::system_clock::now() + std::chrono::hours(1)};
  }
  void invalidate(const stowage::Redacted<>&) override {}
};

http::RetryPolicy no_waiting() {
  http::RetryPolicy retry;
  retry.max_attempts = 2;
  retry.sleep = [](std::chrono::milliseconds) {};
  return retry;
}

void exercise(stowage::store::ObjectStore& store, std::size_t answered) {
  const stowage::store::ObjectPath path{"bkt", "dir/k.jpg"};
  (void)store.list({"bkt", "dir/"}, {});
  (void)store.stat(path);
  if (auto reader = store.open_read(path, {})) {
    std::vector<std::byte> buffer(4096);
    std::size_t total = 0;
    for (int i = 0; i < 64; ++i) {
      auto n = (*reader)->read(buffer);
      if (!n || *n == 0) break;
      total += *n;
    }
    STOWAGE_FUZZ_CHECK(total <= answered);
  }
  (void)store.remove(path);
}

}  // namespace

STOWAGE_FUZZ_TARGET(cloud_answers) {
  if (size < 2) return 0;
  static constexpr long kStatuses[] = {200, 200, 200, 206, 304, 307, 400, 403, 404, 409, 412, 500, 503};
  const long status = kStatuses[data[0] % std::size(kStatuses)];
  const auto body = stowage::fuzz::bytes(data + 2, size - 2);
  switch (data[1] % 3) {
    case 0: {
      stowage::store::s3::S3Options o;
      o.endpoint = stowage::store::s3::Endpoint::parse("http://127.0.0.1", 9).value();
      stowage::auth::Credentials c;
      c.access_key_id = "AKIDEXAMPLE";
      c.secret_access_key = stowage::Redacted<>(std::string("secret"));
      o.credentials = stowage::auth::make_static_credentials(c);
      o.retry = no_waiting();
      auto store = stowage::store::s3::S3Store::open(o, std::make_shared<Answers>(status, body));
      if (store) exercise(**store, body.size());
      break;
    }
    case 1: {
      auto o = stowage::store::azure::AzureOptions::with_account_key(
          "http://127.0.0.1:9/devstoreaccount1", "devstoreaccount1", "c2VjcmV0");
      if (!o) break;
      o->retry = no_waiting();
      stowage::store::azure::AzureStore store(*o, std::make_unique<Answers>(status, body));
      exercise(store, body.size());
      break;
    }
    default: {
      stowage::store::gcs::GcsOptions o;
      o.endpoint = "http://127.0.0.1:9";
      o.retry = no_waiting();
      auto store = stowage::store::gcs::GcsStore::open(o, std::make_shared<Answers>(status, body),
                                                       std::make_shared<FixedTokens>());
      if (store) exercise(**store, body.size());
      break;
    }
  }
  return 0;
}
