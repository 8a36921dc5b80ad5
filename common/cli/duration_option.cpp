// Parses a command-line duration ("90s", "15m", "2h") for options like
// validate's --timeout.
#include "common/cli/duration_option.h"

#include <cstdint>

#include "common/base/error.h"

namespace blobferry {

std::chrono::seconds parse_duration(const std::string& text, const std::string& option) {
  auto refuse = [&] {
    return config_error(option + " '" + text + "' is not a duration: use a whole number with s, m or h (e.g. 90s, 15m, 2h)");
  };
  // At most 7 digits: up to 9,999,999 hours still fits the seconds type, and
  // nothing longer is meant.
  if (text.size() < 2 || text.size() > 8) throw refuse();
  std::int64_t value = 0;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') throw refuse();
    value = value * 10 + (text[i] - '0');
  }
  switch (text.back()) {
    case 's': return std::chrono::seconds(value);
    case 'm': return std::chrono::minutes(value);
    case 'h': return std::chrono::hours(value);
    default: throw refuse();
  }
}

}  // namespace blobferry
