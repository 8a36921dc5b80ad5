// The operator page's files (enqueuer/web/assets/), compiled into the binary by CMake.
#pragma once

#include <optional>
#include <string_view>

namespace blobferry {

// "index.html", "app.js", "app.css" -> the file's bytes; nullopt for any other name.
std::optional<std::string_view> web_asset(std::string_view name);

}  // namespace blobferry
