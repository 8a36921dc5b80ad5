// The reliable Redis queue of one migration: leases scored by expiry, atomic
// Lua transitions, counters and failure records for status and requeue.
#include "common/queue/redis_queue.h"

#include <algorithm>
#include <cassert>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/base/encoding.h"
#include "common/base/error.h"

namespace blobferry {
namespace {

using Json = nlohmann::json;

// Key names, in the order every script receives them as KEYS.
const std::vector<std::string>& key_names() {
  static const std::vector<std::string> names{"queue",     "processing", "owners", "leases",
                                              "lease_seq", "retry",      "dead",   "failed",
                                              "stats",     "workers",    "workers_seen", "cursors",
                                              "paused"};
  return names;
}

constexpr const char* kMigrationsKey = "bf:migrations";
constexpr std::size_t kPromoteBatch = 100;
constexpr std::size_t kRecoverBatch = 100;
constexpr int kMaxRecoverBatches = 10;
constexpr std::size_t kScanCount = 500;
// Jobs, leases or completions per script call: Lua's unpack() takes a few
// thousand values at most, and a short script keeps Redis responsive.
constexpr std::size_t kScriptBatch = 1000;
constexpr std::chrono::hours kForgetWorkersAfter{1};

// Shared by every script: key names, Redis's clock, and the failure-record
// bookkeeping that complete, recovery and requeue must do identically.
constexpr std::string_view kPrelude = R"lua(
local Q, P, O, L, SEQ, R, D, F, S, W, WS, C, PZ =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11], KEYS[12],
  KEYS[13]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(x) return string.format('%.0f', x) end
local function decr(field)
  if redis.call('HINCRBY', S, field, -1) <= 0 then redis.call('HDEL', S, field) end
end
local function drop_failure(key)
  local old = redis.call('HGET', F, key)
  if not old then return end
  redis.call('HDEL', F, key)
  local ok, record = pcall(cjson.decode, old)
  local reason = 'unknown'
  if ok and type(record) == 'table' and type(record.reason) == 'string' then reason = record.reason end
  decr('failed')
  decr('failed:' .. reason)
end
local function record_failure(key, reason, record)
  drop_failure(key)
  redis.call('HSET', F, key, record)
  redis.call('HINCRBY', S, 'failed', 1)
  redis.call('HINCRBY', S, 'failed:' .. reason, 1)
end
local function record_failures(first)
  for i = first, #ARGV, 3 do record_failure(ARGV[i], ARGV[i + 1], ARGV[i + 2]) end
end
local function end_lease(token)
  local payload = redis.call('HGET', P, token)
  if not payload then return nil end
  redis.call('HDEL', P, token)
  redis.call('HDEL', O, token)
  redis.call('ZREM', L, token)
  return payload
end
local function promote(now, limit)
  local due = redis.call('ZRANGEBYSCORE', R, '-inf', ms(now), 'LIMIT', 0, limit)
  for _, payload in ipairs(due) do
    redis.call('ZREM', R, payload)
    redis.call('RPUSH', Q, payload)
  end
  return #due
end
)lua";

// ARGV: worker id, lease ms, token nonce, promote limit, max jobs. Returns
// {token, payload, …} or nil. One LPOP, HSET, HSET and ZADD whatever the
// number of jobs, so a batch costs Redis about what one job did.
// Paused: nil, read in the same script as the LPOP, so no job starts after
// the SET of `pause` returned.
constexpr std::string_view kFetch = R"lua(
if redis.call('EXISTS', PZ) == 1 then return false end
local now = now_ms()
promote(now, tonumber(ARGV[4]))
local payloads = redis.call('LPOP', Q, tonumber(ARGV[5]))
if not payloads then return false end
local last = redis.call('INCRBY', SEQ, #payloads)
local expiry = ms(now + tonumber(ARGV[2]))
local processing, owners, leases, out = {}, {}, {}, {}
for i, payload in ipairs(payloads) do
  local token = (last - #payloads + i) .. '.' .. ARGV[3]
  table.insert(processing, token)
  table.insert(processing, payload)
  table.insert(owners, token)
  table.insert(owners, ARGV[1])
  table.insert(leases, expiry)
  table.insert(leases, token)
  table.insert(out, token)
  table.insert(out, payload)
end
redis.call('HSET', P, unpack(processing))
redis.call('HSET', O, unpack(owners))
redis.call('ZADD', L, unpack(leases))
return out
)lua";

// ARGV: lease ms, then tokens. Returns 1 (renewed) or 0 (stale) per token.
constexpr std::string_view kRenew = R"lua(
local expiry = ms(now_ms() + tonumber(ARGV[1]))
local leases, out = {}, {}
for i = 2, #ARGV do
  if redis.call('HEXISTS', P, ARGV[i]) == 1 then
    table.insert(leases, expiry)
    table.insert(leases, ARGV[i])
    out[i - 1] = 1
  else
    out[i - 1] = 0
  end
end
if #leases > 0 then redis.call('ZADD', L, unpack(leases)) end
return out
)lua";

