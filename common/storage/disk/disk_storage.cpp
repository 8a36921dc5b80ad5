// Stores objects as files under a root folder, in ActiveStorage's layout or as plain relative paths.
#include "common/storage/disk/disk_storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <random>
#include <system_error>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/base/cancellation.h"
#include "common/base/digest.h"
#include "common/base/encoding.h"
#include "common/base/error.h"
#include "common/base/unique_fd.h"
#include "common/base/utc_time.h"

namespace blobferry {
namespace {

constexpr std::size_t kChunkSize = 256 * 1024;
constexpr std::string_view kReservedPrefix = ".blobferry-";  // temp and probe files (and older versions' staged parts)
constexpr char kTempPrefix[] = ".blobferry-tmp-";
constexpr char kProbePrefix[] = ".blobferry-probe-";
constexpr char kEtagAttribute[] = "user.blobferry.md5";
constexpr char kMetadataAttribute[] = "user.blobferry.metadata";

struct DirCloser {
  void operator()(DIR* dir) const { closedir(dir); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }

Error invalid_key(const std::string& key, const std::string& why) {
  return Error(ErrorKind::kPermanent, FailureReason::kInvalidKey, "key '" + printable(key) + "' " + why);
}

Error escape_attempt(const std::string& key, const std::string& detail) {
  return invalid_key(key, "would escape the Disk root (" + detail + ")");
}

// Translates a failed system call on path into an Error whose kind says
// whether a retry can help.
[[noreturn]] void throw_system(int err, const std::string& call, const std::string& path, const std::string& root) {
  const std::string what =
      call + "(" + printable(path) + ") failed: " + std::error_code(err, std::generic_category()).message();
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      throw Error(ErrorKind::kPermanent, FailureReason::kDiskFull, what + "; free space on the filesystem of " + root);
    case EACCES:
    case EPERM:
    case EROFS:
      throw Error(ErrorKind::kConfig, FailureReason::kConfig,
                  what + "; make the Disk root " + root +
                      " readable and writable by this user, or point its `root:` in storage.yml elsewhere");
    case ENAMETOOLONG:
      throw Error(ErrorKind::kPermanent, FailureReason::kInvalidKey, what);
    case EIO:
    case EAGAIN:
    case EINTR:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ESTALE:
    case ETIMEDOUT:
    case EBUSY:
      throw Error(ErrorKind::kTransient, FailureReason::kIo, what);
    default:
      throw Error(ErrorKind::kPermanent, FailureReason::kIo, what);
  }
}

// Bytes in the first `count` UTF-8 characters of text; nullopt when it is
// shorter. Rails' key[0..1] counts characters, not bytes.
std::optional<std::size_t> utf8_prefix_bytes(std::string_view text, int count) {
  std::size_t bytes = 0;
  for (int i = 0; i < count; ++i) {
    if (bytes >= text.size()) return std::nullopt;
    const unsigned char lead = static_cast<unsigned char>(text[bytes]);
    std::size_t width = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
    bytes = std::min(text.size(), bytes + width);
  }
  return bytes;
}

bool is_two_characters(std::string_view name) {
  auto two = utf8_prefix_bytes(name, 2);
  return two && *two == name.size();
}

std::vector<std::string> split_segments(const std::string& key) {
  std::vector<std::string> segments;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = key.find('/', start);
    segments.push_back(key.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return segments;
}

// The path of key below the root, one folder or file name per element.
// Every rule that keeps a key inside the root lives here.
std::vector<std::string> relative_segments(const std::string& key, DiskLayout layout) {
  if (key.empty()) throw invalid_key(key, "is empty");
  if (key.find('\0') != std::string::npos) throw escape_attempt(key, "it contains a NUL byte");
  if (key.front() == '/') throw escape_attempt(key, "it is an absolute path");
  std::vector<std::string> segments = split_segments(key);
  for (const std::string& segment : segments) {
    if (segment == "..") throw escape_attempt(key, "it has a '..' segment");
  }
  for (const std::string& segment : segments) {
    if (segment.empty()) {
      throw invalid_key(key, "has an empty path segment (a trailing or double '/'), which a folder tree cannot store");
    }
    if (segment == ".") throw invalid_key(key, "has a '.' segment, which a folder tree cannot store");
    if (starts_with(segment, kReservedPrefix)) {
      throw invalid_key(key, "starts a name with .blobferry-, which blobferry reserves for its own files on Disk");
    }
  }
  if (layout == DiskLayout::kPlain) return segments;

  const auto two = utf8_prefix_bytes(key, 2);
  const auto four = utf8_prefix_bytes(key, 4);
  if (!four) throw invalid_key(key, "is shorter than the 4 characters ActiveStorage's Disk layout needs; use layout: plain");
  const std::string first = key.substr(0, *two);
  const std::string second = key.substr(*two, *four - *two);
  if (first.find('/') != std::string::npos || second.find('/') != std::string::npos) {
    throw invalid_key(key, "has a '/' in its first 4 characters, which ActiveStorage's Disk layout cannot place; use layout: plain");
  }
  if (first == ".." || second == "..") throw escape_attempt(key, "its ActiveStorage folder would be '..'");
  segments.insert(segments.begin(), {first, second});
  return segments;
}

std::string join_segments(const std::vector<std::string>& segments, std::size_t count) {
  std::string path;
  for (std::size_t i = 0; i < count; ++i) path += (i == 0 ? "" : "/") + segments[i];
  return path;
}

std::string random_hex(std::size_t bytes) {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  std::string raw;
  while (raw.size() < bytes) {
    const std::uint64_t value = engine();
    raw.append(reinterpret_cast<const char*>(&value), std::min<std::size_t>(8, bytes - raw.size()));
  }
  return hex_encode(raw);
}

std::string iso8601(const struct timespec& time) {
  char millis[24];
  std::snprintf(millis, sizeof millis, ".%03ldZ", time.tv_nsec / 1000000);
  return format_utc(std::chrono::system_clock::from_time_t(time.tv_sec), "%Y-%m-%dT%H:%M:%S") + millis;
}

void write_all(int fd, std::string_view bytes, const std::string& path, const std::string& root) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      throw_system(errno, "write", path, root);
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
}

// Reads up to n bytes at offset; fewer only at the end of the file.
std::size_t read_at(int fd, char* buffer, std::size_t n, std::uint64_t offset, const std::string& path,
                    const std::string& root) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd, buffer + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_system(errno, "read", path, root);
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

std::string hash_file(int fd, std::uint64_t size, const std::string& path, const std::string& root) {
  std::vector<char> buffer(kChunkSize);
  Digest md5 = Digest::md5();
  for (std::uint64_t offset = 0; offset < size;) {
    const std::size_t got = read_at(fd, buffer.data(), buffer.size(), offset, path, root);
    if (got == 0) break;
    md5.update(std::string_view(buffer.data(), got));
    offset += got;
  }
  return hex_encode(md5.finish());
}

// The etag cache is trusted only while size and mtime are what they were
// when it was written, so a file rewritten in place by someone else is
// hashed again rather than reported with a stale etag.
std::string etag_cache_value(const std::string& etag, const struct stat& st) {
  return "v1 " + etag + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + " " +
         std::to_string(st.st_mtim.tv_nsec);
}

std::optional<std::string> cached_etag(int fd, const struct stat& st) {
  char value[128];
  const ssize_t length = fgetxattr(fd, kEtagAttribute, value, sizeof value - 1);
  if (length <= 0) return std::nullopt;
  const std::string text(value, static_cast<std::size_t>(length));
  if (text.compare(0, 3, "v1 ") != 0) return std::nullopt;
  const std::size_t end = text.find(' ', 3);
  if (end == std::string::npos || end < 3 + 32) return std::nullopt;
  const std::string etag = text.substr(3, end - 3);
  if (text != etag_cache_value(etag, st)) return std::nullopt;
  return etag;
}

// Best effort: without the cache head() hashes the file instead.
void store_etag(int fd, const std::string& etag) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return;
  const std::string value = etag_cache_value(etag, st);
  fsetxattr(fd, kEtagAttribute, value.data(), value.size(), 0);
}

Metadata read_metadata(int fd) {
  const ssize_t length = fgetxattr(fd, kMetadataAttribute, nullptr, 0);
  if (length <= 0) return {};
  std::string value(static_cast<std::size_t>(length), '\0');
  const ssize_t got = fgetxattr(fd, kMetadataAttribute, value.data(), value.size());
  if (got <= 0) return {};
  value.resize(static_cast<std::size_t>(got));
  Metadata metadata;
  const nlohmann::json pairs = nlohmann::json::parse(value, nullptr, false);
  if (!pairs.is_array()) return {};
  for (const auto& pair : pairs) {
    if (pair.is_array() && pair.size() == 2 && pair[0].is_string() && pair[1].is_string()) {
      metadata.emplace_back(pair[0].get<std::string>(), pair[1].get<std::string>());
    }
  }
  return metadata;
}

nlohmann::json metadata_json(const Metadata& metadata) {
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& [name, value] : metadata) pairs.push_back({name, value});
  return pairs;
}

