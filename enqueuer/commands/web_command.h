// `blobferry web`: the operator page — every migration's progress, failures and actions, from this binary.
#pragma once

#include <string>

#include "common/cli/command.h"

namespace blobferry {

// True for the addresses only this machine can reach: localhost, 127.0.0.0/8
// and ::1. An empty host (":9292", every interface) is not loopback.
bool is_loopback_host(const std::string& host);

class WebCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  std::string listen_ = "127.0.0.1:9292";
  std::string token_;
  double sample_seconds_ = 5.0;
};

}  // namespace blobferry
