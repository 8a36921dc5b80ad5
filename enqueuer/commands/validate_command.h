// `blobferry validate`: proves presence, size and checksum of every object on the target.
#pragma once

#include <string>

#include "common/cli/command.h"

namespace blobferry {

class ValidateCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  std::string migration_;
  bool wait_ = false;
  bool deep_ = false;
  bool requeue_ = false;
  bool recheck_ = false;
  int interval_seconds_ = 10;
  std::string timeout_;  // --wait's limit, e.g. 15m; empty: none
  int show_ = 20;
};

}  // namespace blobferry
