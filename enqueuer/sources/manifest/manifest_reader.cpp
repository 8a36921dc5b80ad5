// Reads a manifest of keys (CSV or JSONL), optionally with size and checksum.
#include "enqueuer/sources/manifest/manifest_reader.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "common/base/encoding.h"

namespace blobferry {
namespace {

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

ManifestReader::ManifestReader(std::istream& in, std::string origin) : in_(in), origin_(std::move(origin)) {}

void ManifestReader::problem(const std::string& message) {
  ++problem_count_;
  if (problems_.size() < kMaxKeptProblems) problems_.push_back({entry_line_, message});
}

// One CSV record (possibly spanning lines inside quotes) or one JSONL line.
bool ManifestReader::read_record(std::vector<std::string>& fields, std::string& raw) {
  fields.clear();
  raw.clear();
  std::string line;
  if (!std::getline(in_, line)) return false;
  ++line_;
  entry_line_ = line_;
  if (format_ == Format::kUnknown) {
    const std::string t = trim(line);
    if (t.empty()) return true;
    format_ = t[0] == '{' ? Format::kJsonl : Format::kCsv;
  }
  if (format_ == Format::kJsonl) {
    raw = line;
    return true;
  }
  std::string field;
  bool quoted = false;
  std::size_t i = 0;
  for (;;) {
    if (i == line.size()) {
      if (!quoted) break;
      // A quoted field runs on to the next line: the newline is part of the key.
      std::string more;
      if (!std::getline(in_, more)) {
        problem("unterminated quoted field");
        fields.clear();
        return true;
      }
      ++line_;
      field.push_back('\n');
      line = std::move(more);
      i = 0;
      continue;
    }
    const char c = line[i++];
    if (quoted) {
      if (c == '"' && i < line.size() && line[i] == '"') {
        field.push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field.push_back(c);
      }
    } else if (c == '"' && field.empty()) {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\r' && i == line.size()) {
      // CRLF files
    } else {
      field.push_back(c);
    }
  }
  fields.push_back(std::move(field));
  raw = line;
  return true;
}

bool ManifestReader::set_checksum(ManifestEntry& entry, const std::string& value) {
  const std::string v = trim(value);
  if (v.empty()) return true;
  if (v.size() == 32) {
    if (auto b64 = hex_md5_to_base64(v)) {
      entry.checksum = *b64;
      return true;
    }
  }
  if (base64_md5_to_hex(v)) {
    entry.checksum = v;
    return true;
  }
  problem("checksum '" + v + "' is neither a base64 nor a hex MD5");
  return false;
}

bool ManifestReader::set_size(ManifestEntry& entry, const std::string& value) {
  const std::string v = trim(value);
  if (v.empty()) return true;
  if (!std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c); }) || v.size() > 19) {
    problem("size '" + v + "' is not a byte count");
    return false;
  }
  entry.size = std::stoull(v);
  return true;
}

std::optional<ManifestEntry> ManifestReader::parse_csv(const std::vector<std::string>& fields) {
  auto at = [&](int col) -> std::string { return col >= 0 && col < static_cast<int>(fields.size()) ? fields[col] : ""; };
  ManifestEntry entry;
  entry.key = at(key_col_);
  if (entry.key.empty()) {
    problem("empty key");
    return std::nullopt;
  }
  if (!set_size(entry, at(size_col_)) || !set_checksum(entry, at(checksum_col_))) return std::nullopt;
  entry.content_type = trim(at(content_type_col_));
  return entry;
}

std::optional<ManifestEntry> ManifestReader::parse_jsonl(const std::string& raw) {
  const auto j = nlohmann::json::parse(raw, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    problem("not a JSON object");
    return std::nullopt;
  }
  ManifestEntry entry;
  const auto key = j.find("key");
  if (key == j.end() || !key->is_string() || key->get<std::string>().empty()) {
    problem("no \"key\" string");
    return std::nullopt;
  }
  entry.key = key->get<std::string>();
  for (const char* name : {"size", "byte_size"}) {
    if (!j.contains(name)) continue;
    const auto& v = j[name];
    if (!v.is_number_unsigned()) {
      problem(std::string("\"") + name + "\" is not a byte count");
      return std::nullopt;
    }
    entry.size = v.get<std::uint64_t>();
  }
  for (const char* name : {"checksum", "md5"}) {
    if (!j.contains(name)) continue;
    if (!j[name].is_string() || !set_checksum(entry, j[name].get<std::string>())) {
      if (!j[name].is_string()) problem(std::string("\"") + name + "\" is not a string");
      return std::nullopt;
    }
  }
  if (j.contains("content_type") && j["content_type"].is_string()) entry.content_type = j["content_type"];
  return entry;
}

std::optional<ManifestEntry> ManifestReader::next() {
  std::vector<std::string> fields;
  std::string raw;
  while (read_record(fields, raw)) {
    if (format_ == Format::kJsonl) {
      if (trim(raw).empty()) continue;
      if (auto entry = parse_jsonl(raw)) return entry;
      continue;
    }
    if (fields.empty() || (fields.size() == 1 && trim(fields[0]).empty())) continue;
    if (!header_checked_) {
      header_checked_ = true;
      if (lowercase(trim(fields[0])) == "key" || std::find_if(fields.begin(), fields.end(), [](const std::string& f) {
                                               return lowercase(trim(f)) == "key";
                                             }) != fields.end()) {
        key_col_ = size_col_ = checksum_col_ = content_type_col_ = -1;
        for (int i = 0; i < static_cast<int>(fields.size()); ++i) {
          const std::string name = lowercase(trim(fields[i]));
          if (name == "key") key_col_ = i;
          else if (name == "size" || name == "byte_size") size_col_ = i;
          else if (name == "checksum" || name == "md5") checksum_col_ = i;
          else if (name == "content_type") content_type_col_ = i;
        }
        continue;
      }
    }
    if (auto entry = parse_csv(fields)) return entry;
  }
  return std::nullopt;
}

void ManifestReader::skip_to_line(std::size_t line) {
  while (line_ < line) {
    if (!next()) return;
  }
}

}  // namespace blobferry
