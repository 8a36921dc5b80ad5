// Every key of a Redis database and its value as text, for tests that audit what a run left in Redis.
#include "tests/support/redis_dump.h"

#include <vector>

namespace blobferry::testing {
namespace {

std::string reply_text(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      return std::string(reply.str, reply.len) + "\n";
    case REDIS_REPLY_INTEGER:
      return std::to_string(reply.integer) + "\n";
    case REDIS_REPLY_ARRAY: {
      std::string text;
      for (std::size_t i = 0; i < reply.elements; ++i) text += reply_text(*reply.element[i]);
      return text;
    }
    default:
      return "";
  }
}

RedisArgs dump_command(const std::string& type, const std::string& key) {
  if (type == "string") return {"GET", key};
  if (type == "list") return {"LRANGE", key, "0", "-1"};
  if (type == "set") return {"SMEMBERS", key};
  if (type == "zset") return {"ZRANGE", key, "0", "-1", "WITHSCORES"};
  if (type == "hash") return {"HGETALL", key};
  if (type == "stream") return {"XRANGE", key, "-", "+"};
  return {"DUMP", key};  // a type this list does not know: its serialized bytes
}

}  // namespace

std::map<std::string, std::string> dump_redis(RedisClient& client) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    auto page = client.command({"SCAN", cursor, "COUNT", "1000"});
    cursor = std::string(page->element[0]->str, page->element[0]->len);
    const redisReply& batch = *page->element[1];
    for (std::size_t i = 0; i < batch.elements; ++i) keys.emplace_back(batch.element[i]->str, batch.element[i]->len);
  } while (cursor != "0");

  std::map<std::string, std::string> values;
  for (const std::string& key : keys) {
    const auto type = client.command({"TYPE", key});
    values[key] = reply_text(*client.command(dump_command(std::string(type->str, type->len), key)));
  }
  return values;
}

}  // namespace blobferry::testing
