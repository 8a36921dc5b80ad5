// Percent-encoding of keys, paths and query parameters as SigV4 and S3 define it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace blobferry {

// RFC 3986: A-Z a-z 0-9 - . _ ~ stay, every other byte becomes %XX
// (uppercase hex), '/' included. Used for query names and values.
std::string uri_encode(std::string_view text);

// The same, but '/' stays so that "a b/c+d" becomes "a%20b/c%2Bd". S3 keys are
// encoded once this way, in the URL and in the canonical request alike.
std::string uri_encode_path(std::string_view path);

// Decodes %XX escapes; with plus_is_space also '+' to ' ' (as S3 writes keys
// in listings with encoding-type=url). nullopt on a truncated or non-hex escape.
std::optional<std::string> uri_decode(std::string_view text, bool plus_is_space = false);

// RFC 3986 remove_dot_segments plus collapsing of empty segments ("//"), as the
// generic SigV4 rules normalise a path. S3 must never do this: its keys may
// contain "//" and "." segments.
std::string normalize_uri_path(std::string_view path);

}  // namespace blobferry
