// `blobferry services`: what storage.yml describes, whether each service answers,
// and how many blobs the database holds per service_name.
#pragma once

#include "common/cli/command.h"

namespace blobferry {

class ServicesCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  bool skip_check_ = false;
};

}  // namespace blobferry
