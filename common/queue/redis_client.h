// One hiredis connection: argv commands, pipelines, cached Lua scripts, and
// reconnection with backoff after Redis goes away.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <hiredis/hiredis.h>

#include "common/base/retry_policy.h"
#include "common/queue/redis_url.h"

namespace blobferry {

struct RedisContextDeleter {
  void operator()(redisContext* context) const { redisFree(context); }
};
struct RedisReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using RedisContextPtr = std::unique_ptr<redisContext, RedisContextDeleter>;
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

// A command as its arguments: keys and values may hold any bytes, so nothing
// is ever formatted into a command string.
using RedisArgs = std::vector<std::string>;

struct RedisClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds command_timeout{10000};
  // The reconnect window: RetryPolicy's full-jitter backoff with these as its
  // base and cap (the first window is at most first_backoff).
  std::chrono::milliseconds first_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
};

// Thread-safe: calls are serialized on the one connection. Every failure is an
// Error naming the command (never its arguments) and the address (never the
// password): kTransient when the connection failed or Redis is loading, busy
// or read-only — the connection is dropped and the next call reconnects after
// a backoff; kConfig when authentication fails; kPermanent for other error
// replies (a wrong type, a script error).
class RedisClient {
 public:
  explicit RedisClient(RedisUrl url, RedisClientOptions options = {});
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Connects now rather than on the first command (to fail fast on bad input).
  void connect();

  RedisReplyPtr command(const RedisArgs& argv);

  // Sends every command in one round trip and returns the replies in order.
  // All replies are read before the first error reply is thrown.
  std::vector<RedisReplyPtr> pipeline(const std::vector<RedisArgs>& commands);

  // EVALSHA of `script` (its SHA-1 computed locally); when Redis answers
  // NOSCRIPT (first use, or after a restart) it is sent once with EVAL, which
  // also loads it.
  RedisReplyPtr eval(std::string_view script, const RedisArgs& keys, const RedisArgs& args);

  const RedisUrl& url() const { return url_; }

 private:
  void await_reconnect_window();
  redisContext& connected();
  void open_connection();
  void authenticate_and_select();
  RedisReplyPtr send(const RedisArgs& argv);
  RedisReplyPtr read_reply(const std::string& call);
  void append(const RedisArgs& argv);
  [[noreturn]] void connection_failed(const std::string& call);
  void schedule_reconnect();
  void throw_if_error(const redisReply& reply, const std::string& call) const;
  const std::string& script_sha(std::string_view script);

  RedisUrl url_;
  RedisClientOptions options_;
  RetryPolicy reconnect_policy_;
  std::mutex mutex_;
  RedisContextPtr context_;
  int consecutive_failures_ = 0;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::unordered_map<std::string, std::string> script_shas_;  // script text -> hex SHA-1
};

// Reply readers; each throws Error(kPermanent, "redis_reply") on an unexpected type.
std::string reply_string(const redisReply& reply);          // string or status
std::optional<std::string> reply_optional_string(const redisReply& reply);  // nil -> nullopt
long long reply_integer(const redisReply& reply);           // integer, or a string holding one
bool reply_is_nil(const redisReply& reply);

}  // namespace blobferry
