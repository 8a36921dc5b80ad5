// Loads Rails' config/storage.yml (after ERB) into the services blobferry can open.
#include "common/storage/storage_config.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/storage/s3/provider_profile.h"
#include "common/budget/rate_parser.h"

namespace blobferry {
namespace {

// A service entry's keys with YAML merge keys (<<: *defaults) applied, which
// yaml-cpp leaves to the reader.
using Fields = std::map<std::string, YAML::Node>;

std::string key_text(const YAML::Node& key) { return key.IsScalar() ? key.Scalar() : std::string(); }

// yaml-cpp lets an alias refer to the map its anchor is still defining
// (`a: &a {<<: *a}`), so merges can loop, and aliases repeated in merge lists
// multiply; one entry may merge this many bases in all.
constexpr int kMaxMerges = 1000;

void merge_into(Fields& fields, const YAML::Node& map, int& merges_left);

void merge_base(Fields& fields, const YAML::Node& base, int& merges_left) {
  if (--merges_left < 0) {
    throw config_error("merge keys (<<) refer to themselves or merge more than " + std::to_string(kMaxMerges) +
                       " maps");
  }
  if (base.IsMap()) {
    Fields inherited;
    merge_into(inherited, base, merges_left);
    for (auto& [key, value] : inherited) fields.emplace(key, value);  // explicit keys win
  } else if (base.IsSequence()) {
    for (const YAML::Node& item : base) merge_base(fields, item, merges_left);
  }
}

void merge_into(Fields& fields, const YAML::Node& map, int& merges_left) {
  std::vector<YAML::Node> bases;
  for (const auto& entry : map) {
    const std::string key = key_text(entry.first);
    if (key == "<<") {
      bases.push_back(entry.second);
    } else {
      // Never YAML::Node's operator= on a node already stored: it rebinds
      // the document's node itself, which a duplicate key pointing at the
      // map being iterated (`a: &a {k: *a, k: 1}`) turns into a use after free.
      fields.erase(key);
      fields.emplace(key, entry.second);
    }
  }
  for (const YAML::Node& base : bases) merge_base(fields, base, merges_left);
}

Fields fields_of(const YAML::Node& map, const std::string& context) {
  Fields fields;
  int merges_left = kMaxMerges;
  try {
    merge_into(fields, map, merges_left);
  } catch (const Error& e) {
    throw config_error(context + ": " + e.what());
  }
  return fields;
}

// Reads one service entry; every problem is a config_error naming the
// service and the key, never a value (values may be secrets).
class FieldReader {
 public:
  FieldReader(const Fields& fields, std::string context) : fields_(fields), context_(std::move(context)) {}

  // Unset, null (an ERB that expanded to nothing) and "" all read as "".
  std::string text(const std::string& key) const {
    const YAML::Node* node = find(key);
    if (node == nullptr || node->IsNull()) return "";
    if (!node->IsScalar()) throw problem("`" + key + "` must be a single value");
    return node->Scalar();
  }

  bool flag(const std::string& key, bool fallback) const {
    const YAML::Node* node = find(key);
    if (node == nullptr || node->IsNull()) return fallback;
    try {
      return node->as<bool>();
    } catch (const YAML::Exception&) {
      throw problem("`" + key + "` must be true or false, not '" + text(key) + "'");
    }
  }

  int seconds(const std::string& key, int fallback) const {
    const YAML::Node* node = find(key);
    if (node == nullptr || node->IsNull()) return fallback;
    double value = 0;
    try {
      value = node->as<double>();
    } catch (const YAML::Exception&) {
      value = -1;
    }
    if (!(value > 0) || value > 86400) {
      throw problem("`" + key + "` must be a number of seconds between 1 and 86400, not '" + text(key) + "'");
    }
    return static_cast<int>(std::ceil(value));
  }

  const YAML::Node* find(const std::string& key) const {
    auto it = fields_.find(key);
    return it == fields_.end() ? nullptr : &it->second;
  }

