// The error a call throws (or its config error's message), for tests of bad input.
#include "tests/support/config_error_of.h"

#include <gtest/gtest.h>


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

Error error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(ErrorKind::kTransient, FailureReason::kUnknown, "");
}

}  // namespace blobferry::testing
