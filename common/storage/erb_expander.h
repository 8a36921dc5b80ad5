// Expands the few ERB forms Rails apps put in config/storage.yml (ENV lookups, Rails.root).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace blobferry {

// Looks up one environment variable; nullopt when unset. Injected so tests
// neither depend on nor reveal the real environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// The process environment (getenv).
EnvLookup process_environment();

// Supports exactly:
//   <%= ENV["X"] %>, <%= ENV['X'] %>             unset expands to ""
//   <%= ENV.fetch("X") %>                        unset is an error naming X
//   <%= ENV.fetch("X", "default") %>, (…, nil)
//   <%= Rails.root %>, <%= Rails.root.join("a", "b") %>
//   <%= Rails.env %>                              RAILS_ENV, an error when unset
//   <%# comment %>
// with any whitespace inside the tag and either quote style. Anything else
// is an Error of kind kConfig naming the file, the line and the expression.
// Tags inside YAML comments expand to "" without complaint, as Rails' own
// generated storage.yml keeps commented-out credentials lookups.
class ErbExpander {
 public:
  // rails_root is what Rails.root stands for; empty means the current directory.
  explicit ErbExpander(EnvLookup env, std::string rails_root = "");

  // origin names the file in error messages.
  std::string expand(std::string_view text, const std::string& origin) const;

 private:
  struct Tag;
  std::string evaluate(const Tag& tag) const;

  EnvLookup env_;
  std::string rails_root_;
};

}  // namespace blobferry