// ARGV, per completion: token, copied, skipped, bytes copied, bytes skipped,
// n succeeded keys, n failures, the succeeded keys, then (key, reason,
// record) per failure. Returns 1 (recorded) or 0 (stale) per completion.
// Each completion is applied in order as a single complete would be; the
// counters are added once at the end, and a batch that meets no failure
// record skips the per-key look-ups (HDEL of the lease tells it is ours).
constexpr std::string_view kComplete = R"lua(
local fields = {'copied', 'skipped', 'bytes_copied', 'bytes_skipped'}
local totals = {0, 0, 0, 0}
local ended, out = {}, {}
local any_failure = redis.call('EXISTS', F) == 1
local i = 1
while i <= #ARGV do
  local succeeded, failures = tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local first = i + 7
  local after = first + succeeded + 3 * failures
  if redis.call('HDEL', P, ARGV[i]) == 1 then
    table.insert(ended, ARGV[i])
    for f = 1, 4 do totals[f] = totals[f] + tonumber(ARGV[i + f]) end
    if any_failure then
      for k = first, first + succeeded - 1 do drop_failure(ARGV[k]) end
    end
    for k = first + succeeded, after - 1, 3 do
      record_failure(ARGV[k], ARGV[k + 1], ARGV[k + 2])
      any_failure = true
    end
    table.insert(out, 1)
  else
    table.insert(out, 0)
  end
  i = after
end
if #ended > 0 then
  redis.call('HDEL', O, unpack(ended))
  redis.call('ZREM', L, unpack(ended))
end
for f = 1, 4 do
  if totals[f] > 0 then redis.call('HINCRBY', S, fields[f], ms(totals[f])) end
end
return out
)lua";

// ARGV: token, new payload, delay ms.
constexpr std::string_view kRetryLater = R"lua(
if not end_lease(ARGV[1]) then return 0 end
redis.call('ZADD', R, ms(now_ms() + tonumber(ARGV[3])), ARGV[2])
return 1
)lua";

// ARGV: token.
constexpr std::string_view kRelease = R"lua(
local payload = end_lease(ARGV[1])
if not payload then return 0 end
redis.call('LPUSH', Q, payload)
return 1
)lua";

// ARGV: token, dead entry.
constexpr std::string_view kBury = R"lua(
if not end_lease(ARGV[1]) then return 0 end
redis.call('RPUSH', D, ARGV[2])
return 1
)lua";

// ARGV: limit. Returns {token, payload or nil, …} of expired leases.
constexpr std::string_view kExpired = R"lua(
local tokens = redis.call('ZRANGEBYSCORE', L, '-inf', ms(now_ms()), 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for i, token in ipairs(tokens) do
  out[2 * i - 1] = token
  out[2 * i] = redis.call('HGET', P, token)
end
return out
)lua";