  Error problem(const std::string& what) const { return config_error(context_ + ": " + what); }

 private:
  const Fields& fields_;
  std::string context_;
};

ServiceKind kind_of(const std::string& service_type) {
  const std::string type = lowercase(service_type);
  if (type == "s3") return ServiceKind::kS3;
  if (type == "disk") return ServiceKind::kDisk;
  if (type == "mirror") return ServiceKind::kMirror;
  return ServiceKind::kUnsupported;  // GCS, AzureStorage and anything newer
}

// Rails' `upload:` options (what ActiveStorage passes to every put_object and
// multipart upload), as the headers S3 takes them in. Keys Rails accepts but
// that are no header blobferry sets are accepted; an unknown key is a warning,
// since a newer aws-sdk option must not stop a migration.
Metadata upload_headers(const FieldReader& reader, std::vector<std::string>& warnings) {
  Metadata headers;
  const YAML::Node* upload = reader.find("upload");
  if (upload == nullptr || upload->IsNull()) return headers;
  if (!upload->IsMap()) throw reader.problem("`upload` must be a map of options");
  static const std::map<std::string, std::string> kHeaderOf = {
      {"cache_control", "cache-control"},
      {"content_disposition", "content-disposition"},
      {"content_encoding", "content-encoding"},
      {"content_language", "content-language"},
      {"expires", "expires"},
      {"acl", "x-amz-acl"},
      {"storage_class", "x-amz-storage-class"},
      {"server_side_encryption", "x-amz-server-side-encryption"},
      {"ssekms_key_id", "x-amz-server-side-encryption-aws-kms-key-id"},
      {"ssekms_encryption_context", "x-amz-server-side-encryption-context"},
      {"bucket_key_enabled", "x-amz-server-side-encryption-bucket-key-enabled"},
      {"tagging", "x-amz-tagging"},
  };
  // Accepted and not headers: content_type is each blob's own, the rest tune
  // the SDK's transfer (blobferry picks its own part sizes).
  static const std::set<std::string> kIgnored = {"content_type", "multipart_threshold", "part_size",
                                                 "thread_count", "checksum_algorithm", "content_md5"};
  for (const auto& option : *upload) {
    const std::string name = key_text(option.first);
    if (name == "metadata") {
      if (option.second.IsNull()) continue;
      if (!option.second.IsMap()) throw reader.problem("`upload.metadata` must be a map");
      for (const auto& item : option.second) {
        if (!item.second.IsScalar()) throw reader.problem("`upload.metadata." + key_text(item.first) + "` must be a single value");
        headers.emplace_back("x-amz-meta-" + lowercase(key_text(item.first)), item.second.Scalar());
      }
    } else if (auto header = kHeaderOf.find(name); header != kHeaderOf.end()) {
      if (!option.second.IsScalar()) throw reader.problem("`upload." + name + "` must be a single value");
      headers.emplace_back(header->second, option.second.Scalar());
    } else if (!kIgnored.count(name)) {
      warnings.push_back(reader.problem("`upload." + name + "` is not an option blobferry knows; ignored").what());
    }
  }
  return headers;
}

std::string first_set(const EnvLookup& env, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto value = env(name); value && !value->empty()) return *value;
  }
  return "";
}

// The budget keys; their values are rates, never secrets, so they may be quoted.
void read_budget(ServiceConfig& service, const FieldReader& reader) {
  try {
    if (const std::string rate = reader.text("max_requests_per_second"); !rate.empty()) {
      service.max_requests_per_second = parse_request_rate(rate, "`max_requests_per_second`");
    }
    if (const std::string bandwidth = reader.text("max_bandwidth"); !bandwidth.empty()) {
      service.max_bandwidth = parse_bandwidth(bandwidth, "`max_bandwidth`");
    }
  } catch (const Error& e) {
    throw reader.problem(e.what());
  }
}

