// `blobferry services`: what storage.yml describes, whether each service answers,
// and how many blobs the database holds per service_name.
#include <CLI/CLI.hpp>

#include "enqueuer/commands/services_command.h"

#include <cstdio>
#include <optional>
#include <string>

#include "common/base/error.h"
#include "common/db/pg_connection.h"
#include "common/storage/s3/provider_profile.h"
#include "common/storage/storage_config.h"
#include "common/storage/storage_factory.h"
#include "enqueuer/sources/blobs/blob_table.h"
#include "common/cli/human_units.h"

namespace blobferry {
namespace {

std::string location_of(const ServiceConfig& service) {
  switch (service.kind) {
    case ServiceKind::kS3:
      return "bucket " + service.bucket + " at " +
             (service.endpoint.empty() ? "AWS " + service.region : service.endpoint);
    case ServiceKind::kDisk:
      return "root " + service.root + (service.layout == DiskLayout::kPlain ? " (plain paths)" : "");
    case ServiceKind::kMirror: {
      std::string mirrors;
      for (const auto& m : service.mirrors) mirrors += (mirrors.empty() ? "" : ", ") + m;
      return "primary " + service.primary + ", mirrors " + mirrors;
    }
    case ServiceKind::kUnsupported:
      return "-";
  }
  return "-";
}

std::string credentials_of(const ServiceConfig& service) {
  if (service.kind != ServiceKind::kS3) return "-";
  std::string out = "key " + StorageConfig::masked_key_id(service.access_key_id) + " secret " +
                    StorageConfig::masked(service.secret_access_key);
  if (!service.session_token.empty()) out += " token ****";
  return out;
}

// Returns "ok" or what is wrong; never throws, so one bad service cannot hide the others.
std::string check_service(const StorageConfig& config, const std::string& name, bool* reachable) {
  try {
    const ServiceConfig& service = config.service(name);
    if (service.kind == ServiceKind::kMirror) {
      return "mirror: copy from its primary (" + service.primary + ") or to a mirror, not the Mirror itself";
    }
    auto storage = open_storage(service);
    try {
      storage->check(Storage::Access::kWrite);
      return "ok";
    } catch (const Error& write_error) {
      // A read-only mount is a fine source; say so rather than fail it.
      storage->check(Storage::Access::kRead);
      return std::string("ok for reading only (usable as a source, not a target): ") + write_error.what();
    }
  } catch (const Error& e) {
    *reachable = false;
    return std::string("FAILED: ") + e.what();
  }
}

void print_blob_counts(const std::string& database_url) {
  PgConnection db(database_url);  // a database that is down is a configuration error (exit 2)
  std::optional<BlobTable> table;
  try {
    table.emplace(db);
  } catch (const Error& e) {
    // The services are still worth listing for an app whose tables are not there yet.
    std::printf("\nno blob counts: %s\n", e.what());
    return;
  }
  std::printf("\nblobs in active_storage_blobs (%s):\n", db.describe().c_str());
  for (const auto& row : table->count_by_service()) {
    std::printf("  %-20s %12lld blobs  %10s\n", row.service_name.empty() ? "(no service_name)" : row.service_name.c_str(),
                row.blobs, human_bytes(row.bytes).c_str());
  }
}

// Which provider row each S3 service follows, so a wrong inference (an R2
// behind a custom domain) is seen before it matters.
void print_provider_profiles(const StorageConfig& config) {
  bool header = false;
  for (const std::string& name : config.names()) {
    try {
      const ServiceConfig& service = config.service(name);
      if (service.kind != ServiceKind::kS3) continue;
      const ProviderProfile& profile = profile_for(service.name, service.provider, service.endpoint);
      if (!header) std::printf("\nprovider profiles (set `provider:` to override):\n");
      header = true;
      std::printf("  %-16s %s%s\n", name.c_str(), describe_profile(profile).c_str(),
                  service.provider.empty() ? " [inferred]" : "");
    } catch (const Error&) {
      // The table above already reports a broken entry.
    }
  }
}

}  // namespace

void ServicesCommand::define(CLI::App& sub) {
  sub.add_flag("--no-check", skip_check_, "only list the services, do not contact them");
}

int ServicesCommand::run(const GlobalOptions& global) {
  const StorageConfig config = StorageConfig::load(global.storage_config);
  std::printf("services in %s:\n", config.origin().c_str());
  std::printf("  %-16s %-12s %-50s %-34s %s\n", "NAME", "SERVICE", "LOCATION", "CREDENTIALS", "CHECK");
  bool all_reachable = true;
  for (const std::string& name : config.names()) {
    std::string type = "?", location = "-", credentials = "-";
    try {
      const ServiceConfig& service = config.service(name);
      type = service.service_type;
      location = location_of(service);
      credentials = credentials_of(service);
    } catch (const Error&) {
      // check_service reports what is wrong with the entry.
    }
    const std::string check = skip_check_ ? "not checked" : check_service(config, name, &all_reachable);
    std::printf("  %-16s %-12s %-50s %-34s %s\n", name.c_str(), type.c_str(), location.c_str(),
                credentials.c_str(), check.c_str());
  }
  print_provider_profiles(config);
  if (!global.database_url.empty()) print_blob_counts(global.database_url);
  return all_reachable ? 0 : 1;
}

}  // namespace blobferry
