// Usage errors in words: argument validators with plain messages, and the
// unknown-command check that suggests the nearest command.
//
// Invariants:
//  (1) A usage error names the argument at fault and what it should be; it
//      never shows CLI11's internal wording (ranges of doubles, "A subcommand
//      is required").
//  (2) A suggestion is offered only when one command is clearly nearest
//      (nearest_word.h).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/cli/nearest_word.h"

namespace carrel::cli {

// A validator for a count option (--limit): a whole number of 1 or more.
// Its description stays "POSITIVE" so --help keeps its shape.
CLI::Validator positive_count();
// A validator for a whole number of milliseconds of 1 or more (--every).
CLI::Validator positive_ms();

// Checks the command words of argv against app's subcommands before CLI11
// parses (CLI11 would say "A subcommand is required"). Returns the message
// for an unknown or missing command, with the nearest command suggested.
std::optional<std::string> command_word_error(const CLI::App& app, int argc, char** argv);

}  // namespace carrel::cli
