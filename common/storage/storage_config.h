// Loads Rails' config/storage.yml (after ERB) into the services blobferry can open.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/storage/erb_expander.h"
#include "common/storage/service_config.h"

namespace blobferry {

// Services are read leniently: a problem in one service (a missing bucket, a
// bad value) is reported when that service is asked for, so a broken entry
// the migration does not use cannot block it. Problems with the file itself
// (missing, YAML syntax, unsupported ERB) throw at load.
class StorageConfig {
 public:
  // Reads path. rails_root is what Rails.root means in the ERB; empty means
  // the folder above config/ when the file sits in a folder named config,
  // else the current directory. Throws Error of kind kConfig.
  static StorageConfig load(const std::string& path, EnvLookup env = process_environment(),
                            const std::string& rails_root = "");
  // origin names the text in error messages (usually its path).
  static StorageConfig parse(const std::string& yaml_text, const std::string& origin, EnvLookup env,
                             const std::string& rails_root = "");

  // Throws Error of kind kConfig for an unknown name (listing the known ones)
  // or a service whose entry is broken (saying what is wrong).
  const ServiceConfig& service(const std::string& name) const;
  // Every top-level service name, in file order.
  std::vector<std::string> names() const;
  const std::string& origin() const { return origin_; }

  // For display: nothing of a secret ("****", "" when unset).
  static std::string masked(const std::string& secret);
  // For display: at most the first 4 characters of an access key id and its
  // length, "AKIA…(20 chars)"; short ids show no characters at all.
  static std::string masked_key_id(const std::string& access_key_id);

 private:
  std::string origin_;
  std::vector<std::string> names_;
  std::map<std::string, ServiceConfig> services_;
  std::map<std::string, std::string> problems_;  // name -> what is wrong with its entry
};

}  // namespace blobferry
