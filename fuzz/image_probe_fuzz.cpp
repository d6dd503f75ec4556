// SPDX-License-Identifier: Apache-2.0
// Image header probing (libvips) of uploaded and linked bytes: garbage is refused, never a crash,
// and what is accepted has sane dimensions.
#include "fuzz.hpp"
#include "stowage/media/probe.hpp"

STOWAGE_FUZZ_TARGET(image_probe) {
  auto header = stowage::media::probe_image_buffer(stowage::fuzz::bytes(data, size));
  if (header) {
    STOWAGE_FUZZ_CHECK(header->width > 0 && header->height > 0);
    STOWAGE_FUZZ_CHECK(header->mime.starts_with("image/"));
  }
  return 0;
}
