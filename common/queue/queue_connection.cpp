// Opens a migration's Redis queue for a command, failing fast on bad input.
#include "common/queue/queue_connection.h"

#include "common/base/error.h"

namespace blobferry {

std::unique_ptr<RedisQueue> open_redis_queue(const std::string& redis_url, const std::string& migration,
                                             RedisQueueOptions options) {
  validate_migration_name(migration);
  return std::make_unique<RedisQueue>(connect_redis(redis_url), migration, options);
}

std::shared_ptr<RedisClient> connect_redis(const std::string& redis_url) {
  if (redis_url.empty()) throw config_error("no Redis: pass --redis-url or set REDIS_URL (redis://host:port/db)");
  const RedisUrl url = RedisUrl::parse(redis_url);
  auto client = std::make_shared<RedisClient>(url);
  try {
    client->connect();
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kConfig) throw;
    throw config_error("cannot reach Redis at " + url.address() + ": " + e.what() +
                       "; start it or fix --redis-url / REDIS_URL");
  }
  return client;
}

}  // namespace blobferry
