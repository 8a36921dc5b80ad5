// validate --timeout's durations: the accepted forms and the one-line refusal of the rest.
#include <gtest/gtest.h>

#include "common/base/error.h"
#include "common/cli/duration_option.h"
#include "tests/support/config_error_of.h"

namespace blobferry {
namespace {

TEST(DurationOption, SecondsMinutesHoursAndNothingElse) {
  EXPECT_EQ(parse_duration("90s", "--timeout"), std::chrono::seconds(90));
  EXPECT_EQ(parse_duration("15m", "--timeout"), std::chrono::seconds(900));
  EXPECT_EQ(parse_duration("2h", "--timeout"), std::chrono::seconds(7200));
  EXPECT_EQ(parse_duration("0s", "--timeout"), std::chrono::seconds(0));
  for (const std::string bad : {"", "90", "s", "1.5h", "-3s", "3d", "10 m", "99999999h", "3sm"}) {
    const std::string message = testing::config_error_of([&] { parse_duration(bad, "--timeout"); });
    EXPECT_NE(message.find("--timeout '" + bad + "'"), std::string::npos) << bad;
    EXPECT_NE(message.find("90s, 15m, 2h"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace blobferry
