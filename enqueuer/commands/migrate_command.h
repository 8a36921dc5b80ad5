// `blobferry migrate`: the whole playbook in one process, no Redis — plan,
// copy, validate and, with --switch, switch.
#pragma once

#include <string>

#include "common/budget/budget_options.h"
#include "common/cli/command.h"
#include "enqueuer/planning/plan_options.h"

namespace blobferry {

class MigrateCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  BudgetOptions budget_options_;
  std::string migration_;
  PlanOptions plan_options_;
  bool dry_run_ = false;
  bool switch_ = false;
  bool deep_ = false;
  int concurrency_ = 16;
  int transfers_ = 64;
  int host_connections_ = 64;
  int retries_ = 5;
  int part_size_mib_ = 8;
  bool progress_ = true;
  int drain_seconds_ = 30;
};

}  // namespace blobferry
