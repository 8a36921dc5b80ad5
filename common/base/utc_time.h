// The one formatter of UTC times (job records, SigV4 dates, Disk metadata, SQL timestamps).
#pragma once

#include <chrono>
#include <string>

namespace blobferry {

// time in UTC, as std::strftime writes it with format ("%Y-%m-%dT%H:%M:%SZ");
// gmtime_r, never the local zone, so output does not depend on TZ.
std::string format_utc(std::chrono::system_clock::time_point time, const char* format);

}  // namespace blobferry
