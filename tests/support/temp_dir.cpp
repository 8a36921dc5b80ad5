// A scratch folder under /tmp that is removed, with everything in it, when the owner goes.
#include "tests/support/temp_dir.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <utility>
#include <vector>

namespace blobferry::testing {

std::string make_temp_dir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  std::string path(buffer.data());
  if (::chmod(path.c_str(), 0755) != 0) {
    throw std::runtime_error("chmod 755 " + path + ": " + std::strerror(errno));
  }
  return path;
}

TempDir::TempDir(const std::string& prefix) : path_(make_temp_dir(prefix)) {}

TempDir::~TempDir() { remove(); }

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

void TempDir::remove() {
  if (path_.empty()) return;
  std::error_code ignored;  // a destructor cannot report; a leftover folder in /tmp is harmless
  std::filesystem::remove_all(path_, ignored);
  path_.clear();
}

}  // namespace blobferry::testing
