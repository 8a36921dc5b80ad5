// An environment of fixed variables, so tests of ERB and storage.yml never read the process's.
#pragma once

#include <map>
#include <string>

#include "common/storage/erb_expander.h"

namespace blobferry::testing {

// A lookup that knows exactly `values`; every other name is unset.
EnvLookup fixed_env(std::map<std::string, std::string> values);

}  // namespace blobferry::testing
