// Draws a block of status lines that redraws in place on a terminal.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

namespace blobferry {

// On a terminal each draw() moves the cursor back up over the previous block
// and clears each line before rewriting it, so a watch loop shows one live
// block; elsewhere (a pipe, a log file) each draw() just appends its lines,
// because escape codes would only garble the file.
class ProgressBar {
 public:
  ProgressBar(std::FILE* out, bool terminal);

  void draw(const std::vector<std::string>& lines);

  // "[#########-----------]" with `width` cells between the brackets; the
  // fraction is clamped to [0, 1]. Pure, so it is tested with fixed values.
  static std::string bar(double fraction, std::size_t width);

 private:
  std::FILE* out_;
  bool terminal_;
  std::size_t lines_drawn_ = 0;
};

}  // namespace blobferry
