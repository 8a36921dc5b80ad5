// `blobferry pause` / `blobferry resume`: stop or restart every worker taking a migration's jobs.
#pragma once

#include <string>

#include "common/cli/command.h"

namespace blobferry {

// One class for both names: they differ only in the flag they set. The flag
// lives in Redis and the queue's fetch reads it, so it reaches every worker
// at its next fetch without any worker being told.
class PauseCommand : public Command {
 public:
  explicit PauseCommand(bool pause) : pause_(pause) {}

  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  bool pause_;
  std::string migration_;
};

}  // namespace blobferry
