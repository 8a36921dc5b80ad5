// MigrationSet: which migrations a worker of every migration serves, and the round robin between them.
#include "worker/loop/migration_set.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "common/queue/memory_queue.h"

namespace blobferry {
namespace {

Job copy_job(const std::string& migration) {
  Job job;
  job.migration = migration;
  job.source = "a";
  job.target = "b";
  JobObject object;
  object.key = "k";
  object.size = 1;
  job.objects.push_back(object);
  return job;
}

// Migrations as a Redis would list them, each a MemoryQueue.
struct Fleet {
  std::vector<std::string> names;
  std::map<std::string, std::shared_ptr<MemoryQueue>> queues;
  int opened = 0;

  MigrationSet set() {
    return MigrationSet([this] { return names; },
                        [this](const std::string& name) -> std::shared_ptr<JobQueue> {
                          ++opened;
                          return queues.at(name);
                        });
  }
  void add(const std::string& name, int jobs) {
    names.push_back(name);
    queues[name] = std::make_shared<MemoryQueue>(name);
    for (int i = 0; i < jobs; ++i) queues[name]->push({copy_job(name)});
  }
};

std::vector<std::string> names_of(const std::vector<ServedQueue>& served) {
  std::vector<std::string> names;
  for (const auto& s : served) names.push_back(s.migration);
  return names;
}

TEST(MigrationSet, ServesOnlyMigrationsWithWorkAndOpensEachOnce) {
  Fleet fleet;
  fleet.add("a", 2);
  fleet.add("finished", 0);
  fleet.add("b", 1);
  MigrationSet set = fleet.set();
  EXPECT_TRUE(set.rotation().empty());  // nothing known before the first refresh
  set.refresh();
  std::vector<std::string> served = names_of(set.rotation());
  EXPECT_EQ(std::set<std::string>(served.begin(), served.end()), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(set.all().size(), 3u);
  set.refresh();
  EXPECT_EQ(fleet.opened, 3);
}

TEST(MigrationSet, PicksUpMigrationsCreatedLaterAndOnesThatGetWorkAgain) {
  Fleet fleet;
  fleet.add("a", 0);
  MigrationSet set = fleet.set();
  set.refresh();
  EXPECT_TRUE(set.rotation().empty());
  fleet.add("late", 1);
  fleet.queues["a"]->push({copy_job("a")});
  set.refresh();
  EXPECT_EQ(set.rotation().size(), 2u);
}

TEST(MigrationSet, RotationStartsAtTheNextMigrationEachCall) {
  Fleet fleet;
  fleet.add("a", 1);
  fleet.add("b", 1);
  fleet.add("c", 1);
  MigrationSet set = fleet.set();
  set.refresh();
  std::map<std::string, int> first;
  for (int i = 0; i < 9; ++i) ++first[set.rotation().front().migration];
  EXPECT_EQ(first, (std::map<std::string, int>{{"a", 3}, {"b", 3}, {"c", 3}}));
}

TEST(MigrationSet, IgnoresANameThatIsNotAValidMigration) {
  Fleet fleet;
  fleet.add("ok", 1);
  fleet.names.push_back(std::string("bad\nname"));
  MigrationSet set = fleet.set();
  set.refresh();
  EXPECT_EQ(names_of(set.rotation()), std::vector<std::string>{"ok"});
}

TEST(MigrationSet, AFixedQueueIsAlwaysServedEvenWhenIdle) {
  MemoryQueue queue("one");
  MigrationSet set(queue, "one");
  EXPECT_TRUE(set.fixed());
  set.refresh();
  ASSERT_EQ(set.rotation().size(), 1u);
  EXPECT_EQ(set.rotation().front().queue.get(), &queue);
}

}  // namespace
}  // namespace blobferry
