// The reliable Redis queue of one migration: leases scored by expiry, atomic
// Lua transitions, counters and failure records for status and requeue.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/queue/job_queue.h"
#include "common/queue/redis_client.h"

namespace blobferry {

struct RedisQueueOptions {
  std::chrono::milliseconds lease_duration{30'000};
  int max_recoveries = 3;  // a job whose lease expires with this many recoveries already goes dead ("poison")
  std::chrono::milliseconds first_poll{50};   // sleep after the first empty fetch…
  std::chrono::milliseconds max_poll{200};    // …doubling up to this
  std::chrono::milliseconds recover_every{1000};  // fetch recovers expired leases at most this often
  std::size_t push_chunk = 1000;          // jobs per RPUSH
  std::size_t chunks_per_round_trip = 20;  // RPUSHes per MULTI/EXEC round trip
};

// Every key is "bf:{<migration>}:<name>": the hash tag keeps one migration's
// keys in one Redis Cluster slot, so each Lua script touches one slot only.
// The migration name is data (any bytes, validate_migration_name() is the
// CLI's job); the set of key names is fixed, so purge() deletes exactly them
// and never needs a SCAN pattern another migration's keys could match.
//
// Layout: queue (list of payloads, fetched from the left), processing (hash
// token -> payload), owners (hash token -> worker id), leases (zset token ->
// expiry in ms of Redis TIME, so worker clocks do not matter), retry (zset
// payload -> due time), dead (list of DeadEntry JSON), failed (hash key ->
// FailureRecord JSON), stats (hash of counters: queued_total, copied, skipped,
// bytes_copied, bytes_skipped, failed, failed:<reason>, recovered, requeued),
// workers / workers_seen (heartbeats), cursors (hash), lease_seq (counter),
// paused (a string that exists while the migration is paused).
//
// Beyond JobQueue: fetch() also recovers expired leases, at most once per
// recover_every, so a worker loop need not schedule it.
class RedisQueue : public JobQueue {
 public:
  RedisQueue(std::shared_ptr<RedisClient> client, std::string migration, RedisQueueOptions options = {});

  void push(const std::vector<Job>& jobs) override;
  // Atomic: the jobs, their count and the cursor land in one MULTI/EXEC.
  void push_with_cursor(const std::vector<Job>& jobs, const std::string& cursor,
                        const std::string& value) override;
  std::optional<Lease> fetch(const std::string& worker_id, std::chrono::milliseconds wait) override;
  // One script call per try: LPOP with a count, the leases set with one HSET
  // and one ZADD whatever their number.
  std::vector<Lease> fetch_batch(const std::string& worker_id, std::size_t max,
                                 std::chrono::milliseconds wait) override;
  bool renew(const Lease& lease) override;
  // One script call per 1,000 leases.
  std::vector<bool> renew_all(const std::vector<Lease>& leases) override;
  bool complete(const Lease& lease, const Outcome& outcome) override;
  // One script call per 1,000 completions; counters are added once per call.
  std::vector<bool> complete_batch(const std::vector<Completion>& completions) override;
  bool retry_later(const Lease& lease, const Job& job, std::chrono::milliseconds delay) override;
  bool release(const Lease& lease) override;
  bool bury(const Lease& lease, const std::string& error) override;
  std::size_t recover_expired() override;
  std::size_t promote_due() override;
  void heartbeat(const std::string& worker_id, const std::string& info_json) override;
  std::vector<WorkerInfo> live_workers(std::chrono::milliseconds max_age) override;
  Counts counts() override;
  bool idle() override;
  std::uint64_t queue_length() override;
  std::size_t requeue_failed(const std::optional<std::string>& reason) override;
  void for_each_failure(const std::function<void(const FailureRecord&)>& visit) override;
  void for_each_dead(const std::function<void(const DeadEntry&)>& visit) override;
  bool paused() override;
  void set_paused(bool paused) override;
  void purge() override;
  void set_cursor(const std::string& name, const std::string& value) override;
  std::optional<std::string> get_cursor(const std::string& name) override;

  const std::string& migration() const { return migration_; }
  // The connection, for stores that keep keys beside the queue's (common/budget/).
  const std::shared_ptr<RedisClient>& client() const { return client_; }
  // "bf:{<migration>}:<name>"
  std::string key(std::string_view name) const;

  // Migrations that were pushed to and not purged (a global set, "bf:migrations").
  static std::vector<std::string> migrations(RedisClient& client);

  // Leases held now, per worker id (the operator page's in-flight copies).
  std::map<std::string, std::uint64_t> in_flight_by_worker();

 private:
  void push_transaction(const std::vector<Job>& jobs, std::size_t begin, std::size_t end,
                        const std::pair<std::string, std::string>* cursor);
  std::vector<Lease> try_fetch(const std::string& worker_id, std::size_t max);
  void recover_if_due();
  std::pair<std::size_t, std::size_t> recover_batch();  // (expired leases found, leases ended)
  RedisReplyPtr run(std::string_view script, const RedisArgs& args);
  bool run_flag(std::string_view script, const RedisArgs& args);

  std::shared_ptr<RedisClient> client_;
  std::string migration_;
  RedisQueueOptions options_;
  RedisArgs keys_;  // every key of the migration, in the order the scripts expect
  std::atomic<std::int64_t> last_recovery_ms_{0};
};

}  // namespace blobferry
