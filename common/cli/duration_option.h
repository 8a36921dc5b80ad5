// Parses a command-line duration ("90s", "15m", "2h") for options like
// validate's --timeout.
#pragma once

#include <chrono>
#include <string>

namespace blobferry {

// A whole number of seconds, minutes or hours. Throws Error kConfig naming
// the option, the value and the accepted forms.
std::chrono::seconds parse_duration(const std::string& text, const std::string& option);

}  // namespace blobferry
