// What a validate or switch pass left in Redis, counts only, so `status` and the operator page can show it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace blobferry {

// Stored as the migration's cursor "validate" or "switch" (JSON). Never
// holds a credential, a key or a URL: counts and times only.
struct PhaseRecord {
  static constexpr const char* kValidateCursor = "validate";
  static constexpr const char* kSwitchCursor = "switch";
  // A running pass rewrites updated_at this often; a record not rewritten for
  // kStaleSeconds belongs to a pass that died (SIGKILL, a lost machine), so it
  // no longer makes the migration look busy.
  static constexpr double kRefreshSeconds = 5;
  static constexpr double kStaleSeconds = 20;

  bool running = false;
  bool interrupted = false;  // ended early: Ctrl-C, an error, or it died while running
  double started_at = 0;     // seconds since the Unix epoch
  double updated_at = 0;
  double finished_at = 0;  // 0 while running
  // validate: checked, verified, missing, mismatched, unverifiable (of the
  // last round), verified_total and to_verify where the source records what
  // it verified; switch: switched, unverified, batches.
  std::map<std::string, std::uint64_t> counts;

  std::string encode() const;
  static std::optional<PhaseRecord> decode(std::string_view json);  // nullopt when malformed
  // The record as a reader at `now` should see it: a running record not
  // refreshed for kStaleSeconds is one whose pass died.
  PhaseRecord seen_at(double now) const;
};

}  // namespace blobferry