void read_s3(ServiceConfig& service, const FieldReader& reader, const EnvLookup& env) {
  service.bucket = reader.text("bucket");
  if (service.bucket.empty()) throw reader.problem("`bucket` is missing or empty");
  service.endpoint = reader.text("endpoint");
  if (!service.endpoint.empty() && service.endpoint.rfind("https://", 0) != 0 &&
      service.endpoint.rfind("http://", 0) != 0) {
    throw reader.problem("`endpoint` must start with https:// (or http:// for a local server)");
  }
  service.region = reader.text("region");
  if (service.region.empty()) service.region = first_set(env, {"AWS_REGION", "AWS_DEFAULT_REGION"});
  if (service.region.empty()) service.region = "us-east-1";

  service.access_key_id = reader.text("access_key_id");
  service.secret_access_key = reader.text("secret_access_key");
  service.session_token = reader.text("session_token");
  if (service.access_key_id.empty()) {
    // Like the AWS SDK: credentials come as a set, from the file or the environment.
    if (!service.secret_access_key.empty()) throw reader.problem("`secret_access_key` is set but `access_key_id` is empty");
    service.access_key_id = first_set(env, {"AWS_ACCESS_KEY_ID"});
    service.secret_access_key = first_set(env, {"AWS_SECRET_ACCESS_KEY"});
    service.session_token = first_set(env, {"AWS_SESSION_TOKEN"});
  } else if (service.secret_access_key.empty()) {
    throw reader.problem("`access_key_id` is set but `secret_access_key` is empty (is its environment variable exported?)");
  }

  // Checked here so an unknown provider is one line at the first use of the service.
  service.provider = reader.text("provider");
  if (!service.provider.empty() && !parse_provider(service.provider)) {
    throw reader.problem("unknown `provider: " + service.provider + "`; use one of " + known_providers() +
                         ", or leave it out to infer it from the endpoint");
  }
  service.force_path_style = reader.flag("force_path_style", false);
  service.public_acl = reader.flag("public", false);
  service.verify_tls = reader.flag("ssl_verify_peer", true);
  service.ca_bundle = reader.text("ssl_ca_bundle");
  service.upload_headers = upload_headers(reader, service.warnings);
  service.http_open_timeout = reader.seconds("http_open_timeout", service.http_open_timeout);
  service.http_read_timeout = reader.seconds("http_read_timeout", service.http_read_timeout);
  read_budget(service, reader);
}

void read_disk(ServiceConfig& service, const FieldReader& reader) {
  service.root = reader.text("root");
  if (service.root.empty()) throw reader.problem("`root` is missing or empty");
  read_budget(service, reader);
  const std::string layout = lowercase(reader.text("layout"));
  if (layout.empty() || layout == "activestorage" || layout == "active_storage") {
    service.layout = DiskLayout::kActiveStorage;
  } else if (layout == "plain") {
    service.layout = DiskLayout::kPlain;
  } else {
    throw reader.problem("`layout` must be activestorage or plain, not '" + layout + "'");
  }
}

void read_mirror(ServiceConfig& service, const FieldReader& reader) {
  service.primary = reader.text("primary");
  const YAML::Node* mirrors = reader.find("mirrors");
  if (mirrors != nullptr && mirrors->IsSequence()) {
    for (const YAML::Node& mirror : *mirrors) {
      if (mirror.IsScalar()) service.mirrors.push_back(mirror.Scalar());
    }
  } else if (mirrors != nullptr && mirrors->IsScalar()) {
    service.mirrors.push_back(mirrors->Scalar());
  }
}

