// `blobferry requeue`: failed keys of a migration back to its queue.
#pragma once

#include <optional>
#include <string>

#include "common/cli/command.h"

namespace blobferry {

class RequeueCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  std::string migration_;
  std::optional<std::string> reason_;
};

}  // namespace blobferry