void store_metadata(int fd, const Metadata& metadata, const std::string& path, const std::string& root) {
  if (metadata.empty()) return;
  const std::string value = metadata_json(metadata).dump();
  if (fsetxattr(fd, kMetadataAttribute, value.data(), value.size(), 0) == 0) return;
  const int err = errno;
  if (err == ENOTSUP || err == EOPNOTSUPP) return;  // this filesystem keeps no metadata; head() reports none
  if (err == E2BIG || err == ENOSPC || err == ERANGE) {
    throw Error(ErrorKind::kPermanent, FailureReason::kMetadataTooLarge,
                "setxattr(" + printable(path) + ") failed: " + std::to_string(value.size()) +
                    " bytes of metadata do not fit in this filesystem's extended attributes");
  }
  throw_system(err, "setxattr", path, root);
}

std::string expected_md5_hex(const std::string& content_md5, const std::string& key) {
  auto hex = base64_md5_to_hex(content_md5);
  if (!hex) {
    throw Error(ErrorKind::kPermanent, FailureReason::kInvalidDigest,
                "Content-MD5 for key '" + printable(key) + "' is not a base64 MD5: '" + content_md5 + "'");
  }
  return *hex;
}

void verify_md5(const std::string& actual_hex, const std::string& content_md5, const std::string& key) {
  if (content_md5.empty()) return;
  const std::string expected = expected_md5_hex(content_md5, key);
  if (actual_hex != expected) {
    throw Error(ErrorKind::kIntegrity, FailureReason::kIntegrity,
                "Content-MD5 mismatch for key '" + printable(key) + "': body hashed to " + actual_hex +
                    ", expected " + expected);
  }
}

