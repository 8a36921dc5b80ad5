// --max-requests-per-second and --max-bandwidth, for the commands that take a budget.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "common/budget/budget_limits.h"

namespace blobferry {

class BudgetOptions {
 public:
  // `scope` ends each option's help ("for this migration", "for this worker's copies").
  void define(CLI::App& sub, const std::string& scope);
  // Throws config_error (exit 2) for a value that does not parse or is not above 0.
  BudgetLimits limits() const;
  bool any() const { return !requests_.empty() || !bandwidth_.empty(); }

 private:
  std::string requests_;
  std::string bandwidth_;
};

}  // namespace blobferry