// ARGV: token, payload as read, 'requeue' or 'dead', new payload or dead
// entry, then (key, reason, record) per failure. Applies only if the lease is
// still expired and still holds that payload: a renew or another recoverer in
// between wins.
constexpr std::string_view kRecover = R"lua(
local score = redis.call('ZSCORE', L, ARGV[1])
if not score or tonumber(score) > now_ms() then return 0 end
local payload = redis.call('HGET', P, ARGV[1])
if (payload or '') ~= ARGV[2] then return 0 end
redis.call('HDEL', P, ARGV[1])
redis.call('HDEL', O, ARGV[1])
redis.call('ZREM', L, ARGV[1])
if not payload then return 1 end
if ARGV[3] == 'requeue' then
  redis.call('RPUSH', Q, ARGV[4])
  redis.call('HINCRBY', S, 'recovered', 1)
else
  redis.call('RPUSH', D, ARGV[4])
  record_failures(5)
end
return 1
)lua";

// ARGV: limit.
constexpr std::string_view kPromote = R"lua(
return promote(now_ms(), tonumber(ARGV[1]))
)lua";

// ARGV: worker id, info, forget-after ms.
constexpr std::string_view kHeartbeat = R"lua(
local now = now_ms()
redis.call('HSET', W, ARGV[1], ARGV[2])
redis.call('ZADD', WS, ms(now), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', WS, '-inf', ms(now - tonumber(ARGV[3])), 'LIMIT', 0, 100)
for _, id in ipairs(gone) do
  redis.call('HDEL', W, id)
  redis.call('ZREM', WS, id)
end
return 1
)lua";

// ARGV: max age ms. Returns {now, id, last seen, info, …}.
constexpr std::string_view kLiveWorkers = R"lua(
local now = now_ms()
local seen = redis.call('ZRANGEBYSCORE', WS, ms(now - tonumber(ARGV[1])), '+inf', 'WITHSCORES')
local out = {ms(now)}
for i = 1, #seen, 2 do
  table.insert(out, seen[i])
  table.insert(out, seen[i + 1])
  table.insert(out, redis.call('HGET', W, seen[i]) or '')
end
return out
)lua";

constexpr std::string_view kCounts = R"lua(
return {redis.call('LLEN', Q), redis.call('ZCARD', R), redis.call('HLEN', P), redis.call('LLEN', D),
        redis.call('HGETALL', S), redis.call('EXISTS', PZ)}
)lua";

constexpr std::string_view kIdle = R"lua(
return redis.call('LLEN', Q) + redis.call('ZCARD', R) + redis.call('HLEN', P)
)lua";

// ARGV: (key, record as read, payload) per failure to requeue.
constexpr std::string_view kRequeue = R"lua(
local n = 0
for i = 1, #ARGV, 3 do
  if redis.call('HGET', F, ARGV[i]) == ARGV[i + 1] then
    drop_failure(ARGV[i])
    redis.call('RPUSH', Q, ARGV[i + 2])
    n = n + 1
  end
end
if n > 0 then redis.call('HINCRBY', S, 'requeued', n) end
return n
)lua";

const std::string& script(std::string_view body) {
  // One string per body (the bodies are the constants above, so their
  // addresses identify them), built once: the client caches SHA-1s by text.
  static std::mutex mutex;
  static std::unordered_map<const char*, std::string> scripts;
  std::lock_guard lock(mutex);
  auto [it, inserted] = scripts.try_emplace(body.data());
  if (inserted) it->second = std::string(kPrelude) + std::string(body);
  return it->second;
}