enum class EntryType { kFolder, kFile, kOther };

struct FolderEntry {
  std::string name;
  EntryType type;
};

// What a folder entry is, without following a link: readdir's d_type when
// the filesystem fills it in (no extra system call per entry), else lstat.
EntryType entry_type(int folder, const struct dirent& entry) {
  switch (entry.d_type) {
    case DT_DIR: return EntryType::kFolder;
    case DT_REG: return EntryType::kFile;
    case DT_UNKNOWN: break;
    default: return EntryType::kOther;  // symbolic links are never followed
  }
  struct stat st {};
  if (fstatat(folder, entry.d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) return EntryType::kOther;
  if (S_ISDIR(st.st_mode)) return EntryType::kFolder;
  if (S_ISREG(st.st_mode)) return EntryType::kFile;
  return EntryType::kOther;
}

// Entries of a folder except "." and "..".
std::vector<FolderEntry> folder_entries(int folder, const std::string& path, const std::string& root) {
  const int copy = fcntl(folder, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) throw_system(errno, "dup", path, root);
  DirPtr dir(fdopendir(copy));
  if (!dir) {
    const int err = errno;
    ::close(copy);
    throw_system(err, "opendir", path, root);
  }
  std::vector<FolderEntry> entries;
  while (true) {
    errno = 0;
    const struct dirent* entry = readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) throw_system(errno, "readdir", path, root);
      break;
    }
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") entries.push_back({std::string(name), entry_type(folder, *entry)});
  }
  return entries;
}

// Opens folder `name` inside parent without following a link. An empty fd
// when it is missing (or is a file) and create is false.
UniqueFd open_child_folder(int parent, const std::string& name, bool create, const std::string& path,
                           const std::string& key, const std::string& root) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    const int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    const int err = errno;
    if (err == ENOENT) {
      if (!create) return {};
      if (mkdirat(parent, name.c_str(), 0777) != 0 && errno != EEXIST) throw_system(errno, "mkdir", path, root);
      fsync(parent);  // the new folder's entry must survive a crash with the file inside it
      continue;
    }
    if (err == ELOOP || err == ENOTDIR) {
      struct stat st {};
      if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
        throw escape_attempt(key, printable(path) + " is a symbolic link, which blobferry does not follow");
      }
      if (!create) return {};
      throw Error(ErrorKind::kPermanent, FailureReason::kKeyConflict,
                  "key '" + printable(key) + "' cannot be stored: " + printable(path) + " is a file, not a folder");
    }
    throw_system(err, "open", path, root);
  }
  throw_system(ENOENT, "open", path, root);
}

