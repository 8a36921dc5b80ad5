// The unit of work a queue carries: copy one object or a batch, list a prefix, or copy one part of a giant object.
#include "common/queue/job.h"

#include <ctime>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/base/utc_time.h"

namespace blobferry {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Short field names keep a queued single-object job well under 300 bytes,
// which matters with tens of millions of them sitting in Redis.
constexpr const char* kId = "i";
constexpr const char* kType = "ty";
constexpr const char* kMigration = "m";
constexpr const char* kSource = "s";
constexpr const char* kTarget = "t";
constexpr const char* kObjects = "o";
constexpr const char* kAttempts = "a";
constexpr const char* kRecoveries = "r";
constexpr const char* kPrefix = "p";
constexpr const char* kStartAfter = "sa";
constexpr const char* kEndAt = "ea";
constexpr const char* kContinuation = "lc";
constexpr const char* kDelimiterDepth = "dd";
constexpr const char* kKey = "k";
constexpr const char* kTargetKey = "tk";
constexpr const char* kSize = "n";
constexpr const char* kChecksum = "c";
constexpr const char* kContentType = "ct";
constexpr const char* kBlobId = "b";
constexpr const char* kRecord = "r";
constexpr const char* kTargetAbsent = "ta";
constexpr const char* kListingType = "list";
constexpr const char* kPartType = "part";
constexpr const char* kUploadId = "u";
constexpr const char* kPartNumber = "pn";
constexpr const char* kPartCount = "pc";
constexpr const char* kPartSize = "ps";
constexpr const char* kSourceEtag = "e";
// A full batch of long keys stays far below this; anything bigger is garbage.
constexpr std::size_t kMaxPayloadBytes = 4 << 20;

[[noreturn]] void malformed(const std::string& what) {
  throw Error(ErrorKind::kPermanent, FailureReason::kMalformedJob, "malformed job: " + what);
}

void put_if_set(OrderedJson& out, const char* name, const std::string& value) {
  if (!value.empty()) out[name] = value;
}

OrderedJson encode_object(const JobObject& object) {
  OrderedJson out;
  out[kKey] = object.key;
  put_if_set(out, kTargetKey, object.target_key);
  if (object.size) out[kSize] = *object.size;
  put_if_set(out, kChecksum, object.checksum);
  put_if_set(out, kContentType, object.content_type);
  if (object.blob_id) out[kBlobId] = *object.blob_id;
  put_if_set(out, kRecord, object.record);
  if (object.target_absent) out[kTargetAbsent] = 1;
  return out;
}

// Field readers: each names the field and what it should have been.
std::string read_string(const Json& in, const char* name, const std::string& where, bool required) {
  auto it = in.find(name);
  if (it == in.end()) {
    if (required) malformed(where + "missing field \"" + name + "\"");
    return {};
  }
  if (!it->is_string()) malformed(where + "field \"" + name + "\" must be a string");
  auto value = it->get<std::string>();
  if (required && value.empty()) malformed(where + "field \"" + name + "\" is empty");
  return value;
}

int read_count(const Json& in, const char* name) {
  auto it = in.find(name);
  if (it == in.end()) return 0;
  if (!it->is_number_integer() || it->get<std::int64_t>() < 0 ||
      it->get<std::int64_t>() > std::numeric_limits<int>::max()) {
    malformed(std::string("field \"") + name + "\" must be a non-negative integer");
  }
  return static_cast<int>(it->get<std::int64_t>());
}

JobObject decode_object(const Json& in, std::size_t index) {
  const std::string where = "object " + std::to_string(index) + ": ";
  if (!in.is_object()) malformed(where + "must be a JSON object");
  JobObject object;
  object.key = read_string(in, kKey, where, true);
  if (in.contains(kTargetKey)) {
    object.target_key = read_string(in, kTargetKey, where, true);
  }
  if (auto it = in.find(kSize); it != in.end()) {
    if (!it->is_number_unsigned()) malformed(where + "field \"n\" (size) must be a non-negative integer");
    object.size = it->get<std::uint64_t>();
  }
  object.checksum = read_string(in, kChecksum, where, false);
  if (!object.checksum.empty() && !base64_md5_to_hex(object.checksum)) {
    malformed(where + "field \"c\" (checksum) must be a base64 MD5, got \"" + object.checksum + "\"");
  }
  object.content_type = read_string(in, kContentType, where, false);
  if (auto it = in.find(kBlobId); it != in.end()) {
    if (!it->is_number_integer()) malformed(where + "field \"b\" (blob id) must be an integer");
    object.blob_id = it->get<std::int64_t>();
  }
  object.record = read_string(in, kRecord, where, false);
  if (auto it = in.find(kTargetAbsent); it != in.end()) {
    if (!it->is_number_integer() && !it->is_boolean()) malformed(where + "field \"ta\" (target absent) must be 0 or 1");
    object.target_absent = it->is_boolean() ? it->get<bool>() : it->get<std::int64_t>() != 0;
  }
  return object;
}

void decode_objects(const Json& in, Job& job) {
  auto it = in.find(kObjects);
  if (it == in.end()) malformed("copy job without field \"o\" (objects)");
  if (!it->is_array()) malformed("field \"o\" (objects) must be an array");
  if (it->empty()) malformed("field \"o\" (objects) is empty");
  if (it->size() > kMaxBatchObjects) {
    malformed("batch of " + std::to_string(it->size()) + " objects exceeds the limit of " +
              std::to_string(kMaxBatchObjects));
  }
  job.objects.reserve(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) job.objects.push_back(decode_object((*it)[i], i));
}

void decode_listing(const Json& in, Job& job) {
  job.listing.prefix = read_string(in, kPrefix, "", false);
  job.listing.start_after = read_string(in, kStartAfter, "", false);
  job.listing.end_at = read_string(in, kEndAt, "", false);
  job.listing.continuation_token = read_string(in, kContinuation, "", false);
  job.listing.delimiter_depth = read_count(in, kDelimiterDepth);
  if (job.listing.delimiter_depth > kMaxDelimiterDepth) {
    malformed("field \"dd\" (delimiter depth) exceeds " + std::to_string(kMaxDelimiterDepth));
  }
}

std::uint64_t read_size(const Json& in, const char* name) {
  auto it = in.find(name);
  if (it == in.end()) malformed(std::string("part job without field \"") + name + "\"");
  if (!it->is_number_unsigned()) malformed(std::string("field \"") + name + "\" must be a non-negative integer");
  return it->get<std::uint64_t>();
}

// A part job must describe a range inside its object: a bad one would upload
// the wrong bytes under a valid part number.
void decode_part(const Json& in, Job& job) {
  decode_objects(in, job);
  if (job.objects.size() != 1) malformed("part job with " + std::to_string(job.objects.size()) + " objects");
  if (!job.objects[0].size) malformed("part job without the object's size");
  job.part.upload_id = read_string(in, kUploadId, "", true);
  job.part.number = read_count(in, kPartNumber);
  job.part.count = read_count(in, kPartCount);
  job.part.part_size = read_size(in, kPartSize);
  job.part.source_etag = read_string(in, kSourceEtag, "", false);
  const PartSpec& part = job.part;
  if (part.count < 1 || part.count > kMaxUploadParts) {
    malformed("field \"pc\" (part count) must be 1 to " + std::to_string(kMaxUploadParts));
  }
  if (part.number < 1 || part.number > part.count) malformed("field \"pn\" (part number) must be 1 to the part count");
  const std::uint64_t size = *job.objects[0].size;
  const auto count = static_cast<std::uint64_t>(part.count);
  if (part.part_size == 0 || part.part_size > size || (count - 1) * part.part_size >= size ||
      size > count * part.part_size) {
    malformed("part size " + std::to_string(part.part_size) + " times " + std::to_string(part.count) +
              " parts does not cover an object of " + std::to_string(size) + " bytes");
  }
}

JobType decode_type(const Json& in) {
  auto type = read_string(in, kType, "", false);
  if (type.empty()) return JobType::kCopy;
  if (type == kListingType) return JobType::kListing;
  if (type == kPartType) return JobType::kPart;
  malformed("unknown job type \"" + type + "\"");
}

Job reset_for_retry(Job job) {
  job.attempts = 0;
  job.recoveries = 0;
  return job;
}

}  // namespace

