// ActiveSupport's underscore and pluralize, as Paperclip applies them to class and attachment names.
#pragma once

#include <string>
#include <string_view>

namespace blobferry {

// Only the default English inflections Rails ships with: an app that added
// its own (config/initializers/inflections.rb) writes the folder literally in
// --path instead.
class PaperclipInflector {
 public:
  // "Admin::UserProfile" -> "admin/user_profile", "HTMLPage" -> "html_page".
  static std::string underscore(std::string_view class_name);
  // The last word of `word` in the plural: "admin/document" -> "admin/documents",
  // "person" -> "people", "photo_gallery" -> "photo_galleries".
  static std::string pluralize(std::string_view word);
};

}  // namespace blobferry
