// Parses the budget options' values: request rates and bandwidths as people write them.
#pragma once

#include <string>
#include <string_view>

namespace blobferry {

// Both throw config_error naming `option`, the value and the accepted forms
// when the text does not parse or is not above 0.

// "50", "50/s", "12.5": requests per second.
double parse_request_rate(std::string_view text, const std::string& option);

// Bytes per second from "10MB/s", "500KiB/s", "80Mbit", "1.5GB", "20mbps" or
// plain bytes per second ("1048576"). Decimal units are powers of 1000,
// binary ones (KiB, MiB, GiB, TiB) of 1024; bit units are divided by 8.
// Units are case-insensitive; a trailing "/s" or "ps" is optional.
double parse_bandwidth(std::string_view text, const std::string& option);

}  // namespace blobferry
