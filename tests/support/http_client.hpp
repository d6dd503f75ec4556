// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <boost/json.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace stowage::testing {

/// What a test sees of an HTTP response.
struct HttpResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< names lower-cased
  bool transport_error = false;                ///< the connection failed or was closed
  std::string error;

  boost::json::value json() const { return boost::json::parse(body); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// One file of a multipart upload.
struct FormFile {
  std::string field;     ///< "0-file"
  std::string filename;  ///< "0"
  std::string content_type;
  std::string bytes;
};

/// A blocking libcurl client for the API tests: real HTTP/1.1 over loopback.
class HttpClient {
 public:
  HttpClient(std::string base_url, std::string token);

  /// POST /public/api/v3/<method> with a JSON body.
  HttpResponse call(const std::string& method, const boost::json::value& body) const;
  /// POST with any body and content type; `chunked` sends Transfer-Encoding: chunked.
  HttpResponse post(const std::string& path, const std::string& body,
                    const std::string& content_type,
                    std::vector<std::pair<std::string, std::string>> headers = {},
                    bool chunked = false) const;
  /// GET a path (with its query string).
  HttpResponse get(const std::string& path,
                   std::vector<std::pair<std::string, std::string>> headers = {}) const;
  /// POST images.bulk.upload as requests_toolbelt does (one part per file).
  HttpResponse upload(const std::vector<FormFile>& files, bool chunked = false) const;

  /// A multipart/form-data body as the SDK builds it.
  static std::string multipart_body(const std::vector<FormFile>& files,
                                    const std::string& boundary);

  const std::string& token() const { return token_; }
  HttpClient with_token(std::string token) const { return HttpClient(base_url_, std::move(token)); }

 private:
  std::string base_url_;
  std::string token_;
};

/// Sends raw bytes on a new TCP connection to 127.0.0.1:port and returns what comes back
/// before the server closes (or `wait_ms` passes). `closed` tells whether the server closed.
struct RawExchange {
  std::string received;
  bool closed = false;
  long elapsed_ms = 0;
};
RawExchange raw_exchange(unsigned short port, const std::string& bytes, long wait_ms);

}  // namespace stowage::testing
