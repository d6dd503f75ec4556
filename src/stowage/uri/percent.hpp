// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

namespace stowage::uri {

/// RFC 3986 percent-encoding: the unreserved characters (A-Z a-z 0-9 - . _ ~) as they are, every
/// other byte as %XX with upper-case hex; '/' kept too when `keep_slash`. What SigV4 signs, what
/// GCS wants of object names in URLs, and a form value without '+' for spaces.
std::string percent_encode(std::string_view text, bool keep_slash = false);

/// Decodes %XX escapes. A '%' not followed by two hex digits stays as it is, and '+' stays '+'.
std::string percent_decode(std::string_view text);

}  // namespace stowage::uri