std::string dump(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string now_timestamp() { return utc_timestamp(std::chrono::system_clock::now()); }

std::string failure_record_json(const std::string& key, std::optional<std::int64_t> blob_id,
                                const std::string& reason, const std::string& message, int attempts,
                                const std::string& job_payload) {
  Json record{{"key", key}, {"reason", reason}, {"message", message},
              {"attempts", attempts}, {"time", now_timestamp()}, {"job", job_payload}};
  if (blob_id) record["blob_id"] = *blob_id;
  return dump(record);
}

bool is_utf8(const std::string& text) {
  try {
    [[maybe_unused]] const std::string ignored = Json(text).dump();  // the strict handler throws on bad UTF-8
    return true;
  } catch (const Json::type_error&) {
    return false;
  }
}

// JSON strings hold UTF-8 only and dump() replaces other bytes, so a payload
// that is not UTF-8 is kept as base64: the dead list must return it as pushed.
std::string dead_entry_json(const std::string& reason, const std::string& error, const std::string& payload) {
  Json entry{{"reason", reason}, {"error", error}, {"time", now_timestamp()}};
  if (is_utf8(payload)) {
    entry["payload"] = payload;
  } else {
    entry["payload_base64"] = base64_encode(payload);
  }
  return dump(entry);
}

std::optional<Job> try_decode(const std::string& payload) {
  try {
    return decode_job(payload);
  } catch (const Error&) {
    return std::nullopt;
  }
}

// The (key, reason, record) triple a script's record_failure takes.
void append_failure(RedisArgs& args, const std::optional<Job>& job, const std::string& raw_payload,
                    const ObjectOutcome& outcome) {
  std::optional<std::size_t> index = job ? find_object_index(*job, outcome.key) : std::nullopt;
  std::optional<std::int64_t> blob_id;
  std::string retry_payload = raw_payload;
  if (index) {
    if (job->type == JobType::kCopy) blob_id = job->objects[*index].blob_id;
    retry_payload = encode_job(retry_job_for(*job, *index));
  }
  args.push_back(outcome.key);
  args.push_back(outcome.reason);
  args.push_back(failure_record_json(outcome.key, blob_id, outcome.reason, outcome.message,
                                     outcome.attempts, retry_payload));
}

// One completion's arguments of kComplete.
void append_completion(RedisArgs& args, const Lease& lease, const Outcome& outcome) {
  std::uint64_t copied = 0, skipped = 0, bytes_copied = 0, bytes_skipped = 0;
  RedisArgs succeeded;
  RedisArgs failures;
  std::optional<Job> job = try_decode(lease.payload);
  for (const auto& object : outcome.objects) {
    switch (object.kind) {
      case OutcomeKind::kCopied:
        ++copied;
        bytes_copied += object.bytes;
        succeeded.push_back(object.key);
        break;
      case OutcomeKind::kSkipped:
        ++skipped;
        bytes_skipped += object.bytes;
        succeeded.push_back(object.key);
        break;
      case OutcomeKind::kFailed:
        append_failure(failures, job, lease.payload, object);
        break;
    }
  }
  args.insert(args.end(), {lease.token, std::to_string(copied), std::to_string(skipped), std::to_string(bytes_copied),
                           std::to_string(bytes_skipped), std::to_string(succeeded.size()),
                           std::to_string(failures.size() / 3)});
  args.insert(args.end(), succeeded.begin(), succeeded.end());
  args.insert(args.end(), failures.begin(), failures.end());
}

// A script's reply of one 1/0 flag per item, appended to flags.
void append_flags(const redisReply& reply, std::size_t expected, const char* what, std::vector<bool>& flags) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != expected) {
    throw Error(ErrorKind::kPermanent, FailureReason::kRedisReply, std::string("redis ") + what + ": unexpected reply");
  }
  for (std::size_t i = 0; i < reply.elements; ++i) flags.push_back(reply_integer(*reply.element[i]) == 1);
}