// The folder holding a key's file, and the file's name in it.
struct Location {
  UniqueFd folder;  // empty when a folder on the way does not exist
  std::string name;
  std::string path;  // for messages
};

// A regular file opened for reading with its stat; fd empty when absent.
struct OpenedFile {
  UniqueFd fd;
  struct stat st {};
};

OpenedFile open_regular_file(int folder, const std::string& name, const std::string& path, const std::string& key,
                             const std::string& root) {
  OpenedFile file;
  // O_NONBLOCK: a FIFO planted in the tree must not hang the worker.
  file.fd = UniqueFd(openat(folder, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!file.fd) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return {};
    if (err == ELOOP) throw escape_attempt(key, printable(path) + " is a symbolic link, which blobferry does not follow");
    throw_system(err, "open", path, root);
  }
  if (fstat(file.fd.get(), &file.st) != 0) throw_system(errno, "fstat", path, root);
  if (!S_ISREG(file.st.st_mode)) return {};  // a folder or a device is no object
  return file;
}

// A file being written beside its final name; removed unless committed, so
// a failure at any step leaves nothing behind.
class TempFile {
 public:
  TempFile(int folder, const std::string& folder_path, const std::string& root) : folder_(folder), root_(root) {
    name_ = kTempPrefix + random_hex(8);
    path_ = folder_path + "/" + name_;
    fd_ = UniqueFd(openat(folder, name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!fd_) throw_system(errno, "open", path_, root);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!committed_) unlinkat(folder_, name_.c_str(), 0);
  }

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // Makes the bytes durable, then the name: fsync, close, rename, fsync folder.
  void commit(const std::string& final_name, const std::string& final_path, const std::string& key, bool durable) {
    if (durable && fsync(fd_.get()) != 0) throw_system(errno, "fsync", path_, root_);
    if (::close(fd_.release()) != 0) throw_system(errno, "close", path_, root_);
    if (renameat(folder_, name_.c_str(), folder_, final_name.c_str()) != 0) {
      const int err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) {
        throw Error(ErrorKind::kPermanent, FailureReason::kKeyConflict,
                    "key '" + printable(key) + "' cannot be stored: " + printable(final_path) + " is a folder");
      }
      throw_system(err, "rename", final_path, root_);
    }
    committed_ = true;
    if (durable && fsync(folder_) != 0) throw_system(errno, "fsync", final_path, root_);
  }

 private:
  int folder_;
  std::string root_;
  std::string name_;
  std::string path_;
  UniqueFd fd_;
  bool committed_ = false;
};

struct WrittenBody {
  std::string md5_hex;
  std::uint64_t size = 0;
};

WrittenBody write_body(int fd, ByteSource& body, const std::string& path, const std::string& key,
                       const std::string& root) {
  std::vector<char> buffer(kChunkSize);
  Digest md5 = Digest::md5();
  WrittenBody written;
  while (const std::size_t got = body.read(buffer.data(), buffer.size())) {
    CancellationToken::throw_if_current_cancelled("write " + key + " under " + root);
    const std::string_view chunk(buffer.data(), got);
    md5.update(chunk);
    write_all(fd, chunk, path, root);
    written.size += got;
  }
  if (written.size != body.size()) {
    throw Error(ErrorKind::kIntegrity, FailureReason::kIntegrity,
                "body for key '" + printable(key) + "' had " + std::to_string(written.size) + " bytes, expected " +
                    std::to_string(body.size()));
  }
  written.md5_hex = hex_encode(md5.finish());
  return written;
}

// One page of a sorted walk of the tree. Entries of each folder are visited
// in an order that yields keys in byte order ("a-b" before "a/…": a folder
// sorts as its name plus '/'), and whole folders are skipped when no key in
// them can be on this page, so a page costs what it returns, not the tree.
class DiskLister {
 public:
  DiskLister(const ListRequest& request, std::string root) : request_(request), root_(std::move(root)) {
    max_keys_ = request.max_keys <= 0 || request.max_keys > 1000 ? 1000 : static_cast<std::size_t>(request.max_keys);
    lower_bound_ = std::max(request.start_after, request.continuation_token);
    // A token that rolls up under the delimiter was a common prefix: the
    // next page starts after every key below it.
    const std::string& token = request.continuation_token;
    if (!token.empty() && !request.delimiter.empty() && starts_with(token, request.prefix) &&
        token.find(request.delimiter, request.prefix.size()) != std::string::npos) {
      finished_prefix_ = token;
    }
  }

