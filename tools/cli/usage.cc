#include "tools/cli/usage.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>

namespace carrel::cli {
namespace {

std::vector<std::string> subcommand_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (size_t i = 0; i < words.size(); ++i) {
    s += i == 0 ? "" : i + 1 == words.size() ? " or " : ", ";
    s += words[i];
  }
  return s;
}

// "carrel kv" for the messages of a nested command.
std::string path_of(const std::vector<std::string>& words) {
  std::string s = "carrel";
  for (const auto& w : words) s += " " + w;
  return s;
}

// Digits only, no sign or fraction, at least 1 and no larger than int64_t
// holds. A larger count is the command's to refuse, naming its own limit.
std::string check_count(const std::string& text, const char* what) {
  bool digits = !text.empty() &&
                std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (digits && ec == std::errc::result_out_of_range) {
    return "'" + text.substr(0, 40) + "' is larger than " +
           std::to_string(std::numeric_limits<int64_t>::max());
  }
  if (!digits || ec != std::errc() || end != text.data() + text.size() || value < 1) {
    return "'" + text.substr(0, 40) + "' is not " + what;
  }
  return {};
}

}  // namespace

CLI::Validator positive_count() {
  return CLI::Validator(
      [](std::string& text) { return check_count(text, "a whole number of 1 or more"); },
      "POSITIVE");
}

CLI::Validator positive_ms() {
  return CLI::Validator(
      [](std::string& text) {
        return check_count(text, "a whole number of milliseconds of 1 or more");
      },
      "POSITIVE");
}

std::optional<std::string> command_word_error(const CLI::App& app, int argc, char** argv) {
  const CLI::App* at = &app;
  std::vector<std::string> path;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help" || arg == "--help-all" || arg == "--version") {
      return std::nullopt;  // CLI11 answers these without a command
    }
    if (arg == "--") break;
    if (!arg.empty() && arg[0] == '-') {
      if (arg == "--dir") ++i;  // its value follows
      continue;
    }
    std::vector<std::string> names = subcommand_names(*at);
    if (names.empty()) return std::nullopt;  // a leaf command: the rest are its arguments
    if (std::find(names.begin(), names.end(), arg) == names.end()) {
      std::string m = "unknown command '" + std::string(arg.substr(0, 40)) + "'";
      if (!path.empty()) m += " for '" + path_of(path) + "'";
      if (auto near = nearest_word(arg, names)) m += "; did you mean '" + *near + "'?";
      return m + " (commands: " + joined(names) + ")";
    }
    path.emplace_back(arg);
    at = at->get_subcommand(std::string(arg));
  }
  std::vector<std::string> names = subcommand_names(*at);
  if (names.empty()) return std::nullopt;
  return "'" + path_of(path) + "' needs a command: " + joined(names) + " (see " + path_of(path) +
         " --help)";
}

}  // namespace carrel::cli