std::string string_field(const Json& json, const char* name) {
  auto it = json.find(name);
  return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string dead_payload(const Json& entry) {
  auto base64 = entry.find("payload_base64");
  if (base64 != entry.end() && base64->is_string()) return base64_decode(base64->get<std::string>()).value_or("");
  return string_field(entry, "payload");
}

std::optional<FailureRecord> parse_failure(const std::string& key, const std::string& text) {
  Json json = Json::parse(text, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  FailureRecord record;
  record.key = key;
  if (auto it = json.find("blob_id"); it != json.end() && it->is_number_integer()) {
    record.blob_id = it->get<std::int64_t>();
  }
  record.reason = string_field(json, "reason");
  record.message = string_field(json, "message");
  if (auto it = json.find("attempts"); it != json.end() && it->is_number_integer()) {
    record.attempts = it->get<int>();
  }
  record.time = string_field(json, "time");
  record.job_payload = string_field(json, "job");
  return record;
}

std::uint64_t to_count(long long value) { return value < 0 ? 0 : static_cast<std::uint64_t>(value); }

void apply_stats(const redisReply& stats, Counts& counts) {
  for (std::size_t i = 0; i + 1 < stats.elements; i += 2) {
    std::string field = reply_string(*stats.element[i]);
    std::uint64_t value = to_count(reply_integer(*stats.element[i + 1]));
    if (field.starts_with("failed:")) {
      counts.failed_by_reason[field.substr(7)] = value;
    } else if (field == "queued_total") {
      counts.queued_total = value;
    } else if (field == "copied") {
      counts.copied = value;
    } else if (field == "skipped") {
      counts.skipped = value;
    } else if (field == "failed") {
      counts.failed = value;
    } else if (field == "bytes_copied") {
      counts.bytes_copied = value;
    } else if (field == "bytes_skipped") {
      counts.bytes_skipped = value;
    } else if (field == "recovered") {
      counts.recovered = value;
    }
  }
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

RedisQueue::RedisQueue(std::shared_ptr<RedisClient> client, std::string migration, RedisQueueOptions options)
    : client_(std::move(client)), migration_(std::move(migration)), options_(options) {
  assert(!migration_.empty() && "validate_migration_name() at the CLI boundary");
  for (const auto& name : key_names()) keys_.push_back(key(name));
}

std::string RedisQueue::key(std::string_view name) const {
  return "bf:{" + migration_ + "}:" + std::string(name);
}

std::vector<std::string> RedisQueue::migrations(RedisClient& client) {
  auto reply = client.command({"SMEMBERS", kMigrationsKey});
  std::vector<std::string> names;
  for (std::size_t i = 0; i < reply->elements; ++i) names.push_back(reply_string(*reply->element[i]));
  return names;
}

RedisReplyPtr RedisQueue::run(std::string_view body, const RedisArgs& args) {
  return client_->eval(script(body), keys_, args);
}

bool RedisQueue::run_flag(std::string_view body, const RedisArgs& args) {
  return reply_integer(*run(body, args)) == 1;
}

void RedisQueue::push(const std::vector<Job>& jobs) {
  const std::size_t per_round_trip = options_.push_chunk * options_.chunks_per_round_trip;
  for (std::size_t start = 0; start < jobs.size(); start += per_round_trip) {
    push_transaction(jobs, start, std::min(jobs.size(), start + per_round_trip), nullptr);
  }
}

void RedisQueue::push_with_cursor(const std::vector<Job>& jobs, const std::string& cursor,
                                  const std::string& value) {
  const std::pair<std::string, std::string> cursor_value{cursor, value};
  push_transaction(jobs, 0, jobs.size(), &cursor_value);
}

void RedisQueue::push_transaction(const std::vector<Job>& jobs, std::size_t begin, std::size_t end,
                                  const std::pair<std::string, std::string>* cursor) {
  // MULTI/EXEC makes each transaction all or nothing: a connection lost
  // mid-way never leaves jobs queued without their count or their cursor.
  std::vector<RedisArgs> commands{{"SADD", kMigrationsKey, migration_}, {"MULTI"}};
  for (std::size_t chunk = begin; chunk < end; chunk += options_.push_chunk) {
    RedisArgs rpush{"RPUSH", key("queue")};
    for (std::size_t i = chunk; i < std::min(end, chunk + options_.push_chunk); ++i) {
      if (jobs[i].id.empty()) {
        Job with_id = jobs[i];
        with_id.id = new_job_id();
        rpush.push_back(encode_job(with_id));
      } else {
        rpush.push_back(encode_job(jobs[i]));
      }
    }
    commands.push_back(std::move(rpush));
  }
  if (end > begin) commands.push_back({"HINCRBY", key("stats"), "queued_total", std::to_string(end - begin)});
  if (cursor) commands.push_back({"HSET", key("cursors"), cursor->first, cursor->second});
  commands.push_back({"EXEC"});
  auto replies = client_->pipeline(commands);
  const redisReply& exec = *replies.back();
  if (exec.type != REDIS_REPLY_ARRAY) {
    throw Error(ErrorKind::kTransient, FailureReason::kRedis, "redis EXEC of push to " + key("queue") + " was aborted");
  }
  for (std::size_t i = 0; i < exec.elements; ++i) {
    if (exec.element[i]->type == REDIS_REPLY_ERROR) {
      throw Error(ErrorKind::kPermanent, FailureReason::kRedis,
                  "redis push to " + key("queue") + ": " + std::string(exec.element[i]->str));
    }
  }
}

std::optional<Lease> RedisQueue::fetch(const std::string& worker_id, std::chrono::milliseconds wait) {
  std::vector<Lease> leases = fetch_batch(worker_id, 1, wait);
  if (leases.empty()) return std::nullopt;
  return std::move(leases.front());
}

std::vector<Lease> RedisQueue::fetch_batch(const std::string& worker_id, std::size_t max,
                                           std::chrono::milliseconds wait) {
  if (max == 0) return {};
  max = std::min(max, kScriptBatch);
  auto deadline = std::chrono::steady_clock::now() + wait;
  auto poll = options_.first_poll;
  while (true) {
    recover_if_due();
    if (auto leases = try_fetch(worker_id, max); !leases.empty()) return leases;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return {};
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(poll, deadline - now));
    poll = std::min(poll * 2, options_.max_poll);
  }
}

std::vector<Lease> RedisQueue::try_fetch(const std::string& worker_id, std::size_t max) {
  auto reply = run(kFetch, {worker_id, std::to_string(options_.lease_duration.count()), new_job_id(),
                            std::to_string(kPromoteBatch), std::to_string(max)});
  std::vector<Lease> leases;
  if (reply_is_nil(*reply)) return leases;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || reply->elements % 2 != 0) {
    throw Error(ErrorKind::kPermanent, FailureReason::kRedisReply, "redis fetch from " + key("queue") + ": unexpected reply");
  }
  leases.reserve(reply->elements / 2);
  for (std::size_t i = 0; i < reply->elements; i += 2) {
    Lease lease{reply_string(*reply->element[i]), reply_string(*reply->element[i + 1]), {}};
    if (auto job = try_decode(lease.payload)) lease.job_id = job->id;
    leases.push_back(std::move(lease));
  }
  return leases;
}

void RedisQueue::recover_if_due() {
  auto now = steady_ms();
  auto last = last_recovery_ms_.load();
  if (now - last < options_.recover_every.count()) return;
  // One thread of this process does it; the others keep fetching.
  if (last_recovery_ms_.compare_exchange_strong(last, now)) recover_expired();
}

bool RedisQueue::renew(const Lease& lease) { return renew_all({lease}).front(); }

std::vector<bool> RedisQueue::renew_all(const std::vector<Lease>& leases) {
  std::vector<bool> renewed;
  renewed.reserve(leases.size());
  for (std::size_t start = 0; start < leases.size(); start += kScriptBatch) {
    RedisArgs args{std::to_string(options_.lease_duration.count())};
    for (std::size_t i = start; i < std::min(leases.size(), start + kScriptBatch); ++i) args.push_back(leases[i].token);
    append_flags(*run(kRenew, args), args.size() - 1, "renew", renewed);
  }
  return renewed;
}

bool RedisQueue::complete(const Lease& lease, const Outcome& outcome) {
  return complete_batch({Completion{lease, outcome}}).front();
}

std::vector<bool> RedisQueue::complete_batch(const std::vector<Completion>& completions) {
  std::vector<bool> recorded;
  recorded.reserve(completions.size());
  for (std::size_t start = 0; start < completions.size(); start += kScriptBatch) {
    const std::size_t end = std::min(completions.size(), start + kScriptBatch);
    RedisArgs args;
    for (std::size_t i = start; i < end; ++i) append_completion(args, completions[i].lease, completions[i].outcome);
    append_flags(*run(kComplete, args), end - start, "complete", recorded);
  }
  return recorded;
}

bool RedisQueue::retry_later(const Lease& lease, const Job& job, std::chrono::milliseconds delay) {
  return run_flag(kRetryLater, {lease.token, encode_job(job), std::to_string(delay.count())});
}

bool RedisQueue::release(const Lease& lease) { return run_flag(kRelease, {lease.token}); }

bool RedisQueue::bury(const Lease& lease, const std::string& error) {
  return run_flag(kBury, {lease.token, dead_entry_json(std::string(to_string(FailureReason::kMalformed)), error, lease.payload)});
}

std::size_t RedisQueue::recover_expired() {
  // Batches keep each script short; the cap keeps one call bounded when a
  // whole fleet died at once (the next call goes on).
  std::size_t ended = 0;
  for (int batch = 0; batch < kMaxRecoverBatches; ++batch) {
    auto [found, recovered] = recover_batch();
    ended += recovered;
    if (found < kRecoverBatch) break;
  }
  return ended;
}

std::pair<std::size_t, std::size_t> RedisQueue::recover_batch() {
  auto expired = run(kExpired, {std::to_string(kRecoverBatch)});
  std::size_t ended = 0;
  for (std::size_t i = 0; i + 1 < expired->elements; i += 2) {
    std::string token = reply_string(*expired->element[i]);
    std::string payload = reply_optional_string(*expired->element[i + 1]).value_or("");
    RedisArgs args{token, payload};
    std::optional<Job> job;
    std::string decode_error;
    try {
      job = decode_job(payload);
    } catch (const Error& error) {
      decode_error = error.what();
    }
    if (!job) {
      args.insert(args.end(), {"dead", dead_entry_json(std::string(to_string(FailureReason::kMalformed)), "lease expired on a payload that is not a job: " +
                                                                        decode_error, payload)});
    } else if (job->recoveries >= options_.max_recoveries) {
      std::string message = "lease expired " + std::to_string(job->recoveries + 1) +
                            " times: each worker running it died or stalled";
      args.insert(args.end(), {"dead", dead_entry_json(std::string(to_string(FailureReason::kPoison)), message, payload)});
      std::size_t objects = job->type == JobType::kCopy ? job->objects.size() : 1;
      for (std::size_t index = 0; index < objects; ++index) {
        ObjectOutcome poison{failure_key(*job, index), OutcomeKind::kFailed, 0, std::string(to_string(FailureReason::kPoison)), message, job->attempts};
        append_failure(args, job, payload, poison);
      }
    } else {
      ++job->recoveries;
      args.insert(args.end(), {"requeue", encode_job(*job)});
    }
    if (run_flag(kRecover, args)) ++ended;
  }
  return {expired->elements / 2, ended};
}

// Batches keep each script short; the loop moves every due retry, as the
// contract (and MemoryQueue) promise.
std::size_t RedisQueue::promote_due() {
  std::size_t promoted = 0;
  while (true) {
    const std::size_t moved = to_count(reply_integer(*run(kPromote, {std::to_string(kPromoteBatch)})));
    promoted += moved;
    if (moved < kPromoteBatch) return promoted;
  }
}

void RedisQueue::heartbeat(const std::string& worker_id, const std::string& info_json) {
  auto forget_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kForgetWorkersAfter).count();
  run(kHeartbeat, {worker_id, info_json, std::to_string(forget_ms)});
}

