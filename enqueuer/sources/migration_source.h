// What every kind of --source does for the commands (check, enqueue, dry run,
// validate, switch), so a command never asks which kind it has.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "common/queue/job_queue.h"
#include "common/storage/storage.h"
#include "enqueuer/planning/migration_plan.h"
#include "enqueuer/sources/blobs/blob_enqueuer.h"
#include "enqueuer/verification/switcher.h"
#include "enqueuer/verification/validator.h"

namespace blobferry {

// What enqueue and dry runs need besides the plan.
struct SourceContext {
  JobQueue& queue;
  Storage& source;  // the --from service, opened for reading; nothing is ever written to it
  std::string database_url;
  EnqueueOptions options;
  int delimiter_depth = 0;  // --source listing
};

struct PlanTotals {
  std::uint64_t objects = 0;   // copy jobs queued (or, dry run, objects found)
  std::uint64_t bytes = 0;     // bytes known to be behind them
  std::uint64_t listing_jobs = 0;
  std::uint64_t problems = 0;  // manifest lines that did not parse
  bool catch_up = false;
};

// What validate hands a source.
struct SourceValidation {
  Storage& source;
  Storage& target;
  ValidateOptions options;
  Validator::ProblemSink on_problem;
  std::string database_url;
  bool recheck = false;  // forget earlier verifications first
};

// Option groups of the command line that belong to one source or another;
// a source refuses the groups it does not take.
enum PlanOptionGroup : unsigned {
  kListingOptions = 1u << 0,     // --prefix, --delimiter-depth
  kUntrackedVariants = 1u << 1,  // --include-untracked-variants
  kPaperclipOptions = 1u << 2,   // --table, --attachment, --record-type, --path
  kBlobFilters = 1u << 3,        // --key-prefix, --created-*, --id-range, --shard
};

class MigrationSource {
 public:
  // How `migrate --switch` treats the source's rows.
  enum class SwitchPolicy {
    kNone,             // no rows to switch
    kWhenAllVerified,  // switch only once every object is verified
    kVerifiedRows,     // write the rows of what is verified; the rest wait
  };

  explicit MigrationSource(MigrationPlan plan) : plan_(std::move(plan)) {}
  virtual ~MigrationSource() = default;
  MigrationSource(const MigrationSource&) = delete;
  MigrationSource& operator=(const MigrationSource&) = delete;

  const MigrationPlan& plan() const { return plan_; }
  // Stores the plan for a new migration or checks it matches the stored one
  // (save_or_check_plan), and keeps the stored start time.
  void store(JobQueue& queue);

  // plan_options' per-source checks: refuses `given` option groups of other
  // sources and completes the plan's own options. Throws Error kConfig.
  virtual void check_options(unsigned given) = 0;
  // Checks what the database or the files must allow, before the plan is
  // stored: a stored plan fixes what the migration name means, so a corrected
  // command would otherwise be refused as "another plan".
  virtual void check_before_store(SourceContext& context) { (void)context; }

  // Plans the work into context.queue; returns when done or when stop became true.
  virtual PlanTotals enqueue(SourceContext& context, const std::atomic<bool>& stop) = 0;
  // Counts objects and bytes, queues nothing.
  virtual PlanTotals count(SourceContext& context, const std::atomic<bool>& stop) = 0;
  // The dry run's "what": "12 objects", "32 User records with a file in avatar …".
  virtual std::string describe_count(const PlanTotals& totals) const;
  // enqueue's summary line (no newline).
  virtual std::string describe_enqueued(const PlanTotals& totals, bool interrupted) const;

  // Proves what the migration planned is on the target and records it.
  virtual ValidationResult validate(const SourceValidation& validation, const std::atomic<bool>& stop) = 0;

  virtual SwitchPolicy switch_policy() const { return SwitchPolicy::kNone; }
  // Moves (or writes) the rows of verified objects in batches. The default
  // refuses: the source has no rows to switch.
  virtual SwitchResult switch_rows(const std::string& database_url, int batch_size, bool dry_run,
                                   const std::atomic<bool>& stop, const SwitchProgress& progress);
  // switch's summary line (no newline); with_hint adds what to do about the unverified.
  virtual std::string describe_switch(const SwitchResult& result, bool dry_run, bool with_hint) const;

 protected:
  MigrationPlan& mutable_plan() { return plan_; }
  // Throws the one-line error of the first option group in `given` that is
  // not in `accepted`.
  static void accept_only(unsigned given, unsigned accepted);

 private:
  MigrationPlan plan_;
};

}  // namespace blobferry
