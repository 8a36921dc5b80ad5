// Every key of a Redis database and its value as text, for tests that audit what a run left in Redis.
#pragma once

#include <map>
#include <string>

#include "common/queue/redis_client.h"

namespace blobferry::testing {

// key -> its value flattened to text (strings as is; lists, sets, sorted sets
// with scores, hashes as field and value, streams as ids and fields, one item
// per line), found with SCAN so the whole database is seen without KEYS.
std::map<std::string, std::string> dump_redis(RedisClient& client);

}  // namespace blobferry::testing
