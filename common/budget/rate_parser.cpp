// Parses the budget options' values: request rates and bandwidths as people write them.
#include "common/budget/rate_parser.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <utility>

#include "common/base/error.h"
#include "common/base/encoding.h"

namespace blobferry {
namespace {

// The leading decimal number and the rest; nullopt without one. strtod would
// also take "inf", "nan" and hex, none of which is a rate.
std::optional<std::pair<double, std::string>> split_number(std::string_view text) {
  std::size_t end = 0;
  bool digits = false, dot = false;
  while (end < text.size()) {
    const char c = text[end];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
    ++end;
  }
  if (!digits) return std::nullopt;
  const std::string number(text.substr(0, end));
  std::string unit(text.substr(end));
  unit.erase(std::remove_if(unit.begin(), unit.end(), [](unsigned char c) { return std::isspace(c); }), unit.end());
  return std::make_pair(std::strtod(number.c_str(), nullptr), lowercase(unit));
}

std::string strip_per_second(std::string unit) {
  if (unit.ends_with("/s")) unit.resize(unit.size() - 2);
  return unit;
}

std::optional<double> bandwidth_unit(std::string unit) {
  unit = strip_per_second(std::move(unit));
  // "mbps" is bits, as network people write it; "mb" is bytes.
  if (unit.ends_with("bps")) unit = unit.substr(0, unit.size() - 3) + "bit";
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},          {"b", 1},          {"kb", 1e3},       {"mb", 1e6},       {"gb", 1e9},
      {"tb", 1e12},     {"kib", 1024.0},   {"mib", 1048576.0}, {"gib", 1073741824.0},
      {"tib", 1099511627776.0},            {"bit", 1 / 8.0},  {"kbit", 1e3 / 8}, {"mbit", 1e6 / 8},
      {"gbit", 1e9 / 8}, {"k", 1e3},       {"m", 1e6},        {"g", 1e9},
  };
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) return factor;
  }
  return std::nullopt;
}

[[noreturn]] void refuse(const std::string& option, std::string_view text, const char* forms) {
  throw config_error(option + " '" + std::string(text) + "' is not " + forms);
}

}  // namespace

double parse_request_rate(std::string_view text, const std::string& option) {
  constexpr const char* kForms = "a request rate above 0: use requests per second, e.g. 50 or 12.5/s";
  const auto parsed = split_number(text);
  if (!parsed || strip_per_second(parsed->second) != "") refuse(option, text, kForms);
  if (!(parsed->first > 0) || !std::isfinite(parsed->first)) refuse(option, text, kForms);
  return parsed->first;
}

double parse_bandwidth(std::string_view text, const std::string& option) {
  constexpr const char* kForms =
      "a bandwidth above 0: use bytes per second (10000000), 10MB/s, 500KiB/s, 1.5GB/s, 80Mbit or 80Mbps";
  const auto parsed = split_number(text);
  if (!parsed) refuse(option, text, kForms);
  const auto factor = bandwidth_unit(parsed->second);
  if (!factor) refuse(option, text, kForms);
  const double value = parsed->first * *factor;
  if (!(value > 0) || !std::isfinite(value)) refuse(option, text, kForms);
  return value;
}

}  // namespace blobferry
