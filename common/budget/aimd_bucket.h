// The arithmetic of one shared budget: a token bucket whose rate falls on throttling and climbs back (AIMD).
#pragma once

#include <cstdint>

namespace blobferry {

// Fixed numbers of the controller. RedisBudgetStore passes them to its Lua
// script, so the in-process bucket and the fleet's share one definition.
struct AimdTuning {
  double burst_seconds = 0.1;         // the bucket holds at most this many seconds of tokens
  double decrease = 0.5;              // a cut multiplies the rate by this
  double increase_per_second = 0.05;  // after a cut, the rate climbs by this share of its bound per second
  double probe_share = 0.1;           // past the learned ceiling it climbs this much slower
  std::int64_t cut_spacing_ms = 1000; // at most one cut per this long, whoever reports
  double min_rate = 1.0;              // a cut never goes below this (or the ceiling, if lower)
  // Nor below this share of the highest rate ever cut from: throttling that
  // does not depend on the rate (a provider under load of its own) would
  // otherwise halve the fleet down to min_rate and keep it there.
  double floor_share = 0.125;
};

// Everything a bucket remembers between calls (a Redis hash, or a member).
struct AimdState {
  bool initialised = false;
  double rate = 0;        // tokens per second allowed now; 0 means unlimited (no ceiling, never cut)
  double tokens = 0;
  double learned = 0;     // the rate at which the last cut happened; 0 before any
  double peak = 0;        // the highest rate a cut started from
  std::int64_t updated_ms = 0;
  std::int64_t last_cut_ms = 0;
  std::int64_t hold_until_ms = 0;  // Retry-After: nothing is granted before this
  std::uint64_t cuts = 0;
  std::int64_t window_start_ms = 0;  // tokens used in the current second and the previous one,
  double window_used = 0;            // so a cut of an unlimited bucket knows the rate to start from
  double last_window_rate = 0;
};

struct AimdTake {
  double granted = 0;         // up to what was asked
  std::int64_t wait_ms = 0;   // when nothing was granted: try again after this
  double rate = 0;            // the rate now (0: unlimited)
};

// Pure: every call takes the time, so tests drive it with a fixed clock.
// ceiling is the configured tokens per second, 0 for none; a bucket that is
// not adaptive (bandwidth) ignores cuts.
class AimdBucket {
 public:
  AimdBucket(double ceiling, bool adaptive, AimdTuning tuning = {})
      : ceiling_(ceiling), adaptive_(adaptive), tuning_(tuning) {}

  // Asks for `want` tokens and reports `used` tokens taken without asking
  // (while the bucket was unlimited).
  AimdTake take(AimdState& state, std::int64_t now_ms, double want, double used) const;
  // A throttling answer: cut the rate unless a cut happened less than
  // cut_spacing_ms ago, and unless that cut is held at the floor, hold every
  // grant for retry_after_ms (so a provider that sends Retry-After with every
  // 503 cannot stop the fleet over and over). Returns whether it cut.
  bool cut(AimdState& state, std::int64_t now_ms, std::int64_t retry_after_ms) const;
  // Refills and climbs up to now without taking anything (status).
  void advance(AimdState& state, std::int64_t now_ms) const;

  double capacity(double rate) const;

 private:
  double ceiling_;
  bool adaptive_;
  AimdTuning tuning_;
};

}  // namespace blobferry
