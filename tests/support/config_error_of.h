// The error a call throws (or its config error's message), for tests of bad input.
#pragma once

#include <functional>
#include <string>

#include "common/base/error.h"

namespace blobferry::testing {

// Calls f and returns the what() of the blobferry::Error it throws, checking
// (as a non-fatal GoogleTest failure) that the error is a kConfig one; "" when
// f throws nothing.
std::string config_error_of(const std::function<void()>& f);

// The blobferry::Error f throws, so a test can look at its kind, reason and
// message; a non-fatal GoogleTest failure and an empty error when f throws
// nothing.
Error error_of(const std::function<void()>& f);

}  // namespace blobferry::testing
