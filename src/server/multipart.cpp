// SPDX-License-Identifier: Apache-2.0
#include "server/multipart.hpp"

#include <algorithm>
#include <cstring>
#include <functional>

namespace stowage::server {
namespace {

/// RFC 2046 section 5.1.1 limits a boundary to 70 characters.
constexpr std::size_t kMaxBoundary = 70;
/// A part's header block larger than this is refused; real clients send a few hundred bytes.
constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

/// Splits `type; a=b; c="d;e"` into its parameters, honouring quotes and backslash escapes.
std::vector<std::pair<std::string, std::string>> parameters(std::string_view value,
                                                            std::string_view* head) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = value.find(';');
  *head = trim(value.substr(0, i));
  while (i != std::string_view::npos && i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const std::size_t eq = value.find('=', i);
    const std::size_t semi = value.find(';', i);
    if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
      i = semi;
      continue;
    }
    std::string key(trim(value.substr(i, eq - i)));
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::size_t j = eq + 1;
    while (j < value.size() && (value[j] == ' ' || value[j] == '\t')) ++j;
    std::string val;
    if (j < value.size() && value[j] == '"') {
      ++j;
      while (j < value.size() && value[j] != '"') {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        val.push_back(value[j++]);
      }
      i = value.find(';', j);
    } else {
      const std::size_t end = value.find(';', j);
      val = std::string(trim(value.substr(j, end == std::string_view::npos ? end : end - j)));
      i = end;
    }
    out.emplace_back(std::move(key), std::move(val));
  }
  return out;
}

}  // namespace

Result<std::string> multipart_boundary(std::string_view content_type) {
  std::string_view head;
  const auto params = parameters(content_type, &head);
  if (!iequals(head, "multipart/form-data")) {
    return make_error(ErrorCode::InvalidArgument,
                      "expected a multipart/form-data body, got '" + std::string(head) + "'");
  }
  for (const auto& [key, value] : params) {
    if (key != "boundary") continue;
    if (value.empty() || value.size() > kMaxBoundary) {
      return make_error(ErrorCode::InvalidArgument,
                        "multipart boundary must be 1 to 70 characters");
    }
    return value;
  }
  return make_error(ErrorCode::InvalidArgument, "multipart/form-data without a boundary parameter");
}

std::optional<PartHeaders> parse_content_disposition(std::string_view value) {
  std::string_view head;
  const auto params = parameters(value, &head);
  if (!iequals(head, "form-data")) return std::nullopt;
  PartHeaders out;
  bool has_name = false;
  for (const auto& [key, val] : params) {
    if (key == "name") {
      out.name = val;
      has_name = true;
    } else if (key == "filename") {
      out.filename = val;
    }
  }
  // RFC 7578 names every field; an empty name names none (found by fuzz/multipart_fuzz).
  if (!has_name || out.name.empty()) return std::nullopt;
  return out;
}

struct MultipartParser::Impl {
  enum class State { Preamble, AfterBoundary, Headers, Body, Done };

  explicit Impl(std::string boundary)
      : delimiter("\r\n--" + boundary), searcher(delimiter.begin(), delimiter.end()) {}

  std::string delimiter;  // CRLF "--" boundary
  std::boyer_moore_horspool_searcher<std::string::const_iterator> searcher;
  std::vector<std::byte> buffer;
  std::size_t consumed = 0;  // bytes of `buffer` already turned into events
  State state = State::Preamble;

  /// Finds the delimiter in buffer[from, end); npos when absent.
  std::size_t find_delimiter(std::size_t from) const {
    const char* base = reinterpret_cast<const char*>(buffer.data());
    const auto it = std::search(base + from, base + buffer.size(), searcher);
    return it == base + buffer.size() ? std::string::npos : static_cast<std::size_t>(it - base);
  }
};

MultipartParser::MultipartParser(std::string boundary)
    : impl_(std::make_unique<Impl>(std::move(boundary))) {}
MultipartParser::~MultipartParser() = default;

bool MultipartParser::done() const noexcept { return impl_->state == Impl::State::Done; }

Status MultipartParser::finish() const {
  if (impl_->state != Impl::State::Done) {
    return make_error(ErrorCode::InvalidArgument,
                      "multipart body ended before its closing boundary");
  }
  return {};
}

