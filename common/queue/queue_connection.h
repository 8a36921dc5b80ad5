// Opens a migration's Redis queue for a command, failing fast on bad input.
#pragma once

#include <memory>
#include <string>

#include "common/queue/redis_queue.h"

namespace blobferry {

// Validates the migration name, parses the URL and connects now, so a Redis
// that is down is a one-line configuration error (exit 2) naming the address
// and the fix, never a hang or a password.
std::unique_ptr<RedisQueue> open_redis_queue(const std::string& redis_url, const std::string& migration,
                                             RedisQueueOptions options = {});

// The connection alone, failing fast as above: a worker serving every
// migration lists them with it and shares it among their queues.
std::shared_ptr<RedisClient> connect_redis(const std::string& redis_url);

}  // namespace blobferry
