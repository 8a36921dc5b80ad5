// An environment of fixed variables, so tests of ERB and storage.yml never read the process's.
#include "tests/support/fixed_env.h"

#include <optional>
#include <utility>

namespace blobferry::testing {

EnvLookup fixed_env(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace blobferry::testing
