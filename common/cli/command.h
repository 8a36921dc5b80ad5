// A blobferry subcommand: declares its options on a CLI11 subcommand, then runs.
#pragma once

#include "common/cli/global_options.h"

// CLI11 is header-only and costs ~8 s per file that includes it: only the
// .cpp files that declare options include <CLI/CLI.hpp>.
namespace CLI {
class App;
}  // namespace CLI

namespace blobferry {

class Command {
 public:
  virtual ~Command() = default;
  // Adds this command's options to `sub`, the subcommand main created for it.
  virtual void define(CLI::App& sub) = 0;
  // Exit code: 0 done, 1 finished with failures, 2 usage or configuration
  // error (configuration errors are thrown as Error kConfig; main maps them).
  virtual int run(const GlobalOptions& global) = 0;
};

}  // namespace blobferry
