// One hiredis connection: argv commands, pipelines, cached Lua scripts, and
// reconnection with backoff after Redis goes away.
#include "common/queue/redis_client.h"

#include <algorithm>
#include <sys/time.h>
#include <thread>

#include <openssl/evp.h>

#include "common/base/encoding.h"
#include "common/base/error.h"

namespace blobferry {
namespace {

timeval to_timeval(std::chrono::milliseconds duration) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(duration.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((duration.count() % 1000) * 1000);
  return tv;
}

std::string sha1_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
    throw Error(ErrorKind::kPermanent, FailureReason::kRedis, "EVP_Digest(SHA-1) of a Lua script failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

// Server messages are one line already; this keeps a runaway one short.
std::string first_line(std::string_view text) {
  auto line = text.substr(0, std::min(text.find_first_of("\r\n"), std::size_t{300}));
  return std::string(line);
}

bool starts_with_any(std::string_view text, std::initializer_list<std::string_view> prefixes) {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](std::string_view prefix) { return text.starts_with(prefix); });
}

ErrorKind error_reply_kind(std::string_view message) {
  if (starts_with_any(message, {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "READONLY", "OOM",
                                "CLUSTERDOWN", "NOREPLICAS", "MISCONF"})) {
    return ErrorKind::kTransient;
  }
  if (starts_with_any(message, {"NOAUTH", "WRONGPASS", "NOPERM"})) return ErrorKind::kConfig;
  return ErrorKind::kPermanent;
}

[[noreturn]] void unexpected_reply(const redisReply& reply, const char* wanted) {
  throw Error(ErrorKind::kPermanent, FailureReason::kRedisReply,
              std::string("redis reply: expected ") + wanted + ", got type " + std::to_string(reply.type));
}

}  // namespace

namespace {

RetryOptions reconnect_options(const RedisClientOptions& options) {
  RetryOptions retry;
  retry.base = options.first_backoff;
  retry.cap = options.max_backoff;
  return retry;
}

}  // namespace

RedisClient::RedisClient(RedisUrl url, RedisClientOptions options)
    : url_(std::move(url)), options_(options), reconnect_policy_(reconnect_options(options_)) {}

void RedisClient::connect() {
  await_reconnect_window();
  std::lock_guard lock(mutex_);
  connected();
}

RedisReplyPtr RedisClient::command(const RedisArgs& argv) {
  await_reconnect_window();
  std::lock_guard lock(mutex_);
  return send(argv);
}

std::vector<RedisReplyPtr> RedisClient::pipeline(const std::vector<RedisArgs>& commands) {
  await_reconnect_window();
  std::lock_guard lock(mutex_);
  if (commands.empty()) return {};
  const std::string call = "pipeline of " + std::to_string(commands.size()) + " (" +
                           commands.front().at(0) + "…)";
  connected();
  for (const auto& argv : commands) append(argv);
  std::vector<RedisReplyPtr> replies;
  replies.reserve(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) replies.push_back(read_reply(call));
  for (std::size_t i = 0; i < replies.size(); ++i) throw_if_error(*replies[i], commands[i].at(0));
  return replies;
}

RedisReplyPtr RedisClient::eval(std::string_view script, const RedisArgs& keys, const RedisArgs& args) {
  await_reconnect_window();
  std::lock_guard lock(mutex_);
  RedisArgs argv{"EVALSHA", script_sha(script), std::to_string(keys.size())};
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  connected();
  append(argv);
  RedisReplyPtr reply = read_reply("EVALSHA");
  // NOSCRIPT means nothing ran, so sending the source is safe.
  if (reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).starts_with("NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = std::string(script);
    return send(argv);
  }
  throw_if_error(*reply, "EVALSHA");
  return reply;
}

redisContext& RedisClient::connected() {
  if (!context_) open_connection();
  return *context_;
}

// Waits out the reconnect backoff without holding the connection's mutex, so
// the other threads of a worker (its drain, lease renewals, the release of
// unfinished jobs) are not queued one backoff each behind the sleeper.
void RedisClient::await_reconnect_window() {
  std::chrono::steady_clock::time_point until;
  {
    std::lock_guard lock(mutex_);
    if (context_ || consecutive_failures_ == 0) return;
    until = next_attempt_;
  }
  std::this_thread::sleep_until(until);
}

