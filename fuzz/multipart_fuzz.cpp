// SPDX-License-Identifier: Apache-2.0
// The streaming multipart/form-data parser of uploads, fed a body in chunks of a size the input
// chooses, plus the Content-Type and Content-Disposition parsers on the input as text.
#include "fuzz.hpp"
#include "server/multipart.hpp"

STOWAGE_FUZZ_TARGET(multipart) {
  using stowage::server::PartEvent;
  const std::string_view all = stowage::fuzz::text(data, size);
  (void)stowage::server::multipart_boundary(all);
  (void)stowage::server::parse_content_disposition(all);
  if (size < 2) return 0;
  // The first byte: the chunk size; the second: which boundary the body uses.
  const std::size_t chunk = 1 + data[0] % 97;
  stowage::server::MultipartParser parser(data[1] % 2 ? "xYzZY" : "----WebKitFormBoundary7MA4YWxk");
  const auto body = stowage::fuzz::bytes(data + 2, size - 2);
  bool in_part = false;
  std::size_t data_bytes = 0;
  for (std::size_t at = 0; at < body.size(); at += chunk) {
    auto events = parser.feed(body.subspan(at, std::min(chunk, body.size() - at)));
    if (!events) return 0;  // a malformed body is refused: fine
    for (const PartEvent& e : *events) {
      // Events come as Begin, Data..., End for every part.
      switch (e.kind) {
        case PartEvent::Kind::Begin:
          STOWAGE_FUZZ_CHECK(!in_part);
          STOWAGE_FUZZ_CHECK(!e.headers.name.empty());
          in_part = true;
          break;
        case PartEvent::Kind::Data:
          STOWAGE_FUZZ_CHECK(in_part);
          data_bytes += e.data.size();
          break;
        case PartEvent::Kind::End:
          STOWAGE_FUZZ_CHECK(in_part);
          in_part = false;
          break;
      }
    }
  }
  STOWAGE_FUZZ_CHECK(data_bytes <= body.size());  // part bodies come from the input only
  if (parser.done()) STOWAGE_FUZZ_CHECK(parser.finish() && !in_part);
  return 0;
}