std::string encode_job(const Job& job) {
  OrderedJson out;
  out[kId] = job.id;
  if (job.type == JobType::kListing) out[kType] = kListingType;
  if (job.type == JobType::kPart) out[kType] = kPartType;
  out[kMigration] = job.migration;
  out[kSource] = job.source;
  out[kTarget] = job.target;
  if (job.type != JobType::kListing) {
    auto objects = OrderedJson::array();
    for (const auto& object : job.objects) objects.push_back(encode_object(object));
    out[kObjects] = std::move(objects);
  }
  if (job.type == JobType::kPart) {
    out[kUploadId] = job.part.upload_id;
    out[kPartNumber] = job.part.number;
    out[kPartCount] = job.part.count;
    out[kPartSize] = job.part.part_size;
    put_if_set(out, kSourceEtag, job.part.source_etag);
  } else if (job.type == JobType::kListing) {
    put_if_set(out, kPrefix, job.listing.prefix);
    put_if_set(out, kStartAfter, job.listing.start_after);
    put_if_set(out, kEndAt, job.listing.end_at);
    put_if_set(out, kContinuation, job.listing.continuation_token);
    if (job.listing.delimiter_depth != 0) out[kDelimiterDepth] = job.listing.delimiter_depth;
  }
  if (job.attempts != 0) out[kAttempts] = job.attempts;
  if (job.recoveries != 0) out[kRecoveries] = job.recoveries;
  // Keys may hold any bytes; replace invalid UTF-8 rather than throw, so a
  // weird key still travels (it will fail visibly on the storage side).
  return out.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

Job decode_job(std::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) {
    malformed("payload of " + std::to_string(payload.size()) + " bytes exceeds " +
              std::to_string(kMaxPayloadBytes));
  }
  Json in = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (in.is_discarded()) malformed("not JSON");
  if (!in.is_object()) malformed("not a JSON object");
  Job job;
  job.id = read_string(in, kId, "", true);
  job.type = decode_type(in);
  job.migration = read_string(in, kMigration, "", true);
  job.source = read_string(in, kSource, "", true);
  job.target = read_string(in, kTarget, "", true);
  if (job.type == JobType::kCopy) {
    decode_objects(in, job);
  } else if (job.type == JobType::kPart) {
    decode_part(in, job);
  } else {
    decode_listing(in, job);
  }
  job.attempts = read_count(in, kAttempts);
  job.recoveries = read_count(in, kRecoveries);
  return job;
}

