// The open multipart uploads of a migration's giant objects, kept in Redis beside its queue: upload id, plan, parts done.
#include "common/queue/upload_records.h"

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/base/error.h"
#include "common/queue/redis_client.h"
#include "common/queue/redis_queue.h"

namespace blobferry {
namespace {

using Json = nlohmann::json;

// Every script gets KEYS[1] = uploads hash, KEYS[2] = the upload's parts hash,
// ARGV[1] = target key, ARGV[2] = upload id; -1 means the record is stale.
constexpr std::string_view kCheck = R"lua(
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return -1 end
if cjson.decode(rec).u ~= ARGV[2] then return -1 end
)lua";

constexpr std::string_view kRecordPart = R"lua(
local fresh = redis.call('HSETNX', KEYS[2], 'p:' .. ARGV[3], ARGV[4])
local done
if fresh == 1 then
  done = redis.call('HINCRBY', KEYS[2], 'done', 1)
else
  done = tonumber(redis.call('HGET', KEYS[2], 'done') or '0')
end
return {fresh, done}
)lua";

constexpr std::string_view kMarkPushed = "redis.call('HSET', KEYS[2], 'pushed', '1') return 1";
constexpr std::string_view kNoteUpload = "return redis.call('HINCRBY', KEYS[2], 'a:' .. ARGV[3], 1)";
constexpr std::string_view kForgetPart = R"lua(
if redis.call('HDEL', KEYS[2], 'p:' .. ARGV[3]) == 1 then redis.call('HINCRBY', KEYS[2], 'done', -1) end
return 1
)lua";
constexpr std::string_view kClose = R"lua(
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
)lua";

constexpr std::string_view kOpen = R"lua(
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
)lua";

std::string checked(std::string_view body) { return std::string(kCheck) + std::string(body); }

[[noreturn]] void malformed(const std::string& target_key, const std::string& what) {
  throw Error(ErrorKind::kPermanent, FailureReason::kMalformedJob,
              "malformed upload record of '" + target_key + "': " + what);
}

int to_int(const std::optional<std::string>& text) { return text ? std::stoi(*text) : 0; }

}  // namespace

UploadRecords::UploadRecords(std::shared_ptr<RedisClient> client, const std::string& migration)
    : client_(std::move(client)), prefix_("bf:{" + migration + "}:") {}

std::unique_ptr<UploadRecords> UploadRecords::of(JobQueue& queue) {
  auto* redis = dynamic_cast<RedisQueue*>(&queue);
  if (redis == nullptr) return nullptr;
  return std::make_unique<UploadRecords>(redis->client(), redis->migration());
}

std::string UploadRecords::parts_key(const std::string& upload_id) const { return prefix_ + "upload:" + upload_id; }

std::string UploadRecords::encode(const UploadRecord& record) {
  Json out{{"u", record.upload_id}, {"s", record.source},     {"t", record.target},
           {"k", record.source_key}, {"n", record.size},      {"ps", record.part_size},
           {"pc", record.part_count}, {"e", record.source_etag}, {"c", record.md5}};
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

UploadRecord UploadRecords::decode(const std::string& target_key, const std::string& json) {
  const Json in = Json::parse(json, nullptr, false);
  if (in.is_discarded() || !in.is_object()) malformed(target_key, "not a JSON object");
  UploadRecord record;
  record.target_key = target_key;
  try {
    record.upload_id = in.at("u").get<std::string>();
    record.source = in.at("s").get<std::string>();
    record.target = in.at("t").get<std::string>();
    record.source_key = in.at("k").get<std::string>();
    record.size = in.at("n").get<std::uint64_t>();
    record.part_size = in.at("ps").get<std::uint64_t>();
    record.part_count = in.at("pc").get<int>();
    record.source_etag = in.at("e").get<std::string>();
    record.md5 = in.at("c").get<std::string>();
  } catch (const Json::exception& e) {
    malformed(target_key, e.what());
  }
  if (record.upload_id.empty() || record.part_count < 1) malformed(target_key, "no upload id or part count");
  return record;
}

bool UploadRecords::open(const UploadRecord& record) {
  const RedisArgs keys{prefix_ + "uploads", parts_key(record.upload_id)};
  return reply_integer(*client_->eval(kOpen, keys, {record.target_key, encode(record)})) == 1;
}

bool UploadRecords::has_part(const UploadRecord& record, int number) {
  return reply_integer(*client_->command({"HEXISTS", parts_key(record.upload_id), "p:" + std::to_string(number)})) == 1;
}

std::optional<UploadRecord> UploadRecords::find(const std::string& target_key) {
  const auto json = reply_optional_string(*client_->command({"HGET", prefix_ + "uploads", target_key}));
  if (!json) return std::nullopt;
  return decode(target_key, *json);
}

std::vector<UploadProgress> UploadRecords::all() {
  const RedisReplyPtr reply = client_->command({"HGETALL", prefix_ + "uploads"});
  std::map<std::string, UploadProgress> sorted;
  for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
    const std::string key = reply_string(*reply->element[i]);
    UploadProgress progress;
    progress.record = decode(key, reply_string(*reply->element[i + 1]));
    const RedisReplyPtr parts = client_->command({"HGETALL", parts_key(progress.record.upload_id)});
    for (std::size_t j = 0; j + 1 < parts->elements; j += 2) {
      const std::string field = reply_string(*parts->element[j]);
      if (field == "done") progress.parts_done = static_cast<int>(reply_integer(*parts->element[j + 1]));
      if (field.starts_with("a:")) progress.part_uploads += static_cast<int>(reply_integer(*parts->element[j + 1]));
    }
    sorted.emplace(key, std::move(progress));
  }
  std::vector<UploadProgress> out;
  for (auto& [key, progress] : sorted) out.push_back(std::move(progress));
  return out;
}