std::vector<WorkerInfo> RedisQueue::live_workers(std::chrono::milliseconds max_age) {
  auto reply = run(kLiveWorkers, {std::to_string(max_age.count())});
  std::vector<WorkerInfo> workers;
  if (reply->elements == 0) return workers;
  long long now = reply_integer(*reply->element[0]);
  for (std::size_t i = 1; i + 2 < reply->elements; i += 3) {
    long long seen = reply_integer(*reply->element[i + 1]);
    workers.push_back({reply_string(*reply->element[i]), reply_string(*reply->element[i + 2]),
                       std::chrono::milliseconds(std::max(0LL, now - seen))});
  }
  return workers;
}

Counts RedisQueue::counts() {
  auto reply = run(kCounts, {});
  Counts counts;
  counts.queued = to_count(reply_integer(*reply->element[0]));
  counts.scheduled = to_count(reply_integer(*reply->element[1]));
  counts.in_flight = to_count(reply_integer(*reply->element[2]));
  counts.dead = to_count(reply_integer(*reply->element[3]));
  apply_stats(*reply->element[4], counts);
  counts.paused = reply_integer(*reply->element[5]) == 1;
  return counts;
}

bool RedisQueue::paused() { return reply_integer(*client_->command({"EXISTS", key("paused")})) == 1; }

