// Budgets shared by every worker of a migration: one Redis hash per bucket, changed by one Lua script.
#include "common/budget/redis_budget_store.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"

namespace blobferry {
namespace {

// AimdBucket (aimd_bucket.cpp) step by step; the field names are AimdState's.
constexpr std::string_view kScript = R"lua(
local K = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ceiling, adaptive = tonumber(ARGV[3]), ARGV[4] == '1'
local a, b = tonumber(ARGV[5]), tonumber(ARGV[6])
local burst, decrease, increase = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local probe, spacing, min_rate = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local floor_share = tonumber(ARGV[13])
local function f(x) return string.format('%.17g', x) end
local function capacity(rate) return math.max(1, rate * burst) end

local names = {'rate', 'tokens', 'learned', 'updated', 'last_cut', 'hold_until', 'cuts', 'win_start',
               'win_used', 'last_win_rate', 'ceiling', 'peak'}
local s = {}
local stored = redis.call('HMGET', K, unpack(names))
if stored[1] then
  for i, name in ipairs(names) do s[name] = tonumber(stored[i]) or 0 end
  -- status reads with the ceiling the workers use, which it may not know
  if op == 'peek' then ceiling = s.ceiling else s.ceiling = ceiling end
else
  if op == 'peek' then return {'0'} end
  s = {ceiling = ceiling, peak = 0, rate = ceiling, tokens = capacity(ceiling), learned = 0, updated = now, last_cut = 0, hold_until = 0,
       cuts = 0, win_start = now, win_used = 0, last_win_rate = 0}
end

if ceiling > 0 and (s.rate <= 0 or s.rate > ceiling) then s.rate = ceiling end
local dt = math.max(0, now - s.updated) / 1000
if s.rate > 0 and s.cuts > 0 then
  local bound = ceiling > 0 and ceiling or s.learned
  local step = math.max(min_rate, bound * increase) * dt
  if ceiling > 0 then
    s.rate = math.min(ceiling, s.rate + step)
  elseif s.rate < s.learned then
    s.rate = math.min(s.learned, s.rate + step)
  else
    s.rate = s.rate + step * probe
  end
end
if s.rate > 0 then s.tokens = math.min(capacity(s.rate), s.tokens + s.rate * dt) end
s.updated = math.max(s.updated, now)
local window = now - s.win_start
if window >= 1000 then
  s.last_win_rate = window < 2000 and s.win_used * 1000 / window or 0
  s.win_start = now
  s.win_used = 0
end

local reply
if op == 'take' then
  local want, used = a, b
  s.win_used = s.win_used + used
  if now < s.hold_until then
    reply = {'0', f(s.hold_until - now), f(s.rate)}
  elseif s.rate <= 0 then
    s.win_used = s.win_used + want
    reply = {f(want), '0', '0'}
  elseif s.tokens >= 1 then
    local granted = math.min(want, math.floor(s.tokens))
    s.tokens = s.tokens - granted
    s.win_used = s.win_used + granted
    reply = {f(granted), '0', f(s.rate)}
  else
    local wait = math.max(1, math.ceil((1 - s.tokens) * 1000 / s.rate))
    reply = {'0', f(wait), f(s.rate)}
  end
elseif op == 'cut' then
  local retry_after = a
  reply = {'0'}
  if adaptive and not (s.cuts > 0 and now - s.last_cut < spacing) then
    local observed = math.max(s.last_win_rate, s.win_used)
    local base = s.rate
    if base <= 0 or (s.last_win_rate > 0 and observed < base) then base = observed end
    s.peak = math.max(s.peak, base)
    local floor_rate = math.max(min_rate, s.peak * floor_share)
    if ceiling > 0 then floor_rate = math.min(floor_rate, ceiling) end
    base = math.max(base, floor_rate)
    s.learned = base
    s.rate = math.max(floor_rate, base * decrease)
    s.tokens = math.min(s.tokens, capacity(s.rate))
    if retry_after > 0 and base * decrease > floor_rate then
      s.hold_until = math.max(s.hold_until, now + retry_after)
      s.tokens = 0
    end
    s.last_cut = now
    s.cuts = s.cuts + 1
    reply = {'1'}
  end
else
  -- peek: what the workers would see now, stored nowhere
  return {'1', f(s.rate), f(s.learned), f(s.cuts), f(s.ceiling)}
end

local flat = {}
for _, name in ipairs(names) do
  flat[#flat + 1] = name
  flat[#flat + 1] = f(s[name])
end
redis.call('HSET', K, unpack(flat))
redis.call('PEXPIRE', K, 86400000)
return reply
)lua";

std::string number(double value) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  return buf;
}

double element(const redisReply& reply, std::size_t index) {
  if (reply.type != REDIS_REPLY_ARRAY || index >= reply.elements) return 0;
  return std::strtod(reply_string(*reply.element[index]).c_str(), nullptr);
}

}  // namespace

RedisBudgetStore::RedisBudgetStore(std::shared_ptr<RedisClient> client, const std::string& migration,
                                   AimdTuning tuning)
    : client_(client), prefix_(RedisQueue(client, migration).key("budget:")), tuning_(tuning) {}

std::vector<std::string> RedisBudgetStore::args(const char* op, const BudgetKey& key, double a, double b) const {
  return {op,
          std::to_string(fixed_now_ms_),
          number(key.ceiling),
          key.adaptive ? "1" : "0",
          number(a),
          number(b),
          number(tuning_.burst_seconds),
          number(tuning_.decrease),
          number(tuning_.increase_per_second),
          number(tuning_.probe_share),
          std::to_string(tuning_.cut_spacing_ms),
          number(tuning_.min_rate),
          number(tuning_.floor_share)};
}

AimdTake RedisBudgetStore::take(const BudgetKey& key, double want, double used) {
  const RedisReplyPtr reply = client_->eval(kScript, {prefix_ + key.name}, args("take", key, want, used));
  return {element(*reply, 0), static_cast<std::int64_t>(element(*reply, 1)), element(*reply, 2)};
}

bool RedisBudgetStore::cut(const BudgetKey& key, std::int64_t retry_after_ms) {
  const RedisReplyPtr reply =
      client_->eval(kScript, {prefix_ + key.name}, args("cut", key, static_cast<double>(retry_after_ms), 0));
  return element(*reply, 0) == 1;
}

std::optional<BudgetSnapshot> RedisBudgetStore::snapshot(const BudgetKey& key) {
  const RedisReplyPtr reply = client_->eval(kScript, {prefix_ + key.name}, args("peek", key, 0, 0));
  if (element(*reply, 0) != 1) return std::nullopt;
  return BudgetSnapshot{element(*reply, 1), element(*reply, 4), element(*reply, 2),
                        static_cast<std::uint64_t>(element(*reply, 3))};
}

}  // namespace blobferry