bool UploadRecords::mark_pushed(const UploadRecord& record) {
  const RedisArgs keys{prefix_ + "uploads", parts_key(record.upload_id)};
  return reply_integer(*client_->eval(checked(kMarkPushed), keys, {record.target_key, record.upload_id})) == 1;
}

bool UploadRecords::pushed(const UploadRecord& record) {
  return reply_optional_string(*client_->command({"HGET", parts_key(record.upload_id), "pushed"})).has_value();
}

int UploadRecords::note_upload(const UploadRecord& record, int number) {
  const RedisArgs keys{prefix_ + "uploads", parts_key(record.upload_id)};
  return static_cast<int>(reply_integer(
      *client_->eval(checked(kNoteUpload), keys, {record.target_key, record.upload_id, std::to_string(number)})));
}

int UploadRecords::uploads_of(const UploadRecord& record, int number) {
  return to_int(reply_optional_string(
      *client_->command({"HGET", parts_key(record.upload_id), "a:" + std::to_string(number)})));
}

std::optional<UploadRecords::Recorded> UploadRecords::record_part(const UploadRecord& record, int number,
                                                                  const RecordedPart& part) {
  const RedisArgs keys{prefix_ + "uploads", parts_key(record.upload_id)};
  const RedisReplyPtr reply = client_->eval(
      checked(kRecordPart), keys, {record.target_key, record.upload_id, std::to_string(number), part.etag + " " + part.md5});
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return std::nullopt;
  return Recorded{reply_integer(*reply->element[0]) == 1, static_cast<int>(reply_integer(*reply->element[1]))};
}

bool UploadRecords::forget_part(const UploadRecord& record, int number) {
  const RedisArgs keys{prefix_ + "uploads", parts_key(record.upload_id)};
  return reply_integer(*client_->eval(checked(kForgetPart), keys,
                                      {record.target_key, record.upload_id, std::to_string(number)})) == 1;
}

std::map<int, RecordedPart> UploadRecords::parts(const UploadRecord& record) {
  const RedisReplyPtr reply = client_->command({"HGETALL", parts_key(record.upload_id)});
  std::map<int, RecordedPart> out;
  for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
    const std::string field = reply_string(*reply->element[i]);
    if (!field.starts_with("p:")) continue;
    const std::string value = reply_string(*reply->element[i + 1]);
    const auto space = value.find(' ');
    out[std::stoi(field.substr(2))] = RecordedPart{value.substr(0, space),
                                                   space == std::string::npos ? "" : value.substr(space + 1)};
  }
  return out;
}

bool UploadRecords::close(const UploadRecord& record) {
  const RedisArgs keys{prefix_ + "uploads", parts_key(record.upload_id)};
  return reply_integer(*client_->eval(checked(kClose), keys, {record.target_key, record.upload_id})) == 1;
}

void UploadRecords::purge() {
  std::vector<RedisArgs> commands;
  for (const UploadProgress& open : all()) commands.push_back({"DEL", parts_key(open.record.upload_id)});
  commands.push_back({"DEL", prefix_ + "uploads"});
  client_->pipeline(commands);
}

}  // namespace blobferry