  ListPage run(int root_fd, DiskLayout layout) {
    if (layout == DiskLayout::kPlain) {
      walk_tree(root_fd, "", root_);
    } else {
      walk_activestorage(root_fd);
    }
    if (truncated_) page_.next_continuation_token = last_returned_;
    return std::move(page_);
  }

 private:
  struct Entry {
    std::string name;
    EntryType type;
    std::string sort_key;
  };

  static bool compatible(std::string_view a, std::string_view b) { return starts_with(a, b) || starts_with(b, a); }

  // Whether some key starting with key_prefix may belong on this page.
  bool may_contain(const std::string& key_prefix) const {
    if (!compatible(key_prefix, request_.prefix) || !compatible(key_prefix, folder_prefix_)) return false;
    if (key_prefix < lower_bound_ && !starts_with(lower_bound_, key_prefix)) return false;
    if (!finished_prefix_.empty() && starts_with(key_prefix, finished_prefix_)) return false;
    if (!last_prefix_.empty() && starts_with(key_prefix, last_prefix_)) return false;
    return true;
  }

  std::vector<Entry> entries(int folder, const std::string& path, bool folders_only) const {
    std::vector<Entry> found;
    for (auto& [name, type] : folder_entries(folder, path, root_)) {
      if (starts_with(name, kReservedPrefix)) continue;
      if (type == EntryType::kOther || (folders_only && type != EntryType::kFolder)) continue;
      std::string sort_key = name + (type == EntryType::kFolder && !folders_only ? "/" : "");
      found.push_back({std::move(name), type, std::move(sort_key)});
    }
    std::sort(found.begin(), found.end(), [](const Entry& a, const Entry& b) { return a.sort_key < b.sort_key; });
    return found;
  }

