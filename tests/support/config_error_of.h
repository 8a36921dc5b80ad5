// The message of the config error a call throws, for tests of bad input.
#pragma once

#include <functional>
#include <string>

namespace blobferry::testing {

// Calls f and returns the what() of the blobferry::Error it throws, checking
// (as a non-fatal GoogleTest failure) that the error is a kConfig one; "" when
// f throws nothing.
std::string config_error_of(const std::function<void()>& f);

}  // namespace blobferry::testing
