// format_utc and lowercase: the one UTC formatter and the one ASCII lowering.
#include "common/base/utc_time.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/base/encoding.h"

namespace blobferry {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

TEST(FormatUtc, WritesEachFormatInUtcWhateverTheZone) {
  const system_clock::time_point time{seconds{1714564800}};  // 2024-05-01T12:00:00Z
  const char* previous = std::getenv("TZ");
  const std::string saved = previous ? previous : "";
  setenv("TZ", "Asia/Kolkata", 1);
  tzset();
  EXPECT_EQ(format_utc(time, "%Y-%m-%dT%H:%M:%SZ"), "2024-05-01T12:00:00Z");
  EXPECT_EQ(format_utc(time, "%Y%m%dT%H%M%SZ"), "20240501T120000Z");
  EXPECT_EQ(format_utc(time, "%Y-%m-%d %H:%M:%S"), "2024-05-01 12:00:00");
  if (previous) setenv("TZ", saved.c_str(), 1);
  else unsetenv("TZ");
  tzset();
}

TEST(Lowercase, LowersAsciiLettersOnly) {
  EXPECT_EQ(lowercase("Content-Type"), "content-type");
  EXPECT_EQ(lowercase("X-AMZ-Meta-ÄB"), "x-amz-meta-Äb") << "bytes over 0x7f are kept as they are";
  EXPECT_EQ(lowercase(""), "");
}

}  // namespace
}  // namespace blobferry
