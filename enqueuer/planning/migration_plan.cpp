// What a migration moves, stored with its queue so every later command
// (validate, switch, status, a resumed enqueue) agrees on it.
#include "enqueuer/planning/migration_plan.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "common/base/error.h"

namespace blobferry {
namespace {

constexpr const char* kPlanCursor = "plan";

nlohmann::json filter_to_json(const BlobFilter& f) {
  nlohmann::json j = nlohmann::json::object();
  if (!f.key_prefix.empty()) j["key_prefix"] = f.key_prefix;
  if (!f.created_before.empty()) j["created_before"] = f.created_before;
  if (!f.created_after.empty()) j["created_after"] = f.created_after;
  if (f.id_range) j["id_range"] = {f.id_range->first, f.id_range->second};
  if (f.shard_count > 1) j["shard"] = {f.shard_index, f.shard_count};
  return j;
}

BlobFilter filter_from_json(const nlohmann::json& j, const std::string& from) {
  BlobFilter f;
  f.service_name = from;
  f.key_prefix = j.value("key_prefix", "");
  f.created_before = j.value("created_before", "");
  f.created_after = j.value("created_after", "");
  if (j.contains("id_range")) f.id_range = std::make_pair(j["id_range"][0].get<long long>(), j["id_range"][1].get<long long>());
  if (j.contains("shard")) {
    f.shard_index = j["shard"][0].get<int>();
    f.shard_count = j["shard"][1].get<int>();
  }
  return f;
}

nlohmann::json paperclip_to_json(const PaperclipSpec& p) {
  return {{"table", p.table}, {"attachment", p.attachment}, {"record_type", p.record_type}, {"path", p.path},
          {"style", p.style}};
}

PaperclipSpec paperclip_from_json(const nlohmann::json& j) {
  PaperclipSpec p;
  p.table = j.value("table", "");
  p.attachment = j.value("attachment", "");
  p.record_type = j.value("record_type", "");
  p.path = j.value("path", "");
  p.style = j.value("style", "original");
  return p;
}

}  // namespace

Job MigrationPlan::new_job(JobType type) const {
  Job job;
  job.type = type;
  job.migration = migration;
  job.source = from;
  job.target = to;
  return job;
}

std::string MigrationPlan::to_json() const {
  nlohmann::json j = {{"migration", migration}, {"source", source}, {"from", from}, {"to", to},
                      {"started_at", started_at}};
  // The shard is the enqueuer's own slice, not the migration's; several
  // enqueuers of one migration each scan their shard.
  BlobFilter shared = filter;
  shared.shard_index = 0;
  shared.shard_count = 1;
  // Each source's fields are written when set: the sources refuse each
  // other's options, so only the plan's own source sets any.
  if (nlohmann::json f = filter_to_json(shared); !f.empty()) j["filter"] = std::move(f);
  if (include_untracked_variants) j["untracked_variants"] = true;
  if (!prefix.empty()) j["prefix"] = prefix;
  if (!manifest.empty()) j["manifest"] = manifest;
  if (!paperclip.table.empty()) j["paperclip"] = paperclip_to_json(paperclip);
  return j.dump();
}

MigrationPlan MigrationPlan::from_json(const std::string& json) {
  try {
    const nlohmann::json j = nlohmann::json::parse(json);
    MigrationPlan plan;
    plan.migration = j.at("migration").get<std::string>();
    plan.source = j.at("source").get<std::string>();  // checked by SourceRegistry::make
    plan.from = j.at("from").get<std::string>();
    plan.to = j.at("to").get<std::string>();
    plan.started_at = j.value("started_at", std::int64_t{0});
    plan.filter = filter_from_json(j.value("filter", nlohmann::json::object()), plan.from);
    plan.prefix = j.value("prefix", "");
    plan.manifest = j.value("manifest", "");
    plan.include_untracked_variants = j.value("untracked_variants", false);
    if (j.contains("paperclip")) plan.paperclip = paperclip_from_json(j["paperclip"]);
    return plan;
  } catch (const nlohmann::json::exception& e) {
    throw config_error(std::string("the stored plan of this migration is unreadable (") + e.what() +
                       "): cancel it with `blobferry cancel --purge --yes` and enqueue again");
  }
}

std::optional<MigrationPlan> load_plan(JobQueue& queue) {
  auto stored = queue.get_cursor(kPlanCursor);
  if (!stored) return std::nullopt;
  return MigrationPlan::from_json(*stored);
}

MigrationPlan save_or_check_plan(JobQueue& queue, const MigrationPlan& plan) {
  if (auto existing = load_plan(queue)) {
    MigrationPlan wanted = plan;
    wanted.started_at = existing->started_at;
    wanted.manifest = existing->manifest;  // a later run may read another manifest file
    if (existing->to_json() != wanted.to_json()) {
      throw config_error("migration '" + plan.migration + "' already exists with another plan (" +
                         existing->source + " " + existing->from + " -> " + existing->to +
                         "): use another --migration name, or the same options as before");
    }
    MigrationPlan resumed = plan;
    resumed.started_at = existing->started_at;
    return resumed;
  }
  MigrationPlan fresh = plan;
  fresh.started_at = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  queue.set_cursor(kPlanCursor, fresh.to_json());
  return fresh;
}

}  // namespace blobferry
