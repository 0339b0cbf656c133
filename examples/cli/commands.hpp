// The perfq command-line tool's subcommands.
#pragma once

#include <string>
#include <vector>

namespace perfq_cli {

/// Bad command-line usage: the tool prints the message and the usage, exits 2.
struct UsageError {
  std::string message;
};

int run_cbf(const std::vector<std::string>& args);
int run_phantom(const std::vector<std::string>& args);
int run_info(const std::vector<std::string>& args);
int run_watershed(const std::vector<std::string>& args);  // cmd_watershed.cpp
int run_stats(const std::vector<std::string>& args);      // cmd_stats.cpp
int run_bids(const std::vector<std::string>& args);       // cmd_bids.cpp
int run_report(const std::vector<std::string>& args);     // cmd_report.cpp

/// Checks `options` (perfq cbf's, without the series and -o) as perfq cbf would parse them:
/// throws UsageError for what it would refuse. Reads no file.
void check_cbf_options(const std::vector<std::string>& options);

extern const char* const kCbfHelp;
extern const char* const kPhantomHelp;

}  // namespace perfq_cli
