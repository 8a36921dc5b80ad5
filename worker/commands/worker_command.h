// `blobferry worker`: pops and runs the jobs of one migration, or of every active one, until SIGTERM.
#pragma once

#include <string>

#include "common/budget/budget_options.h"
#include "common/cli/command.h"

namespace blobferry {

class WorkerCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  BudgetOptions budget_options_;
  std::string migration_;
  int concurrency_ = 16;
  int transfers_ = 64;
  int host_connections_ = 64;
  bool exit_when_empty_ = false;
  std::string metrics_addr_;
  int lease_seconds_ = 30;
  int drain_seconds_ = 30;
  int retries_ = 5;
  int max_attempts_ = 5;
  int part_size_mib_ = 8;
  int part_job_threshold_mib_ = 1024;
  int part_job_size_mib_ = 64;
};

}  // namespace blobferry
