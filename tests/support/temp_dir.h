// A scratch folder under /tmp that is removed, with everything in it, when the owner goes.
#pragma once

#include <string>

namespace blobferry::testing {

// Creates /tmp/<prefix>-XXXXXX with mode 755 (so servers running as another
// user, like PostgreSQL's, can enter it) and returns its path. Throws
// std::runtime_error when mkdtemp fails.
std::string make_temp_dir(const std::string& prefix);

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "blobferry-test");
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/relative; creates nothing.
  std::string file(const std::string& relative) const { return path_ + "/" + relative; }

 private:
  void remove();
  std::string path_;
};

}  // namespace blobferry::testing
