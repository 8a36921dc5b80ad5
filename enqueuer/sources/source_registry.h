// Maps a --source name to the MigrationSource that implements it: a new kind
// of source is one folder under enqueuer/sources/ and one line in the table.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "enqueuer/sources/migration_source.h"

namespace blobferry {

class SourceRegistry {
 public:
  // The source of plan.source, holding the plan. Throws Error kConfig naming
  // the value and the registered names when no source has that name.
  static std::unique_ptr<MigrationSource> make(const MigrationPlan& plan);
  // Throws the same error as make() when no source has that name: the
  // commands check the name before anything else.
  static void check_name(const std::string& name);
  // The registered names, in the order --help and errors list them.
  static std::vector<std::string> names();
};

}  // namespace blobferry
