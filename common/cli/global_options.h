// Options every subcommand accepts, before or after its name.
#pragma once

#include <string>

namespace blobferry {

struct GlobalOptions {
  std::string storage_config = "config/storage.yml";  // BLOBFERRY_STORAGE_CONFIG
  std::string database_url;                           // DATABASE_URL
  std::string redis_url;                              // REDIS_URL
  std::string log_format = "text";
  std::string log_level = "info";
};

}  // namespace blobferry
