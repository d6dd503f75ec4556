// SPDX-License-Identifier: Apache-2.0
#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>

namespace stowage::testing {
namespace {

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  const auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*headers)[name] = value;
  }
  return size * n;
}

struct Upload {
  const std::string* body;
  size_t offset = 0;
};

/// Feeds the body in small pieces, so that a chunked request really has several chunks.
size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* up = static_cast<Upload*>(user);
  const size_t left = up->body->size() - up->offset;
  const size_t take = std::min({left, size * n, size_t{7000}});
  std::memcpy(buffer, up->body->data() + up->offset, take);
  up->offset += take;
  return take;
}

HttpResponse perform(const std::string& url, const std::string* body,
                     const std::string& content_type,
                     const std::vector<std::pair<std::string, std::string>>& extra,
                     const std::string& token, bool chunked) {
  ensure_curl();
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  HttpResponse out;
  curl_slist* headers = nullptr;
  if (!token.empty()) headers = curl_slist_append(headers, ("x-api-key: " + token).c_str());
  if (!content_type.empty())
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  headers = curl_slist_append(headers, "Expect:");
  if (chunked) headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
  for (const auto& [k, v] : extra) headers = curl_slist_append(headers, (k + ": " + v).c_str());
  Upload up{body};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &out.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    if (!chunked)
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    out.transport_error = true;
    out.error = curl_easy_strerror(rc);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  return out;
}

}  // namespace

HttpClient::HttpClient(std::string base_url, std::string token)
    : base_url_(std::move(base_url)), token_(std::move(token)) {}

HttpResponse HttpClient::call(const std::string& method, const boost::json::value& body) const {
  return post("/public/api/v3/" + method, boost::json::serialize(body), "application/json");
}

HttpResponse HttpClient::post(const std::string& path, const std::string& body,
                              const std::string& content_type,
                              std::vector<std::pair<std::string, std::string>> headers,
                              bool chunked) const {
  return perform(base_url_ + path, &body, content_type, headers, token_, chunked);
}

HttpResponse HttpClient::get(const std::string& path,
                             std::vector<std::pair<std::string, std::string>> headers) const {
  return perform(base_url_ + path, nullptr, "", headers, token_, false);
}

std::string HttpClient::multipart_body(const std::vector<FormFile>& files,
                                       const std::string& boundary) {
  std::string body;
  for (const auto& f : files) {
    body += "--" + boundary + "\r\n";
    body += "Content-Disposition: form-data; name=\"" + f.field + "\"; filename=\"" + f.filename +
            "\"\r\n";
    if (!f.content_type.empty()) body += "Content-Type: " + f.content_type + "\r\n";
    body += "\r\n" + f.bytes + "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  return body;
}

HttpResponse HttpClient::upload(const std::vector<FormFile>& files, bool chunked) const {
  const std::string boundary = "b0a7e1c2d3f4a5b6c7d8e9f0";
  return post("/public/api/v3/images.bulk.upload", multipart_body(files, boundary),
              "multipart/form-data; boundary=" + boundary, {}, chunked);
}

RawExchange raw_exchange(unsigned short port, const std::string& bytes, long wait_ms) {
  RawExchange out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  const auto start = std::chrono::steady_clock::now();
  (void)::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  char buf[4096];
  for (;;) {
    const long elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    if (elapsed >= wait_ms) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait_ms - elapsed)) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      out.closed = true;
      break;
    }
    out.received.append(buf, static_cast<size_t>(n));
  }
  out.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  ::close(fd);
  return out;
}

}  // namespace stowage::testing
