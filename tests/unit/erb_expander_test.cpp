// ErbExpander: the supported ERB forms, and errors that name the line and never an env value.
#include "common/storage/erb_expander.h"

#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "common/base/error.h"
#include "tests/support/fixed_env.h"

namespace blobferry {
namespace {

using testing::fixed_env;

std::string expand(const std::string& text, std::map<std::string, std::string> env = {}) {
  return ErbExpander(fixed_env(std::move(env)), "/srv/app").expand(text, "config/storage.yml");
}

// The Error expand throws, so a test can look at kind and message.
Error expansion_error(const std::string& text, std::map<std::string, std::string> env = {}) {
  try {
    expand(text, std::move(env));
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error for: " << text;
  return Error(ErrorKind::kTransient, FailureReason::kUnknown, "");
}

TEST(ErbExpander, TextWithoutTagsIsUnchanged) {
  EXPECT_EQ(expand("a: 1\nb: \"two\" # %> not a tag\n"), "a: 1\nb: \"two\" # %> not a tag\n");
}

TEST(ErbExpander, EnvIndexWithEitherQuote) {
  const std::map<std::string, std::string> env = {{"BUCKET", "photos"}};
  EXPECT_EQ(expand("bucket: <%= ENV[\"BUCKET\"] %>", env), "bucket: photos");
  EXPECT_EQ(expand("bucket: <%= ENV['BUCKET'] %>", env), "bucket: photos");
  EXPECT_EQ(expand("bucket: <%=ENV['BUCKET']%>", env), "bucket: photos");
  EXPECT_EQ(expand("bucket: <%=   ENV [ \"BUCKET\" ]\t%>", env), "bucket: photos");
}

TEST(ErbExpander, UnsetEnvIndexIsEmpty) { EXPECT_EQ(expand("key: <%= ENV[\"NOPE\"] %>!"), "key: !"); }

TEST(ErbExpander, EnvFetchWithAndWithoutDefault) {
  const std::map<std::string, std::string> env = {{"REGION", "eu-west-1"}};
  EXPECT_EQ(expand("<%= ENV.fetch(\"REGION\") %>", env), "eu-west-1");
  EXPECT_EQ(expand("<%= ENV.fetch('REGION', 'us-east-1') %>", env), "eu-west-1");
  EXPECT_EQ(expand("<%= ENV.fetch( \"MISSING\" , \"us-east-1\" ) %>", env), "us-east-1");
  EXPECT_EQ(expand("<%= ENV.fetch('MISSING', nil) %>", env), "");
  EXPECT_EQ(expand("<%= ENV.fetch(\"EMPTY\") %>", {{"EMPTY", ""}}), "");
}

TEST(ErbExpander, EnvFetchOfUnsetVariableNamesItAndTheLine) {
  const Error error = expansion_error("a: 1\nb: 2\nsecret: <%= ENV.fetch(\"AWS_SECRET_ACCESS_KEY\") %>\n");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  const std::string message = error.what();
  EXPECT_NE(message.find("AWS_SECRET_ACCESS_KEY is not set"), std::string::npos) << message;
  EXPECT_NE(message.find("config/storage.yml line 3"), std::string::npos) << message;
}

TEST(ErbExpander, RailsRootAndJoin) {
  EXPECT_EQ(expand("root: <%= Rails.root %>"), "root: /srv/app");
  EXPECT_EQ(expand("root: <%= Rails.root.join(\"storage\") %>"), "root: /srv/app/storage");
  EXPECT_EQ(expand("root: <%= Rails.root.join('tmp/storage') %>"), "root: /srv/app/tmp/storage");
  EXPECT_EQ(expand("root: <%= Rails.root.join(\"tmp\", 'storage', \"x y\") %>"), "root: /srv/app/tmp/storage/x y");
  EXPECT_EQ(expand("root: <%= Rails.root.join(\"/mnt/shared\") %>"), "root: /mnt/shared");
}

TEST(ErbExpander, RailsRootDefaultsToTheCurrentDirectory) {
  const std::string expanded = ErbExpander(fixed_env({})).expand("<%= Rails.root.join(\"s\") %>", "x.yml");
  EXPECT_EQ(expanded, std::filesystem::current_path().string() + "/s");
}

TEST(ErbExpander, RailsEnvNeedsRailsEnvSet) {
  EXPECT_EQ(expand("bucket: app-<%= Rails.env %>", {{"RAILS_ENV", "production"}}), "bucket: app-production");
  const Error error = expansion_error("bucket: app-<%= Rails.env %>");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("RAILS_ENV"), std::string::npos);
}

TEST(ErbExpander, CommentTagsVanish) {
  EXPECT_EQ(expand("a: 1 <%# note: uses ENV %>\nb: 2"), "a: 1 \nb: 2");
  EXPECT_EQ(expand("<%#\n multi\n line\n%>x"), "x");
}

TEST(ErbExpander, UnsupportedExpressionNamesFileLineAndSuggestsEnv) {
  const Error error = expansion_error(
      "amazon:\n  service: S3\n\n  secret_access_key: <%= Rails.application.credentials.dig(:aws, "
      ":secret_access_key) %>\n");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  const std::string message = error.what();
  EXPECT_EQ(message.rfind("unsupported ERB in config/storage.yml line 4: <%= Rails.application.credentials", 0), 0u)
      << message;
  EXPECT_NE(message.find("use <%= ENV[\"AWS_SECRET_ACCESS_KEY\"] %> instead"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
}

TEST(ErbExpander, ControlFlowTagsAreUnsupported) {
  const Error error = expansion_error("a: 1\n<% if ENV[\"X\"] %>\nb: 2\n<% end %>\n");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("line 2: <% if ENV[\"X\"] %>"), std::string::npos) << error.what();
}

TEST(ErbExpander, OtherRubyIsUnsupported) {
  for (const char* text : {"<%= ENV[\"A\"] || \"b\" %>", "<%= ENV.fetch(\"A\") { \"b\" } %>",
                           "<%= \"#{ENV['A']}\" %>", "<%= `cat /etc/passwd` %>", "<%= ENV[\"A\"].upcase %>",
                           "<%= Rails.root.join(\"a\").to_s.strip %>"}) {
    EXPECT_EQ(expansion_error(text).kind(), ErrorKind::kConfig) << text;
  }
}

TEST(ErbExpander, LineNumbersCountNewlinesInsideEarlierTags) {
  const Error error = expansion_error("<%#\n\n%>\nok: <%= ENV['A'] %>\nbad: <%= 1 + 1 %>\n");
  EXPECT_NE(std::string(error.what()).find("line 5:"), std::string::npos) << error.what();
}

TEST(ErbExpander, MultiLineExpressionIsShownOnOneLine) {
  const Error error = expansion_error("x: <%= Rails.application\n  .credentials\n  .dig(:r2, :access_key_id) %>");
  const std::string message = error.what();
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_NE(message.find("line 1"), std::string::npos) << message;
  EXPECT_NE(message.find("R2_ACCESS_KEY_ID"), std::string::npos) << message;
}

TEST(ErbExpander, ErrorsNeverContainEnvironmentValues) {
  const std::map<std::string, std::string> env = {{"AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRET"}};
  for (const char* text : {"a: <%= ENV['AWS_SECRET_ACCESS_KEY'] %>\nb: <%= ENV.fetch('MISSING') %>\n",
                           "a: <%= ENV['AWS_SECRET_ACCESS_KEY'] %>\nb: <%= ENV['AWS_SECRET_ACCESS_KEY'].strip %>\n",
                           "a: <%= ENV['AWS_SECRET_ACCESS_KEY'] %>\nb: <%= Rails.env %>\n"}) {
    const Error error = expansion_error(text, env);
    EXPECT_EQ(error.kind(), ErrorKind::kConfig) << text;
    EXPECT_NE(std::string(error.what()).find("line 2"), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find("wJalrXUtnFEMI"), std::string::npos) << error.what();
  }
}

TEST(ErbExpander, TagsInYamlCommentsAreIgnored) {
  // Rails' generated storage.yml ships commented-out credentials lookups.
  EXPECT_EQ(expand("# amazon:\n#   access_key_id: <%= Rails.application.credentials.dig(:aws, :access_key_id) %>\n"),
            "# amazon:\n#   access_key_id: \n");
  EXPECT_EQ(expand("a: 1 # <% if x %>"), "a: 1 # ");
  EXPECT_EQ(expand("a: \"#<%= ENV['A'] %>\"", {{"A", "v"}}), "a: \"#v\"");
}

TEST(ErbExpander, UnterminatedTagIsAnError) {
  const Error error = expansion_error("a: 1\nb: <%= ENV['A']\n");
  EXPECT_EQ(error.kind(), ErrorKind::kConfig);
  EXPECT_NE(std::string(error.what()).find("line 2"), std::string::npos) << error.what();
}

}  // namespace
}  // namespace blobferry
