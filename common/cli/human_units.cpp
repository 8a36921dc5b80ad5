// Byte counts, rates and durations as people read them.
#include "common/cli/human_units.h"

#include <cstdio>

namespace blobferry {

std::string human_bytes(std::uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 5) {
    value /= 1024.0;
    ++unit;
  }
  char buf[32];
  if (unit == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else std::snprintf(buf, sizeof buf, "%.1f %s", value, units[unit]);
  return buf;
}

std::string human_duration(double seconds) {
  if (seconds < 0) seconds = 0;
  const long long total = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (total >= 3600) std::snprintf(buf, sizeof buf, "%lldh%02lldm", total / 3600, (total % 3600) / 60);
  else if (total >= 60) std::snprintf(buf, sizeof buf, "%lldm%02llds", total / 60, total % 60);
  else std::snprintf(buf, sizeof buf, "%llds", total);
  return buf;
}

}  // namespace blobferry
