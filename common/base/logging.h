// Process-wide logging setup: spdlog to stderr, as text or one JSON object a line.
#pragma once

#include <string>

namespace blobferry {

// format is "text" or "json"; level is spdlog's name (trace, debug, info,
// warn, error, critical, off). Throws Error kConfig naming a bad value.
void setup_logging(const std::string& format, const std::string& level);

// Escapes s for use inside a JSON string literal.
std::string json_escape(const std::string& s);

}  // namespace blobferry
