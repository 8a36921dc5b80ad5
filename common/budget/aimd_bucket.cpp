// The arithmetic of one shared budget: a token bucket whose rate falls on throttling and climbs back (AIMD).
// common/budget/redis_budget_store.cpp holds the same steps in Lua; keep the two in step
// (tests/integration/budget_store_test.cpp runs one sequence through both).
#include "common/budget/aimd_bucket.h"

#include <algorithm>
#include <cmath>

namespace blobferry {

double AimdBucket::capacity(double rate) const { return std::max(1.0, rate * tuning_.burst_seconds); }

void AimdBucket::advance(AimdState& state, std::int64_t now_ms) const {
  if (!state.initialised) {
    state = AimdState{};
    state.initialised = true;
    state.rate = ceiling_;
    state.tokens = capacity(ceiling_);
    state.updated_ms = now_ms;
    state.window_start_ms = now_ms;
  }
  // A configured ceiling lowered since the bucket was made applies at once.
  if (ceiling_ > 0 && (state.rate <= 0 || state.rate > ceiling_)) state.rate = ceiling_;
  const double dt = std::max<std::int64_t>(0, now_ms - state.updated_ms) / 1000.0;
  if (state.rate > 0 && state.cuts > 0) {
    // Additive increase up to the configured ceiling; without one, up to the
    // rate that was throttled last, and past it only slowly, to find out
    // whether the service now takes more.
    const double bound = ceiling_ > 0 ? ceiling_ : state.learned;
    const double step = std::max(tuning_.min_rate, bound * tuning_.increase_per_second) * dt;
    if (ceiling_ > 0) {
      state.rate = std::min(ceiling_, state.rate + step);
    } else if (state.rate < state.learned) {
      state.rate = std::min(state.learned, state.rate + step);
    } else {
      state.rate += step * tuning_.probe_share;
    }
  }
  if (state.rate > 0) state.tokens = std::min(capacity(state.rate), state.tokens + state.rate * dt);
  state.updated_ms = std::max(state.updated_ms, now_ms);
  const std::int64_t window = now_ms - state.window_start_ms;
  if (window >= 1000) {
    state.last_window_rate = window < 2000 ? state.window_used * 1000.0 / static_cast<double>(window) : 0;
    state.window_start_ms = now_ms;
    state.window_used = 0;
  }
}

AimdTake AimdBucket::take(AimdState& state, std::int64_t now_ms, double want, double used) const {
  advance(state, now_ms);
  state.window_used += used;
  if (now_ms < state.hold_until_ms) return {0, state.hold_until_ms - now_ms, state.rate};
  if (state.rate <= 0) {
    state.window_used += want;
    return {want, 0, 0};
  }
  if (state.tokens >= 1) {
    const double granted = std::min(want, std::floor(state.tokens));
    state.tokens -= granted;
    state.window_used += granted;
    return {granted, 0, state.rate};
  }
  const double missing = 1.0 - state.tokens;
  const auto wait = static_cast<std::int64_t>(std::ceil(missing * 1000.0 / state.rate));
  return {0, std::max<std::int64_t>(1, wait), state.rate};
}

bool AimdBucket::cut(AimdState& state, std::int64_t now_ms, std::int64_t retry_after_ms) const {
  advance(state, now_ms);
  if (!adaptive_) return false;
  if (state.cuts > 0 && now_ms - state.last_cut_ms < tuning_.cut_spacing_ms) return false;
  // Cut from what the fleet really sent when that was less than allowed
  // (halving an allowance nobody uses would change nothing), once a whole
  // second was seen: a partial one undercounts.
  const double observed = std::max(state.last_window_rate, state.window_used);
  double base = state.rate;
  if (base <= 0 || (state.last_window_rate > 0 && observed < base)) base = observed;
  state.peak = std::max(state.peak, base);
  double floor_rate = std::max(tuning_.min_rate, state.peak * tuning_.floor_share);
  if (ceiling_ > 0) floor_rate = std::min(floor_rate, ceiling_);
  base = std::max(base, floor_rate);
  state.learned = base;
  state.rate = std::max(floor_rate, base * tuning_.decrease);
  state.tokens = std::min(state.tokens, capacity(state.rate));
  // Once at the floor, cutting does not ease the throttling: holding too
  // would only stop the fleet again and again.
  if (retry_after_ms > 0 && base * tuning_.decrease > floor_rate) {
    state.hold_until_ms = std::max(state.hold_until_ms, now_ms + retry_after_ms);
    state.tokens = 0;
  }
  state.last_cut_ms = now_ms;
  ++state.cuts;
  return true;
}

}  // namespace blobferry