void RedisQueue::set_paused(bool paused) {
  if (paused) {
    client_->command({"SET", key("paused"), "1"});
  } else {
    client_->command({"DEL", key("paused")});
  }
}

std::map<std::string, std::uint64_t> RedisQueue::in_flight_by_worker() {
  // HVALS is one round trip; the hash holds one field per lease (workers x
  // concurrency), small whatever the migration's size.
  auto reply = client_->command({"HVALS", key("owners")});
  std::map<std::string, std::uint64_t> by_worker;
  for (std::size_t i = 0; i < reply->elements; ++i) ++by_worker[reply_string(*reply->element[i])];
  return by_worker;
}

bool RedisQueue::idle() { return reply_integer(*run(kIdle, {})) == 0; }

std::uint64_t RedisQueue::queue_length() {
  return to_count(reply_integer(*client_->command({"LLEN", key("queue")})));
}

std::size_t RedisQueue::requeue_failed(const std::optional<std::string>& reason) {
  std::size_t requeued = 0;
  std::string cursor = "0";
  do {
    auto page = client_->command({"HSCAN", key("failed"), cursor, "COUNT", std::to_string(kScanCount)});
    cursor = reply_string(*page->element[0]);
    const redisReply& entries = *page->element[1];
    RedisArgs args;
    for (std::size_t i = 0; i + 1 < entries.elements; i += 2) {
      std::string failed_key = reply_string(*entries.element[i]);
      std::string text = reply_string(*entries.element[i + 1]);
      auto record = parse_failure(failed_key, text);
      if (!record || record->job_payload.empty()) continue;
      if (reason && record->reason != *reason) continue;
      args.insert(args.end(), {failed_key, text, record->job_payload});
    }
    if (!args.empty()) requeued += to_count(reply_integer(*run(kRequeue, args)));
  } while (cursor != "0");
  return requeued;
}

