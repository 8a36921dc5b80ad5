// --source manifest: the keys of a CSV or JSONL file (--manifest).
#include "enqueuer/sources/manifest/manifest_source.h"

#include <fstream>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/base/error.h"
#include "enqueuer/sources/manifest/manifest_reader.h"

namespace blobferry {
namespace {

constexpr const char* kManifestCursor = "manifest:line";

}  // namespace

void ManifestSource::check_options(unsigned given) {
  if (plan().manifest.empty()) throw config_error("--source manifest needs --manifest FILE (CSV or JSONL of keys)");
  accept_only(given, 0);
}

PlanTotals ManifestSource::read(SourceContext& context, const std::atomic<bool>& stop, bool dry) {
  const MigrationPlan& p = plan();
  std::ifstream in(p.manifest, std::ios::binary);
  if (!in) throw config_error("cannot read manifest " + p.manifest + ": check the path given to --manifest");
  ManifestReader reader(in, p.manifest);
  PlanTotals totals;
  JobQueue& queue = context.queue;
  if (!dry) {
    std::size_t resume_line = 0;
    if (auto stored = queue.get_cursor(kManifestCursor)) resume_line = std::stoull(*stored);
    reader.skip_to_line(resume_line);
  }
  std::vector<Job> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    while (!stop.load() && queue.queue_length() > context.options.max_queued) {
      std::this_thread::sleep_for(context.options.backpressure_poll);
    }
    queue.push_with_cursor(batch, kManifestCursor, std::to_string(reader.line()));
    batch.clear();
  };
  while (!stop.load()) {
    auto entry = reader.next();
    if (!entry) break;
    ++totals.objects;
    if (entry->size) totals.bytes += *entry->size;
    if (dry) continue;
    Job job = p.new_job();
    JobObject object;
    object.key = entry->key;
    object.size = entry->size;
    object.checksum = entry->checksum;
    object.content_type = entry->content_type;
    job.objects.push_back(std::move(object));
    batch.push_back(std::move(job));
    if (batch.size() >= static_cast<std::size_t>(context.options.page_size)) flush();
  }
  if (!dry) flush();
  totals.problems = reader.problem_count();
  for (const ManifestProblem& problem : reader.problems()) {
    spdlog::warn("{} line {}: {} (skipped)", p.manifest, problem.line, problem.message);
  }
  return totals;
}

ValidationResult ManifestSource::validate(const SourceValidation& v, const std::atomic<bool>& stop) {
  return Validator(plan(), v.source, v.target, v.options, v.on_problem).validate_manifest(stop);
}

}  // namespace blobferry
