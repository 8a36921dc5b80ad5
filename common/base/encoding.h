// Text conversions: hex and base64 for checksums (ETags are hex MD5,
// ActiveStorage and Content-MD5 use base64 MD5), ASCII case, printable keys.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace blobferry {

std::string hex_encode(std::string_view bytes);  // lowercase
std::optional<std::string> hex_decode(std::string_view hex);  // nullopt on odd length or a non-hex digit
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);  // nullopt on malformed input

// ASCII letters lowered, other bytes kept: header names, schemes and service
// types compare case-insensitively whatever the process's locale.
std::string lowercase(std::string_view text);

// text safe inside HTML or XML text and attribute values: & < > " ' as entities.
std::string markup_escape(std::string_view text);

// text with control bytes shown as \xNN, so a key or name in a message keeps it one line.
std::string printable(std::string_view text);

// "9e107d9d372bb6826bd81d3542a419d6" -> "nhB9nTcrtoJr2B01QqQZ1g==", nullopt unless 32 hex digits.
std::optional<std::string> hex_md5_to_base64(std::string_view hex);
// The reverse; nullopt unless it decodes to 16 bytes.
std::optional<std::string> base64_md5_to_hex(std::string_view base64);

}  // namespace blobferry
