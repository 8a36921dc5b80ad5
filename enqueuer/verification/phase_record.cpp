// What a validate or switch pass left in Redis, counts only, so `status` and the operator page can show it.
#include "enqueuer/verification/phase_record.h"

#include <nlohmann/json.hpp>

namespace blobferry {
namespace {

using Json = nlohmann::json;

double number_or_zero(const Json& json, const char* name) {
  auto it = json.find(name);
  return it != json.end() && it->is_number() ? it->get<double>() : 0.0;
}

bool flag(const Json& json, const char* name) {
  auto it = json.find(name);
  return it != json.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace

std::string PhaseRecord::encode() const {
  Json counts_json = Json::object();
  for (const auto& [name, value] : counts) counts_json[name] = value;
  return Json{{"running", running},       {"interrupted", interrupted}, {"started_at", started_at},
              {"updated_at", updated_at}, {"finished_at", finished_at}, {"counts", counts_json}}
      .dump();
}

std::optional<PhaseRecord> PhaseRecord::decode(std::string_view text) {
  const Json json = Json::parse(text, nullptr, false);
  if (!json.is_object()) return std::nullopt;
  auto counts = json.find("counts");
  if (counts == json.end() || !counts->is_object()) return std::nullopt;
  PhaseRecord record;
  record.running = flag(json, "running");
  record.interrupted = flag(json, "interrupted");
  record.started_at = number_or_zero(json, "started_at");
  record.updated_at = number_or_zero(json, "updated_at");
  record.finished_at = number_or_zero(json, "finished_at");
  for (const auto& [name, value] : counts->items()) {
    if (!value.is_number_unsigned()) return std::nullopt;
    record.counts[name] = value.get<std::uint64_t>();
  }
  return record;
}

PhaseRecord PhaseRecord::seen_at(double now) const {
  PhaseRecord seen = *this;
  if (running && now - updated_at >= kStaleSeconds) {
    seen.running = false;
    seen.interrupted = true;
  }
  return seen;
}

}  // namespace blobferry