ServiceConfig read_service(const std::string& name, const YAML::Node& entry, const std::string& origin,
                           const EnvLookup& env) {
  const std::string context = "service '" + name + "' in " + origin;
  if (!entry.IsMap()) throw config_error(context + " is not a map of settings");
  const Fields fields = fields_of(entry, context);
  const FieldReader reader(fields, context);

  ServiceConfig service;
  service.name = name;
  service.service_type = reader.text("service");
  if (service.service_type.empty()) {
    throw reader.problem("no `service:` key (S3, Disk, Mirror, …); is it only a block of shared defaults?");
  }
  service.kind = kind_of(service.service_type);
  switch (service.kind) {
    case ServiceKind::kS3: read_s3(service, reader, env); break;
    case ServiceKind::kDisk: read_disk(service, reader); break;
    case ServiceKind::kMirror: read_mirror(service, reader); break;
    case ServiceKind::kUnsupported: break;
  }
  return service;
}

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string location = origin;
    if (!e.mark.is_null()) {
      location += " line " + std::to_string(e.mark.line + 1) + " column " + std::to_string(e.mark.column + 1);
    }
    throw config_error("YAML syntax error in " + location + ": " + e.msg +
                       "; check the indentation there and quote values containing ': ' or ' #'");
  }
}

// Rails.root for a file at <app>/config/storage.yml is <app>.
std::string rails_root_for(const std::string& path) {
  const std::filesystem::path folder = std::filesystem::absolute(path).parent_path();
  if (folder.filename() == "config") return folder.parent_path().string();
  return std::filesystem::current_path().string();
}

}  // namespace

StorageConfig StorageConfig::load(const std::string& path, EnvLookup env, const std::string& rails_root) {
  const std::string how_to = "; pass another with --storage-config PATH or BLOBFERRY_STORAGE_CONFIG";
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) throw config_error("storage config " + path + " not found" + how_to);
  if (!std::filesystem::is_regular_file(status)) throw config_error("storage config " + path + " is not a file" + how_to);
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  if (!file) throw config_error("storage config " + path + " cannot be read (check its permissions)" + how_to);
  return parse(text.str(), path, std::move(env), rails_root.empty() ? rails_root_for(path) : rails_root);
}

StorageConfig StorageConfig::parse(const std::string& yaml_text, const std::string& origin, EnvLookup env,
                                   const std::string& rails_root) {
  const std::string expanded = ErbExpander(env, rails_root).expand(yaml_text, origin);
  const YAML::Node document = parse_yaml(expanded, origin);
  if (document.IsNull() || (document.IsMap() && document.size() == 0)) {
    throw config_error(origin + " defines no services; add an entry such as `local:` with `service: Disk` and `root: storage`");
  }
  if (!document.IsMap()) throw config_error(origin + " must be a map of service names to their settings");

  StorageConfig config;
  config.origin_ = origin;
  for (const auto& entry : document) {
    const std::string name = key_text(entry.first);
    if (name.empty() || name == "<<") continue;
    if (std::find(config.names_.begin(), config.names_.end(), name) == config.names_.end()) {
      config.names_.push_back(name);
    }
    config.services_.erase(name);
    config.problems_.erase(name);
    try {
      config.services_.emplace(name, read_service(name, entry.second, origin, env));
    } catch (const Error& e) {
      config.problems_.emplace(name, e.what());
    }
  }
  return config;
}

const ServiceConfig& StorageConfig::service(const std::string& name) const {
  if (auto problem = problems_.find(name); problem != problems_.end()) throw config_error(problem->second);
  auto it = services_.find(name);
  if (it != services_.end()) return it->second;
  std::string known;
  for (const std::string& each : names_) known += (known.empty() ? "" : ", ") + each;
  throw config_error("unknown service '" + name + "': " + origin_ + " defines " +
                     (known.empty() ? std::string("none") : known));
}

std::vector<std::string> StorageConfig::names() const { return names_; }

std::string StorageConfig::masked(const std::string& secret) { return secret.empty() ? "" : "****"; }

std::string StorageConfig::masked_key_id(const std::string& access_key_id) {
  if (access_key_id.empty()) return "";
  // Only long ids (AWS's are 20) can spare four characters without giving much away.
  constexpr std::size_t kShownFrom = 16;
  const std::string shown = access_key_id.size() >= kShownFrom ? access_key_id.substr(0, 4) : "";
  return shown + "…(" + std::to_string(access_key_id.size()) + " chars)";
}

}  // namespace blobferry
