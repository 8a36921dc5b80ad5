// Draws a block of status lines that redraws in place on a terminal.
#include "common/cli/progress_bar.h"

#include <algorithm>
#include <cmath>

namespace blobferry {

ProgressBar::ProgressBar(std::FILE* out, bool terminal) : out_(out), terminal_(terminal) {}

void ProgressBar::draw(const std::vector<std::string>& lines) {
  if (terminal_ && lines_drawn_ > 0) {
    // Cursor up over the previous block; each line is then cleared as it is
    // rewritten, and leftover lines of a longer previous block are blanked.
    std::fprintf(out_, "\x1b[%zuA", lines_drawn_);
  }
  for (const std::string& line : lines) {
    if (terminal_) std::fputs("\r\x1b[2K", out_);
    std::fputs(line.c_str(), out_);
    std::fputc('\n', out_);
  }
  if (terminal_) {
    for (std::size_t extra = lines.size(); extra < lines_drawn_; ++extra) std::fputs("\r\x1b[2K\n", out_);
    lines_drawn_ = std::max(lines_drawn_, lines.size());
  }
  std::fflush(out_);
}

std::string ProgressBar::bar(double fraction, std::size_t width) {
  if (!(fraction >= 0.0)) fraction = 0.0;  // also catches NaN
  fraction = std::min(fraction, 1.0);
  const auto filled = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(width)));
  return "[" + std::string(filled, '#') + std::string(width - filled, '-') + "]";
}

}  // namespace blobferry