  // Returns false once the page is full.
  bool walk_tree(int folder, const std::string& key_prefix, const std::string& path) {
    for (const Entry& entry : entries(folder, path, false)) {
      const std::string key = key_prefix + entry.name;
      const std::string entry_path = path + "/" + entry.name;
      if (entry.type == EntryType::kFile) {
        if (!visit_file(folder, entry.name, key, entry_path)) return false;
        continue;
      }
      if (!may_contain(key + "/")) continue;
      UniqueFd child(openat(folder, entry.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!child) continue;  // removed or replaced by a link since it was read
      if (!walk_tree(child.get(), key + "/", entry_path)) return false;
    }
    return true;
  }

  // root/ab/cd/<key>: two levels of two-character folders, then each
  // folder's keys, which all start with those four characters.
  bool walk_activestorage(int root_fd) {
    for (const Entry& first : entries(root_fd, root_, true)) {
      if (!is_two_characters(first.name) || !may_contain(first.name)) continue;
      UniqueFd first_fd(openat(root_fd, first.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!first_fd) continue;
      const std::string first_path = root_ + "/" + first.name;
      for (const Entry& second : entries(first_fd.get(), first_path, true)) {
        const std::string prefix = first.name + second.name;
        if (!is_two_characters(second.name) || !may_contain(prefix)) continue;
        UniqueFd second_fd(openat(first_fd.get(), second.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!second_fd) continue;
        folder_prefix_ = prefix;
        const bool more = walk_tree(second_fd.get(), "", first_path + "/" + second.name);
        folder_prefix_.clear();
        if (!more) return false;
      }
    }
    return true;
  }

  bool visit_file(int folder, const std::string& name, const std::string& key, const std::string& path) {
    if (!starts_with(key, folder_prefix_) || !starts_with(key, request_.prefix)) return true;
    if (key <= lower_bound_) return true;
    if (!finished_prefix_.empty() && starts_with(key, finished_prefix_)) return true;
    if (!last_prefix_.empty() && starts_with(key, last_prefix_)) return true;
    if (!request_.delimiter.empty()) {
      const std::size_t at = key.find(request_.delimiter, request_.prefix.size());
      if (at != std::string::npos) return add_prefix(key.substr(0, at + request_.delimiter.size()));
    }
    OpenedFile file = open_regular_file(folder, name, path, key, root_);
    if (!file.fd) return true;  // gone since the folder was read
    ObjectInfo info;
    info.key = key;
    info.size = static_cast<std::uint64_t>(file.st.st_size);
    info.etag = cached_etag(file.fd.get(), file.st).value_or("");
    info.last_modified = iso8601(file.st.st_mtim);
    return add_object(std::move(info));
  }

  bool has_room() {
    if (returned_ < max_keys_) return true;
    truncated_ = true;  // one more entry exists: there is a next page
    return false;
  }

  bool add_prefix(std::string prefix) {
    if (!has_room()) return false;
    last_prefix_ = prefix;
    last_returned_ = prefix;
    page_.common_prefixes.push_back(std::move(prefix));
    ++returned_;
    return true;
  }

  bool add_object(ObjectInfo info) {
    if (!has_room()) return false;
    last_returned_ = info.key;
    page_.objects.push_back(std::move(info));
    ++returned_;
    return true;
  }

  const ListRequest& request_;
  std::string root_;
  std::size_t max_keys_ = 1000;
  std::string lower_bound_;      // keys must sort after this
  std::string finished_prefix_;  // a common prefix a previous page returned
  std::string last_prefix_;      // the common prefix this page returned last
  std::string folder_prefix_;    // ActiveStorage layout: the current folder's four characters
  std::size_t returned_ = 0;
  bool truncated_ = false;
  std::string last_returned_;
  ListPage page_;
};

// Paths of one DiskStorage, kept out of the header so it stays the interface.
struct Resolver {
  const std::string& root;
  DiskLayout layout;

  // The root folder; empty when it does not exist and create is false.
  UniqueFd open_root(bool create) const {
    if (create) {
      std::error_code error;
      std::filesystem::create_directories(root, error);
      if (error) throw_system(error.value(), "mkdir", root, root);
    }
    UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd) return fd;
    const int err = errno;
    if (err == ENOENT && !create) return {};
    if (err == ENOTDIR) {
      throw Error(ErrorKind::kConfig, FailureReason::kConfig,
                  "Disk root " + root + " is not a folder; point its `root:` in storage.yml at a folder");
    }
    throw_system(err, "open", root, root);
  }

  Location locate(const std::string& key, bool create) const {
    const std::vector<std::string> segments = relative_segments(key, layout);
    Location location;
    location.name = segments.back();
    location.path = root + "/" + join_segments(segments, segments.size());
    UniqueFd folder = open_root(create);
    for (std::size_t i = 0; folder && i + 1 < segments.size(); ++i) {
      folder = open_child_folder(folder.get(), segments[i], create, root + "/" + join_segments(segments, i + 1), key, root);
    }
    location.folder = std::move(folder);
    return location;
  }

};

}  // namespace

DiskStorage::DiskStorage(const ServiceConfig& service) : root_(service.root), layout_(service.layout) {
  if (root_.empty()) throw config_error("service " + service.name + " (Disk) has no root; set `root:` in storage.yml");
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
}

std::string DiskStorage::describe() const {
  return "disk " + root_ + (layout_ == DiskLayout::kActiveStorage ? " (activestorage layout)" : " (plain layout)");
}

std::string DiskStorage::path_for(const std::string& key) const {
  const std::vector<std::string> segments = relative_segments(key, layout_);
  return root_ + "/" + join_segments(segments, segments.size());
}

void DiskStorage::check(Access access) {
  try {
    // A source is read only to blobferry: no folder created, no probe written.
    UniqueFd root_fd = Resolver{root_, layout_}.open_root(access == Access::kWrite);
    if (access == Access::kRead) return;
    const std::string probe = kProbePrefix + random_hex(8);
    UniqueFd fd(openat(root_fd.get(), probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw_system(errno, "open", root_ + "/" + probe, root_);
    fd.reset();
    if (unlinkat(root_fd.get(), probe.c_str(), 0) != 0) throw_system(errno, "unlink", root_ + "/" + probe, root_);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kConfig) throw;
    throw config_error("Disk root " + root_ + " is not usable: " + e.what());
  }
}

namespace {

// An object's open file and what its inode and attributes say, shared by
// head() and get(); nullopt when the key is not there.
struct OpenedObject {
  Location location;
  OpenedFile file;
  ObjectInfo info;
};

std::optional<OpenedObject> open_object(const std::string& root, DiskLayout layout, const std::string& key) {
  Location location = Resolver{root, layout}.locate(key, false);
  if (!location.folder) return std::nullopt;
  OpenedFile file = open_regular_file(location.folder.get(), location.name, location.path, key, root);
  if (!file.fd) return std::nullopt;
  ObjectInfo info;
  info.key = key;
  info.size = static_cast<std::uint64_t>(file.st.st_size);
  info.last_modified = iso8601(file.st.st_mtim);
  info.metadata = read_metadata(file.fd.get());
  return OpenedObject{std::move(location), std::move(file), std::move(info)};
}

}  // namespace

std::optional<ObjectInfo> DiskStorage::head(const std::string& key) {
  std::optional<OpenedObject> object = open_object(root_, layout_, key);
  if (!object) return std::nullopt;
  ObjectInfo& info = object->info;
  auto cached = cached_etag(object->file.fd.get(), object->file.st);
  info.etag = cached ? *cached : hash_file(object->file.fd.get(), info.size, object->location.path, root_);
  return std::move(info);
}

std::optional<ObjectInfo> DiskStorage::get(const std::string& key, const ByteSink& sink,
                                           std::optional<ByteRange> range) {
  std::optional<OpenedObject> object = open_object(root_, layout_, key);
  if (!object) return std::nullopt;
  const Location& location = object->location;
  const OpenedFile& file = object->file;
  ObjectInfo& info = object->info;
  const std::optional<std::string> cached = cached_etag(file.fd.get(), file.st);

  std::uint64_t first = 0;
  std::uint64_t end = info.size;  // exclusive
  if (range) {
    if (range->first > range->last || range->first >= info.size) {
      throw Error(ErrorKind::kPermanent, FailureReason::kInvalidRange,
                  "range " + std::to_string(range->first) + "-" + std::to_string(range->last) + " of key '" +
                      printable(key) + "' is outside its " + std::to_string(info.size) + " bytes",
                  416);
    }
    first = range->first;
    end = std::min(info.size, range->last + 1);
  }

  // A whole read is hashed on the way, so the etag costs no second pass.
  const bool hash_while_reading = !range && !cached;
  Digest md5 = Digest::md5();
  std::vector<char> buffer(kChunkSize);
  for (std::uint64_t offset = first; offset < end;) {
    CancellationToken::throw_if_current_cancelled("read " + printable(location.path));
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), end - offset));
    const std::size_t got = read_at(file.fd.get(), buffer.data(), want, offset, location.path, root_);
    if (got == 0) {
      throw Error(ErrorKind::kTransient, FailureReason::kIo, "read(" + printable(location.path) + ") ended early: the file shrank");
    }
    const std::string_view chunk(buffer.data(), got);
    if (hash_while_reading) md5.update(chunk);
    sink(chunk);
    offset += got;
  }
  if (cached) {
    info.etag = *cached;
  } else if (hash_while_reading) {
    info.etag = hex_encode(md5.finish());
  }
  return std::move(info);
}

std::string DiskStorage::put(const std::string& key, ByteSource& body, const PutOptions& options) {
  if (!options.content_md5.empty()) expected_md5_hex(options.content_md5, key);  // reject a malformed digest before writing
  Location location = Resolver{root_, layout_}.locate(key, true);
  const std::string folder_path = location.path.substr(0, location.path.size() - location.name.size() - 1);
  TempFile temp(location.folder.get(), folder_path, root_);
  const WrittenBody written = write_body(temp.fd(), body, temp.path(), key, root_);
  verify_md5(written.md5_hex, options.content_md5, key);
  store_metadata(temp.fd(), options.metadata, temp.path(), root_);
  store_etag(temp.fd(), written.md5_hex);
  temp.commit(location.name, location.path, key, true);
  return written.md5_hex;
}

ListPage DiskStorage::list(const ListRequest& request) {
  UniqueFd root_fd = Resolver{root_, layout_}.open_root(false);
  if (!root_fd) {
    throw Error(ErrorKind::kConfig, FailureReason::kConfig,
                "Disk root " + root_ + " does not exist; check its `root:` in storage.yml");
  }
  return DiskLister(request, root_).run(root_fd.get(), layout_);
}

}  // namespace blobferry
