// The perfq command-line tool's subcommands.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace perfq_cli {

/// Bad command-line usage: the tool prints the message and the usage, exits 2.
struct UsageError {
  std::string message;
};

// Each subcommand prints what it did on `out` and its warnings on `err`, and returns the
// exit status; errors are thrown (UsageError, perfq::Error).
int run_cbf(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_phantom(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_info(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_check(const std::vector<std::string>& args, std::ostream& out,
              std::ostream& err);  // cmd_check.cpp
int run_watershed(const std::vector<std::string>& args, std::ostream& out,
                  std::ostream& err);  // cmd_watershed.cpp
int run_stats(const std::vector<std::string>& args, std::ostream& out,
              std::ostream& err);  // cmd_stats.cpp
int run_bids(const std::vector<std::string>& args, std::ostream& out,
             std::ostream& err);  // cmd_bids.cpp
int run_report(const std::vector<std::string>& args, std::ostream& out,
               std::ostream& err);  // cmd_report.cpp
int run_resample(const std::vector<std::string>& args, std::ostream& out,
                 std::ostream& err);  // cmd_resample.cpp
int run_register(const std::vector<std::string>& args, std::ostream& out,
                 std::ostream& err);  // cmd_register.cpp

/// Runs `perfq <command> <args…>` as the tool does: the subcommand, with its errors printed
/// on `err` as the tool prints them (usage errors: exit status 2; other errors: 1). The
/// BIDS-App runs its steps through it, in its own process. Nothing when `command` is not a
/// subcommand.
std::optional<int> run_command(const std::string& command, const std::vector<std::string>& args,
                               std::ostream& out, std::ostream& err);

/// Checks `options` (perfq cbf's, without the series and -o) as perfq cbf would parse them:
/// throws UsageError for what it would refuse. Reads no file.
void check_cbf_options(const std::vector<std::string>& options);

extern const char* const kCbfHelp;
extern const char* const kPhantomHelp;

}  // namespace perfq_cli