void RedisClient::open_connection() {
  RedisContextPtr context(redisConnectWithTimeout(url_.host.c_str(), url_.port,
                                                  to_timeval(options_.connect_timeout)));
  if (!context || context->err) {
    std::string why = context ? first_line(context->errstr) : "out of memory";
    context_.reset();
    schedule_reconnect();
    throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "redis connect to " + url_.address() + ": " + why);
  }
  redisSetTimeout(context.get(), to_timeval(options_.command_timeout));
  redisEnableKeepAlive(context.get());
  context_ = std::move(context);
  try {
    authenticate_and_select();
  } catch (...) {
    context_.reset();
    throw;
  }
  consecutive_failures_ = 0;
}

void RedisClient::authenticate_and_select() {
  if (!url_.password.empty()) {
    RedisArgs auth{"AUTH"};
    if (!url_.username.empty()) auth.push_back(url_.username);
    auth.push_back(url_.password);
    append(auth);
    auto reply = read_reply("AUTH");
    throw_if_error(*reply, "AUTH");
  }
  if (url_.db != 0) {
    append({"SELECT", std::to_string(url_.db)});
    auto reply = read_reply("SELECT");
    throw_if_error(*reply, "SELECT");
  }
}

RedisReplyPtr RedisClient::send(const RedisArgs& argv) {
  connected();
  append(argv);
  RedisReplyPtr reply = read_reply(argv.at(0));
  throw_if_error(*reply, argv.at(0));
  return reply;
}

void RedisClient::append(const RedisArgs& argv) {
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
  pointers.reserve(argv.size());
  lengths.reserve(argv.size());
  for (const auto& arg : argv) {
    pointers.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  if (redisAppendCommandArgv(context_.get(), static_cast<int>(argv.size()), pointers.data(),
                             lengths.data()) != REDIS_OK) {
    connection_failed(argv.at(0));
  }
}

RedisReplyPtr RedisClient::read_reply(const std::string& call) {
  void* raw = nullptr;
  if (redisGetReply(context_.get(), &raw) != REDIS_OK || raw == nullptr) connection_failed(call);
  return RedisReplyPtr(static_cast<redisReply*>(raw));
}

void RedisClient::connection_failed(const std::string& call) {
  // After an I/O error or a timeout the stream's position is unknown: the
  // connection cannot be reused, so the next call starts a fresh one.
  std::string why = context_ && context_->err ? first_line(context_->errstr) : "connection lost";
  context_.reset();
  schedule_reconnect();
  throw Error(ErrorKind::kTransient, FailureReason::kNetwork, "redis " + call + " at " + url_.address() + ": " + why);
}

void RedisClient::schedule_reconnect() {
  // Growing from first_backoff, with full jitter, keeps a restarting Redis
  // from being hammered by every worker at once, yet a blip costs at most a
  // tenth of a second. A window rather than run(): the failing call returns
  // its error now, and every thread's next call waits for the same window.
  ++consecutive_failures_;
  next_attempt_ = std::chrono::steady_clock::now() + reconnect_policy_.backoff(consecutive_failures_ - 1);
}

void RedisClient::throw_if_error(const redisReply& reply, const std::string& call) const {
  if (reply.type != REDIS_REPLY_ERROR) return;
  std::string_view message(reply.str, reply.len);
  ErrorKind kind = error_reply_kind(message);
  const FailureReason reason = kind == ErrorKind::kTransient ? FailureReason::kNetwork
                               : kind == ErrorKind::kConfig  ? FailureReason::kConfig
                                                             : FailureReason::kRedis;
  throw Error(kind, reason, "redis " + call + " at " + url_.address() + ": " + first_line(message));
}

const std::string& RedisClient::script_sha(std::string_view script) {
  auto it = script_shas_.find(std::string(script));
  if (it == script_shas_.end()) it = script_shas_.emplace(std::string(script), sha1_hex(script)).first;
  return it->second;
}

std::string reply_string(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_STRING && reply.type != REDIS_REPLY_STATUS) unexpected_reply(reply, "a string");
  return std::string(reply.str, reply.len);
}

std::optional<std::string> reply_optional_string(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_NIL) return std::nullopt;
  return reply_string(reply);
}

long long reply_integer(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_INTEGER) return reply.integer;
  if (reply.type == REDIS_REPLY_STRING) {
    try {
      std::size_t used = 0;
      long long value = std::stoll(std::string(reply.str, reply.len), &used);
      if (used == reply.len) return value;
    } catch (const std::exception&) {
    }
  }
  unexpected_reply(reply, "an integer");
}

bool reply_is_nil(const redisReply& reply) { return reply.type == REDIS_REPLY_NIL; }

}  // namespace blobferry