Result<std::vector<PartEvent>> MultipartParser::feed(std::span<const std::byte> bytes) {
  Impl& s = *impl_;
  using State = Impl::State;
  // Drop what earlier events referred to; keep only the unconsumed tail.
  if (s.consumed > 0) {
    s.buffer.erase(s.buffer.begin(), s.buffer.begin() + static_cast<std::ptrdiff_t>(s.consumed));
    s.consumed = 0;
  }
  if (s.state == State::Done) return std::vector<PartEvent>{};  // epilogue: ignored
  s.buffer.insert(s.buffer.end(), bytes.begin(), bytes.end());

  std::vector<PartEvent> events;
  std::size_t pos = 0;
  const std::size_t dlen = s.delimiter.size();
  for (;;) {
    const std::size_t avail = s.buffer.size() - pos;
    switch (s.state) {
      case State::Preamble: {
        // The first boundary may open the body directly, without the CRLF of the delimiter.
        const std::string_view open = std::string_view(s.delimiter).substr(2);
        if (avail >= open.size() &&
            as_text(std::span(s.buffer).subspan(pos, open.size())) == open) {
          pos += open.size();
          s.state = State::AfterBoundary;
          continue;
        }
        if (avail < open.size() && open.starts_with(as_text(std::span(s.buffer).subspan(pos)))) {
          s.consumed = pos;
          return events;
        }
        const std::size_t at = s.find_delimiter(pos);
        if (at == std::string::npos) {
          // Keep a tail that might start the delimiter.
          pos = s.buffer.size() > dlen ? s.buffer.size() - dlen : pos;
          s.consumed = pos;
          return events;
        }
        pos = at + dlen;
        s.state = State::AfterBoundary;
        continue;
      }
      case State::AfterBoundary: {
        std::size_t i = pos;
        while (i < s.buffer.size() &&
               (s.buffer[i] == std::byte{' '} || s.buffer[i] == std::byte{'\t'})) {
          ++i;  // RFC 2046 transport padding
        }
        if (s.buffer.size() - i < 2) {
          s.consumed = pos;
          return events;
        }
        const std::string_view two = as_text(std::span(s.buffer).subspan(i, 2));
        if (two == "--") {
          s.state = State::Done;
          s.consumed = s.buffer.size();
          return events;
        }
        if (two != "\r\n") {
          return make_error(ErrorCode::InvalidArgument,
                            "malformed multipart body: unexpected bytes after a boundary");
        }
        pos = i + 2;
        s.state = State::Headers;
        continue;
      }
      case State::Headers: {
        const std::string_view rest = as_text(std::span(s.buffer).subspan(pos));
        std::size_t end = std::string_view::npos;
        std::size_t block = 0;
        if (rest.starts_with("\r\n")) {
          end = 0;
          block = 2;
        } else if (const std::size_t e = rest.find("\r\n\r\n"); e != std::string_view::npos) {
          end = e;
          block = e + 4;
        }
        if (end == std::string_view::npos) {
          if (rest.size() > kMaxHeaderBytes) {
            return make_error(ErrorCode::InvalidArgument,
                              "malformed multipart body: part headers exceed 16 KiB");
          }
          s.consumed = pos;
          return events;
        }
        PartHeaders headers;
        bool named = false;
        std::string_view lines = rest.substr(0, end);
        while (!lines.empty()) {
          const std::size_t eol = lines.find("\r\n");
          const std::string_view line = lines.substr(0, eol);
          lines = eol == std::string_view::npos ? std::string_view{} : lines.substr(eol + 2);
          const std::size_t colon = line.find(':');
          if (colon == std::string_view::npos) {
            return make_error(ErrorCode::InvalidArgument,
                              "malformed multipart body: a part header line without ':'");
          }
          const std::string_view name = trim(line.substr(0, colon));
          const std::string_view value = trim(line.substr(colon + 1));
          if (iequals(name, "Content-Disposition")) {
            auto parsed = parse_content_disposition(value);
            if (!parsed) {
              return make_error(ErrorCode::InvalidArgument,
                                "malformed multipart body: Content-Disposition must be form-data "
                                "with a name");
            }
            headers.name = std::move(parsed->name);
            headers.filename = std::move(parsed->filename);
            named = true;
          } else if (iequals(name, "Content-Type")) {
            headers.content_type = std::string(value);
          }
        }
        if (!named) {
          return make_error(ErrorCode::InvalidArgument,
                            "malformed multipart body: a part without Content-Disposition");
        }
        events.push_back({PartEvent::Kind::Begin, std::move(headers), {}});
        pos += block;
        s.state = State::Body;
        continue;
      }
      case State::Body: {
        const std::size_t at = s.find_delimiter(pos);
        if (at == std::string::npos) {
          // Everything but a tail that could be the start of the delimiter is part data.
          const std::size_t safe = s.buffer.size() >= dlen - 1 ? s.buffer.size() - (dlen - 1) : 0;
          if (safe > pos) {
            events.push_back(
                {PartEvent::Kind::Data, {}, std::span(s.buffer).subspan(pos, safe - pos)});
            pos = safe;
          }
          s.consumed = pos;
          return events;
        }
        if (at > pos) {
          events.push_back({PartEvent::Kind::Data, {}, std::span(s.buffer).subspan(pos, at - pos)});
        }
        events.push_back({PartEvent::Kind::End, {}, {}});
        pos = at + dlen;
        s.state = State::AfterBoundary;
        continue;
      }
      case State::Done:
        s.consumed = s.buffer.size();
        return events;
    }
  }
}

}  // namespace stowage::server
