// The one formatter of UTC times (job records, SigV4 dates, Disk metadata, SQL timestamps).
#include "common/base/utc_time.h"

#include <ctime>

namespace blobferry {

std::string format_utc(std::chrono::system_clock::time_point time, const char* format) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[64];
  const std::size_t length = std::strftime(text, sizeof text, format, &parts);
  return std::string(text, length);
}

}  // namespace blobferry
