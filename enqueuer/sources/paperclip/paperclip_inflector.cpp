// ActiveSupport's underscore and pluralize, as Paperclip applies them to class and attachment names.
#include "enqueuer/sources/paperclip/paperclip_inflector.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <regex>
#include <utility>

#include "common/base/encoding.h"

namespace blobferry {
namespace {

bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_lower_or_digit(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// The last word, as ActiveSupport's uncountable test sees it (/\b\w+\Z/).
std::string last_word(std::string_view text) {
  std::size_t start = text.size();
  while (start > 0 && (std::isalnum(static_cast<unsigned char>(text[start - 1])) || text[start - 1] == '_')) --start;
  return lowercase(text.substr(start));
}

struct Rule {
  std::regex pattern;
  const char* replacement;
};

// ActiveSupport's default plural rules, most specific first (it tries the
// last-defined rule first; this list is already in that order). Irregulars
// match the end of the word, so "salesperson" becomes "salespeople" as in Rails.
const std::vector<Rule>& plural_rules() {
  static const std::vector<Rule> rules = [] {
    const auto icase = std::regex::ECMAScript | std::regex::icase;
    const std::vector<std::pair<const char*, const char*>> table = {
        {"(z)ombie$", "$1ombies"}, {"(m)ove$", "$1oves"},      {"(s)ex$", "$1exes"},
        {"(c)hild$", "$1hildren"}, {"(m)an$", "$1en"},         {"(p)erson$", "$1eople"},
        {"(quiz)$", "$1zes"},      {"^(oxen)$", "$1"},         {"^(ox)$", "$1en"},
        {"^(m|l)ice$", "$1ice"},   {"^(m|l)ouse$", "$1ice"},   {"(matr|vert|ind)(?:ix|ex)$", "$1ices"},
        {"(x|ch|ss|sh)$", "$1es"}, {"([^aeiouy]|qu)y$", "$1ies"}, {"(hive)$", "$1s"},
        {"(?:([^f])fe|([lr])f)$", "$1$2ves"}, {"sis$", "ses"}, {"([ti])a$", "$1a"},
        {"([ti])um$", "$1a"},      {"(buffal|tomat)o$", "$1oes"}, {"(bu)s$", "$1ses"},
        {"(alias|status)$", "$1es"}, {"(octop|vir)i$", "$1i"}, {"(octop|vir)us$", "$1i"},
        {"^(ax|test)is$", "$1es"}, {"s$", "s"},                 {"$", "s"},
    };
    std::vector<Rule> compiled;
    for (const auto& [pattern, replacement] : table) compiled.push_back({std::regex(pattern, icase), replacement});
    return compiled;
  }();
  return rules;
}

constexpr std::array<const char*, 10> kUncountable = {"equipment", "information", "rice", "money", "species",
                                                      "series",    "fish",        "sheep", "jeans", "police"};

}  // namespace

std::string PaperclipInflector::underscore(std::string_view class_name) {
  std::string path;
  for (std::size_t i = 0; i < class_name.size(); ++i) {
    if (class_name.compare(i, 2, "::") == 0) {
      path += '/';
      ++i;
    } else {
      path += class_name[i];
    }
  }
  std::string out;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (is_upper(c) && i > 0) {
      const char before = path[i - 1];
      const bool after_word = is_lower_or_digit(before);
      // "HTMLPage": the P starts a word because a lowercase letter follows it.
      const bool ends_acronym = is_upper(before) && i + 1 < path.size() && path[i + 1] >= 'a' && path[i + 1] <= 'z';
      if (after_word || ends_acronym) out += '_';
    }
    out += c == '-' ? '_' : c;
  }
  return lowercase(out);
}

std::string PaperclipInflector::pluralize(std::string_view word) {
  if (word.empty()) return "";
  const std::string last = last_word(word);
  if (std::find(kUncountable.begin(), kUncountable.end(), last) != kUncountable.end()) return std::string(word);
  const std::string text(word);
  for (const Rule& rule : plural_rules()) {
    if (std::regex_search(text, rule.pattern)) {
      return std::regex_replace(text, rule.pattern, rule.replacement, std::regex_constants::format_first_only);
    }
  }
  return text;
}

}  // namespace blobferry
