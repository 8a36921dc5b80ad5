// `blobferry cancel`: shows, then with --purge --yes deletes, every Redis key of one migration.
#pragma once

#include <string>

#include "common/cli/command.h"

namespace blobferry {

class CancelCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  std::string migration_;
  bool purge_ = false;
  bool yes_ = false;
};

}  // namespace blobferry
