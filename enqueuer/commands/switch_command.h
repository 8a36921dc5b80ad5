// `blobferry switch`: moves verified blobs' service_name to the target, in small batches.
#pragma once

#include <string>

#include "common/cli/command.h"

namespace blobferry {

class SwitchCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  std::string migration_;
  bool dry_run_ = false;
  int batch_size_ = 1000;
};

}  // namespace blobferry
