// One validation pass with its printed summary, shared by validate and migrate.
#include "enqueuer/verification/validation_run.h"

#include <chrono>
#include <cstdio>

#include "enqueuer/sources/migration_source.h"

namespace blobferry {

ValidationResult run_validation(MigrationSource& migration_source, Storage& source, Storage& target, JobQueue& queue,
                                const ValidationRunOptions& options, const std::atomic<bool>& stop) {
  const MigrationPlan& plan = migration_source.plan();
  std::vector<Job> requeue;
  int shown = 0;
  auto on_problem = [&](const ValidationProblem& problem, const JobObject& object) {
    if (shown++ < options.show && !options.quiet) {
      std::printf("  %s%s%s: %s\n", problem.key.c_str(), problem.blob_id.empty() ? "" : " (blob ",
                  problem.blob_id.empty() ? "" : (problem.blob_id + ")").c_str(), problem.what.c_str());
    }
    if (!options.requeue) return;
    Job job = plan.new_job();
    job.objects.push_back(object);
    requeue.push_back(std::move(job));
    if (requeue.size() >= 1000) {
      queue.push(requeue);
      requeue.clear();
    }
  };
  ValidateOptions validate_options;
  validate_options.deep = options.deep;
  const auto started = std::chrono::steady_clock::now();
  const ValidationResult result = migration_source.validate(
      SourceValidation{source, target, validate_options, on_problem, options.database_url, options.recheck}, stop);
  if (!requeue.empty()) queue.push(requeue);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!options.quiet) {
    std::printf("validated %llu objects of %s on %s in %.1f s: %llu verified, %llu missing, %llu differ, %llu unverifiable"
                " (%llu list, %llu head, %llu get requests)%s\n",
                static_cast<unsigned long long>(result.checked), plan.migration.c_str(), plan.to.c_str(), seconds,
                static_cast<unsigned long long>(result.verified), static_cast<unsigned long long>(result.missing),
                static_cast<unsigned long long>(result.mismatched),
                static_cast<unsigned long long>(result.unverifiable),
                static_cast<unsigned long long>(result.list_requests),
                static_cast<unsigned long long>(result.head_requests),
                static_cast<unsigned long long>(result.get_requests),
                options.requeue && !result.all_verified() ? "; copy jobs queued for the rest" : "");
    std::fflush(stdout);
  }
  return result;
}

}  // namespace blobferry
