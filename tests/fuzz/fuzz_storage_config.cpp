// libFuzzer target: storage.yml text through the ERB expander and the YAML loader.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/base/error.h"
#include "common/storage/storage_config.h"

namespace {

// A fixed environment, so ENV lookups in the input are exercised both ways
// (set and unset) and the real environment never matters.
std::optional<std::string> fixed_environment(const std::string& name) {
  static const std::map<std::string, std::string> kEnv = {
      {"AWS_ACCESS_KEY_ID", "AKIAFUZZ"}, {"AWS_SECRET_ACCESS_KEY", "fuzz-secret"},
      {"BUCKET", "bucket"},             {"RAILS_ENV", "production"},
      {"EMPTY", ""},
  };
  auto found = kEnv.find(name);
  if (found == kEnv.end()) return std::nullopt;
  return found->second;
}

}  // namespace

// Any blobferry::Error is a clean rejection; anything else escapes and fails the run.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = blobferry::StorageConfig::parse(text, "fuzz.yml", fixed_environment, "/rails");
    for (const std::string& name : config.names()) {
      try {
        const auto& service = config.service(name);
        (void)blobferry::StorageConfig::masked(service.secret_access_key);
        (void)blobferry::StorageConfig::masked_key_id(service.access_key_id);
      } catch (const blobferry::Error&) {
      }
    }
  } catch (const blobferry::Error&) {
  }
  return 0;
}
