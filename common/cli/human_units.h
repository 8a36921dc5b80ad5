// Byte counts, rates and durations as people read them.
#pragma once

#include <cstdint>
#include <string>

namespace blobferry {

std::string human_bytes(std::uint64_t bytes);      // "1.5 MiB"
std::string human_duration(double seconds);        // "1h02m", "3m05s", "12s"

}  // namespace blobferry
