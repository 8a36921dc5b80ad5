// Maps a --source name to the MigrationSource that implements it: a new kind
// of source is one folder under enqueuer/sources/ and one line in the table.
#include "enqueuer/sources/source_registry.h"

#include "common/base/error.h"
#include "enqueuer/sources/blobs/blobs_source.h"
#include "enqueuer/sources/listing/listing_source.h"
#include "enqueuer/sources/manifest/manifest_source.h"
#include "enqueuer/sources/paperclip/paperclip_source.h"

namespace blobferry {
namespace {

struct Registration {
  const char* name;
  std::unique_ptr<MigrationSource> (*make)(const MigrationPlan& plan);
};

template <typename Source>
std::unique_ptr<MigrationSource> make_source(const MigrationPlan& plan) {
  return std::make_unique<Source>(plan);
}

// An explicit table rather than self-registering statics: the enqueuer is a
// static library, whose unreferenced objects the linker would drop.
constexpr Registration kSources[] = {
    {"blobs", make_source<BlobsSource>},
    {"listing", make_source<ListingSource>},
    {"manifest", make_source<ManifestSource>},
    {"paperclip", make_source<PaperclipSource>},
};

const Registration& find(const std::string& name) {
  for (const Registration& r : kSources) {
    if (name == r.name) return r;
  }
  std::string choices;
  const std::vector<std::string> all = SourceRegistry::names();
  for (std::size_t i = 0; i < all.size(); ++i) {
    choices += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + all[i];
  }
  throw config_error("unknown --source '" + name + "': use " + choices);
}

}  // namespace

std::unique_ptr<MigrationSource> SourceRegistry::make(const MigrationPlan& plan) {
  return find(plan.source).make(plan);
}

void SourceRegistry::check_name(const std::string& name) { find(name); }

std::vector<std::string> SourceRegistry::names() {
  std::vector<std::string> out;
  for (const Registration& r : kSources) out.emplace_back(r.name);
  return out;
}

}  // namespace blobferry
