// Expands the few ERB forms Rails apps put in config/storage.yml (ENV lookups, Rails.root).
#include "common/storage/erb_expander.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/base/error.h"

namespace blobferry {

// One <% … %> tag as found in the text.
struct ErbExpander::Tag {
  std::string_view origin;
  int line = 0;
  bool output = false;      // <%= … %>
  bool comment = false;     // <%# … %>
  bool in_yaml_comment = false;
  std::string_view code;    // between the markers, untrimmed
};

namespace {

// The supported expressions, parsed.
struct Expression {
  enum class Kind { kEnvIndex, kEnvFetch, kRailsRoot, kRailsEnv } kind = Kind::kEnvIndex;
  std::vector<std::string> arguments;   // variable name, or Rails.root.join's parts
  std::optional<std::string> fallback;  // ENV.fetch's second argument (nil -> "")
};

void skip_spaces(std::string_view& rest) {
  while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
}

// Consumes token (after optional whitespace) when it comes next.
bool accept(std::string_view& rest, std::string_view token) {
  std::string_view probe = rest;
  skip_spaces(probe);
  if (probe.substr(0, token.size()) != token) return false;
  probe.remove_prefix(token.size());
  rest = probe;
  return true;
}

// A Ruby string literal without interpolation; nullopt when there is none.
std::optional<std::string> accept_string(std::string_view& rest) {
  std::string_view probe = rest;
  skip_spaces(probe);
  if (probe.empty() || (probe.front() != '"' && probe.front() != '\'')) return std::nullopt;
  const char quote = probe.front();
  probe.remove_prefix(1);
  std::string value;
  while (!probe.empty() && probe.front() != quote) {
    char c = probe.front();
    probe.remove_prefix(1);
    if (quote == '"' && c == '#' && !probe.empty() && probe.front() == '{') return std::nullopt;
    if (c == '\\' && !probe.empty()) {
      const char escaped = probe.front();
      if (quote == '\'' && escaped != '\'' && escaped != '\\') {
        value.push_back(c);  // single quotes keep other backslashes literally
        continue;
      }
      probe.remove_prefix(1);
      c = quote == '"' && escaped == 'n' ? '\n' : quote == '"' && escaped == 't' ? '\t' : escaped;
    }
    value.push_back(c);
  }
  if (probe.empty()) return std::nullopt;  // unterminated
  probe.remove_prefix(1);
  rest = probe;
  return value;
}

std::optional<Expression> parse_env(std::string_view rest) {
  Expression expression;
  if (accept(rest, "[")) {
    auto name = accept_string(rest);
    if (!name || !accept(rest, "]")) return std::nullopt;
    expression.kind = Expression::Kind::kEnvIndex;
    expression.arguments.push_back(*name);
  } else if (accept(rest, ".") && accept(rest, "fetch") && accept(rest, "(")) {
    auto name = accept_string(rest);
    if (!name) return std::nullopt;
    expression.kind = Expression::Kind::kEnvFetch;
    expression.arguments.push_back(*name);
    if (accept(rest, ",")) {
      if (auto fallback = accept_string(rest)) {
        expression.fallback = *fallback;
      } else if (accept(rest, "nil")) {
        expression.fallback = "";
      } else {
        return std::nullopt;
      }
    }
    if (!accept(rest, ")")) return std::nullopt;
  } else {
    return std::nullopt;
  }
  skip_spaces(rest);
  if (!rest.empty()) return std::nullopt;
  return expression;
}

std::optional<Expression> parse_rails(std::string_view rest) {
  Expression expression;
  if (!accept(rest, ".")) return std::nullopt;
  if (accept(rest, "env")) {
    expression.kind = Expression::Kind::kRailsEnv;
  } else if (accept(rest, "root")) {
    expression.kind = Expression::Kind::kRailsRoot;
    if (accept(rest, ".")) {
      if (!accept(rest, "join") || !accept(rest, "(")) return std::nullopt;
      do {
        auto part = accept_string(rest);
        if (!part) return std::nullopt;
        expression.arguments.push_back(*part);
      } while (accept(rest, ","));
      if (!accept(rest, ")")) return std::nullopt;
    }
  } else {
    return std::nullopt;
  }
  skip_spaces(rest);
  if (!rest.empty()) return std::nullopt;
  return expression;
}

std::optional<Expression> parse_expression(std::string_view code) {
  std::string_view rest = code;
  if (accept(rest, "ENV")) return parse_env(rest);
  if (accept(rest, "Rails")) return parse_rails(rest);
  return std::nullopt;
}

// Pathname#join: each part is appended, an absolute part starts over.
std::string join_path(std::string base, const std::vector<std::string>& parts) {
  for (const std::string& part : parts) {
    if (!part.empty() && part.front() == '/') {
      base = part;
    } else if (!part.empty()) {
      if (!base.empty() && base.back() != '/') base.push_back('/');
      base += part;
    }
  }
  return base;
}

// The tag as the user wrote it, on one line and short: messages stay one
// line, and a long expression is more likely to hold a literal secret.
std::string shown_tag(std::string_view opening, std::string_view code) {
  std::string collapsed;
  bool space = false;
  for (char c : code) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !collapsed.empty()) collapsed.push_back(' ');
    space = false;
    collapsed.push_back(c);
  }
  constexpr std::size_t kMaxShown = 40;
  if (collapsed.size() > kMaxShown) {
    std::size_t cut = kMaxShown;
    while (cut > 0 && (static_cast<unsigned char>(collapsed[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
    collapsed = collapsed.substr(0, cut) + "…";
  }
  return std::string(opening) + " " + collapsed + " %>";
}

std::string upper_identifier(std::string_view text) {
  std::string out;
  for (char c : text) out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return out;
}

// A plausible variable name for the suggestion, from the symbols an
// expression digs for: credentials.dig(:aws, :secret_access_key) ->
// AWS_SECRET_ACCESS_KEY.
std::string suggested_variable(std::string_view code) {
  std::vector<std::string_view> symbols;
  for (std::size_t i = 0; i + 1 < code.size(); ++i) {
    if (code[i] != ':' || (i > 0 && code[i - 1] == ':') || code[i + 1] == ':') continue;
    std::size_t end = i + 1;
    while (end < code.size() && (std::isalnum(static_cast<unsigned char>(code[end])) || code[end] == '_')) ++end;
    if (end > i + 1) symbols.push_back(code.substr(i + 1, end - i - 1));
  }
  if (symbols.empty()) return "NAME";
  if (symbols.size() == 1) return upper_identifier(symbols.back());
  const std::string_view scope = symbols[symbols.size() - 2];
  const std::string_view leaf = symbols.back();
  if (leaf.substr(0, scope.size()) == scope) return upper_identifier(leaf);
  return upper_identifier(scope) + "_" + upper_identifier(leaf);
}

// Whether a '#' outside quotes starts a YAML comment before the tag.
bool line_is_commented(std::string_view line_before_tag) {
  char quote = 0;
  for (std::size_t i = 0; i < line_before_tag.size(); ++i) {
    const char c = line_before_tag[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(line_before_tag[i - 1])))) {
      return true;
    }
  }
  return false;
}

std::string where(std::string_view origin, int line) {
  return std::string(origin) + " line " + std::to_string(line);
}

}  // namespace

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

ErbExpander::ErbExpander(EnvLookup env, std::string rails_root)
    : env_(std::move(env)), rails_root_(std::move(rails_root)) {
  if (rails_root_.empty()) rails_root_ = std::filesystem::current_path().string();
}

std::string ErbExpander::expand(std::string_view text, const std::string& origin) const {
  std::string out;
  out.reserve(text.size());
  int line = 1;
  std::size_t line_start = 0;
  std::size_t position = 0;
  while (position < text.size()) {
    const std::size_t open = text.find("<%", position);
    const std::size_t copy_end = open == std::string_view::npos ? text.size() : open;
    for (std::size_t i = position; i < copy_end; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    out.append(text.substr(position, copy_end - position));
    if (open == std::string_view::npos) break;

    Tag tag;
    tag.origin = origin;
    tag.line = line;
    tag.in_yaml_comment = line_is_commented(text.substr(line_start, open - line_start));
    std::size_t code_start = open + 2;
    if (code_start < text.size() && text[code_start] == '=') {
      tag.output = true;
      ++code_start;
    } else if (code_start < text.size() && text[code_start] == '#') {
      tag.comment = true;
      ++code_start;
    }
    const std::size_t close = text.find("%>", code_start);
    if (close == std::string_view::npos) {
      throw config_error("unterminated ERB tag in " + where(origin, line) + ": add the closing %>");
    }
    tag.code = text.substr(code_start, close - code_start);
    out += evaluate(tag);
    for (std::size_t i = open; i < close; ++i) {
      if (text[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    position = close + 2;
  }
  return out;
}

std::string ErbExpander::evaluate(const Tag& tag) const {
  if (tag.comment || tag.in_yaml_comment) return "";
  const std::optional<Expression> expression = tag.output ? parse_expression(tag.code) : std::nullopt;
  if (!expression) {
    throw config_error("unsupported ERB in " + where(tag.origin, tag.line) + ": " +
                       shown_tag(tag.output ? "<%=" : "<%", tag.code) + "; use <%= ENV[\"" +
                       suggested_variable(tag.code) + "\"] %> instead");
  }
  switch (expression->kind) {
    case Expression::Kind::kEnvIndex:
      return env_(expression->arguments.front()).value_or("");
    case Expression::Kind::kEnvFetch: {
      const std::string& name = expression->arguments.front();
      if (auto value = env_(name)) return *value;
      if (expression->fallback) return *expression->fallback;
      throw config_error("ENV.fetch(\"" + name + "\") in " + where(tag.origin, tag.line) + ": " + name +
                         " is not set; export it or give a default: ENV.fetch(\"" + name + "\", \"…\")");
    }
    case Expression::Kind::kRailsRoot:
      return join_path(rails_root_, expression->arguments);
    case Expression::Kind::kRailsEnv:
      // Guessing "development" could point a migration at the wrong bucket.
      if (auto value = env_("RAILS_ENV"); value && !value->empty()) return *value;
      throw config_error("Rails.env in " + where(tag.origin, tag.line) +
                         " needs RAILS_ENV: export RAILS_ENV=production (or the environment you migrate)");
  }
  return "";
}

}  // namespace blobferry
