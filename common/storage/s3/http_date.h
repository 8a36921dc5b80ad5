// Parses HTTP's Date header (RFC 9110 IMF-fixdate), to correct a skewed signing clock.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace blobferry {

// "Wed, 02 Dec 2026 17:38:45 GMT" -> that instant; nullopt for anything else
// (the obsolete RFC 850 and asctime forms included: S3 never sends them).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

}  // namespace blobferry
