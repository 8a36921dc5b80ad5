// `blobferry enqueue`: pushes a migration's copy jobs to Redis.
#pragma once

#include <string>

#include "common/budget/budget_options.h"
#include "common/cli/command.h"
#include "enqueuer/planning/plan_options.h"

namespace blobferry {

class EnqueueCommand : public Command {
 public:
  void define(CLI::App& sub) override;
  int run(const GlobalOptions& global) override;

 private:
  BudgetOptions budget_options_;
  std::string migration_;
  PlanOptions plan_options_;
  bool dry_run_ = false;
};

}  // namespace blobferry
