// The message of the config error a call throws, for tests of bad input.
#include "tests/support/config_error_of.h"

#include <gtest/gtest.h>

#include "common/base/error.h"

namespace blobferry::testing {

std::string config_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConfig) << e.what();
    return e.what();
  }
  return "";
}

}  // namespace blobferry::testing