// 64 random bits as 11 URL-safe base64 characters: every queued job carries
// its id, so 5 characters fewer than hex is 5 bytes less Redis per job.
std::string new_job_id() {
  static constexpr char kDigits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::uint64_t bits = generator();
  std::string id(11, 'A');
  for (char& digit : id) {
    digit = kDigits[bits & 63];
    bits >>= 6;
  }
  return id;
}

std::string failure_key(const Job& job, std::size_t index) {
  if (job.type == JobType::kListing) return "listing:" + job.listing.prefix + (job.listing.start_after.empty() ? "" : " after " + job.listing.start_after);
  return job.objects.at(index).key;
}

std::optional<std::size_t> find_object_index(const Job& job, std::string_view key) {
  if (job.type == JobType::kListing) {
    return key == failure_key(job, 0) ? std::optional<std::size_t>(0) : std::nullopt;
  }
  for (std::size_t i = 0; i < job.objects.size(); ++i) {
    if (job.objects[i].key == key) return i;
  }
  return std::nullopt;
}

Job retry_job_for(const Job& job, std::size_t index) {
  if (job.type == JobType::kListing || job.objects.size() == 1) return reset_for_retry(job);
  Job single = job;
  single.id = job.id + "-" + std::to_string(index);
  single.objects = {job.objects.at(index)};
  return reset_for_retry(std::move(single));
}

std::string utc_timestamp(std::chrono::system_clock::time_point time) {
  return format_utc(time, "%Y-%m-%dT%H:%M:%SZ");
}

void validate_migration_name(std::string_view name) {
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  };
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) ok = ok && allowed(c);
  if (!ok) {
    // The name is echoed with control bytes escaped so the error stays one line.
    const std::string shown = printable(name.substr(0, 80));
    throw config_error("invalid migration name \"" + shown + (name.size() > 80 ? "…" : "") +
                       "\": use 1 to 64 letters, digits, '-', '_' or '.'");
  }
}

}  // namespace blobferry
