// Paperclip's path interpolation (":class/:attachment/:id_partition/:style/:filename")
// for one record: where Paperclip stored its file.
#include "enqueuer/sources/paperclip/paperclip_path.h"

#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/base/encoding.h"
#include "common/base/error.h"
#include "enqueuer/sources/paperclip/paperclip_inflector.h"

namespace blobferry {
namespace {

// Paperclip replaces its interpolations in reverse alphabetical order, one
// gsub each over the whole string: ":id_partition" goes before ":id", and a
// value that itself contains a later token is interpolated again. Matching
// that order reproduces its paths exactly.
const std::vector<std::string>& replacement_order() {
  static const std::vector<std::string> order = [] {
    std::vector<std::string> names = {"attachment", "basename", "class",      "dotextension", "extension",
                                      "filename",   "fingerprint", "hash",    "id",           "id_partition",
                                      "param",      "style",    "updated_at"};
    std::sort(names.rbegin(), names.rend());
    return names;
  }();
  return order;
}

// Interpolations Paperclip has that need the app itself (time zone, Rails
// root, MIME database, URL options): a user writes their value literally.
const std::vector<std::string>& app_dependent() {
  static const std::vector<std::string> names = {"content_type_extension", "rails_env", "rails_root", "timestamp",
                                                 "url"};
  return names;
}

bool is_token_char(char c) { return std::islower(static_cast<unsigned char>(c)) || c == '_'; }

void replace_all(std::string& text, const std::string& token, const std::string& value) {
  for (std::size_t at = text.find(token); at != std::string::npos; at = text.find(token, at + value.size())) {
    text.replace(at, token.size(), value);
  }
}

std::string basename_of(const std::string& file_name) {
  const std::size_t dot = file_name.rfind('.');
  // File.basename(name, ".*") keeps a leading-dot name like ".env" whole.
  if (dot == std::string::npos || dot == 0) return file_name;
  return file_name.substr(0, dot);
}

std::string extension_of(const std::string& file_name) {
  const std::size_t dot = file_name.rfind('.');
  if (dot == std::string::npos || dot == 0) return "";
  return file_name.substr(dot + 1);
}

// The token a ':' at `at` starts, by the longest name Paperclip would match there.
std::string token_at(const std::string& text, std::size_t at) {
  std::size_t end = at + 1;
  while (end < text.size() && is_token_char(text[end])) ++end;
  return text.substr(at + 1, end - at - 1);
}

bool starts_with_known(const std::string& word) {
  for (const std::string& name : replacement_order()) {
    if (word.rfind(name, 0) == 0) return true;
  }
  return false;
}

}  // namespace

PaperclipPath::PaperclipPath(PaperclipPathOptions options)
    : options_(std::move(options)),
      class_folder_(PaperclipInflector::pluralize(PaperclipInflector::underscore(options_.class_name))),
      attachment_folder_(PaperclipInflector::pluralize(options_.attachment)) {
  const std::string& text = options_.path_template;
  for (std::size_t at = text.find(':'); at != std::string::npos; at = text.find(':', at + 1)) {
    const std::string word = token_at(text, at);
    if (word.empty() || starts_with_known(word)) continue;
    const bool needs_app =
        std::find(app_dependent().begin(), app_dependent().end(), word) != app_dependent().end();
    throw config_error("--path '" + text + "': unknown interpolation :" + word +
                       (needs_app ? " (it depends on the running app: write its value literally)"
                                  : " (known: :class :attachment :id :id_partition :param :style :filename "
                                    ":basename :extension :dotextension :fingerprint :updated_at :hash)"));
  }
  if (text.find(":hash") != std::string::npos && options_.hash_secret.empty()) {
    throw config_error("--path '" + text + "' uses :hash: give the app's :hash_secret with --hash-secret");
  }
  if (options_.class_name.empty() || options_.attachment.empty()) {
    throw config_error("--source paperclip needs --record-type (the model, e.g. User) and --attachment (e.g. avatar)");
  }
}

std::string PaperclipPath::id_partition(const std::string& id, bool integer_id) {
  if (!integer_id) {
    // Ruby's id.scan(/.{3}/).first(3): whole groups of three only.
    std::string out;
    for (std::size_t i = 0; i + 3 <= id.size() && i < 9; i += 3) {
      if (!out.empty()) out += '/';
      out += id.substr(i, 3);
    }
    return out;
  }
  const long long value = std::stoll(id);
  char digits[32];
  std::snprintf(digits, sizeof digits, value < 1000000000LL ? "%09lld" : "%012lld", value);
  const std::string padded = digits;
  std::string out;
  // scan(/\d{3}/): a number longer than twelve digits keeps whole groups only.
  for (std::size_t i = 0; i + 3 <= padded.size(); i += 3) {
    if (!out.empty()) out += '/';
    out += padded.substr(i, 3);
  }
  return out;
}

std::string PaperclipPath::hash_of(const PaperclipRecord& record) const {
  const std::string data = interpolate(options_.hash_data, record);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!HMAC(EVP_sha1(), options_.hash_secret.data(), static_cast<int>(options_.hash_secret.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &length)) {
    throw Error(ErrorKind::kPermanent, FailureReason::kHmacFailed, "HMAC-SHA1 of Paperclip's hash_data failed");
  }
  return hex_encode(std::string_view(reinterpret_cast<const char*>(mac), length));
}

std::string PaperclipPath::value_of(const std::string& name, const PaperclipRecord& record) const {
  if (name == "attachment") return attachment_folder_;
  if (name == "basename") return basename_of(record.file_name);
  if (name == "class") return class_folder_;
  if (name == "extension") return extension_of(record.file_name);
  if (name == "dotextension") {
    const std::string ext = extension_of(record.file_name);
    return ext.empty() ? ext : "." + ext;
  }
  if (name == "filename") return record.file_name;
  if (name == "fingerprint") return record.fingerprint;
  if (name == "hash") return hash_of(record);
  if (name == "id" || name == "param") return record.id;
  if (name == "id_partition") return id_partition(record.id, record.integer_id);
  if (name == "style") return options_.style;
  if (name == "updated_at") return record.updated_at ? std::to_string(*record.updated_at) : "";
  return ":" + name;
}

std::string PaperclipPath::interpolate(const std::string& pattern, const PaperclipRecord& record) const {
  std::string result = pattern;
  for (const std::string& name : replacement_order()) {
    const std::string token = ":" + name;
    if (result.find(token) == std::string::npos) continue;
    replace_all(result, token, value_of(name, record));
  }
  return result;
}

std::string PaperclipPath::key_for(const PaperclipRecord& record) const {
  std::string key = interpolate(options_.path_template, record);
  // Paperclip's S3 paths and filesystem paths both may start with '/'; a
  // bucket key or a path under a Disk root does not.
  const std::size_t first = key.find_first_not_of('/');
  return first == std::string::npos ? "" : key.substr(first);
}

}  // namespace blobferry