void RedisQueue::for_each_failure(const std::function<void(const FailureRecord&)>& visit) {
  std::string cursor = "0";
  do {
    auto page = client_->command({"HSCAN", key("failed"), cursor, "COUNT", std::to_string(kScanCount)});
    cursor = reply_string(*page->element[0]);
    const redisReply& entries = *page->element[1];
    for (std::size_t i = 0; i + 1 < entries.elements; i += 2) {
      if (auto record = parse_failure(reply_string(*entries.element[i]), reply_string(*entries.element[i + 1]))) {
        visit(*record);
      }
    }
  } while (cursor != "0");
}

void RedisQueue::for_each_dead(const std::function<void(const DeadEntry&)>& visit) {
  for (long long start = 0;; start += static_cast<long long>(kScanCount)) {
    auto page = client_->command({"LRANGE", key("dead"), std::to_string(start),
                                  std::to_string(start + static_cast<long long>(kScanCount) - 1)});
    if (page->elements == 0) return;
    for (std::size_t i = 0; i < page->elements; ++i) {
      Json json = Json::parse(reply_string(*page->element[i]), nullptr, false);
      if (!json.is_object()) continue;
      visit({string_field(json, "reason"), string_field(json, "error"), dead_payload(json), string_field(json, "time")});
    }
  }
}

void RedisQueue::purge() {
  RedisArgs del{"DEL"};
  del.insert(del.end(), keys_.begin(), keys_.end());
  client_->pipeline({del, {"SREM", kMigrationsKey, migration_}});
}

void RedisQueue::set_cursor(const std::string& name, const std::string& value) {
  client_->command({"HSET", key("cursors"), name, value});
}

std::optional<std::string> RedisQueue::get_cursor(const std::string& name) {
  return reply_optional_string(*client_->command({"HGET", key("cursors"), name}));
}

}  // namespace blobferry
