// Progress and outcomes of `perfq bids` (cmd_bids.cpp): one line per series as it
// finishes, a status line rewritten in place on a terminal, and the closing summary.
#pragma once

#include "bids_app.hpp"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

namespace perfq_cli {
namespace bids_app {

/// What became of one series.
struct Outcome {
  enum class Kind { Ok, Skipped, Failed } kind = Kind::Ok;
  std::string backend, step, message, log;
  std::vector<std::string> warnings;  ///< from the cbf sidecar's "Warnings"
  double seconds = 0;
};

/// The failing step's message: its stderr without the usage hint, else its last line.
inline std::string failure_message(const StepResult& r) {
  std::string message, line, last;
  std::istringstream err(r.err), out(r.out);
  while (std::getline(err, line)) {
    if (line.empty() || line.rfind("(see 'perfq", 0) == 0) continue;
    // "perfq cbf: error: X" → "X": the progress line already names the step.
    if (line.rfind("perfq ", 0) == 0 && line.find(": ") != std::string::npos) {
      line = line.substr(line.find(": ") + 2);
      if (line.rfind("error: ", 0) == 0) line = line.substr(7);
    }
    message += (message.empty() ? "" : " / ") + line;
  }
  while (message.empty() && std::getline(out, line)) {
    if (!line.empty()) last = line;
  }
  if (message.empty()) message = last;
  if (message.empty()) message = "exit status " + std::to_string(r.status);
  return message;
}

/// Progress lines, one per series as it finishes; on a terminal, also a status line
/// rewritten in place. Shared by the worker threads.
class Reporter {
 public:
  Reporter(std::size_t total, bool quiet, bool verbose)
      : total_(total),
        quiet_(quiet),
        verbose_(verbose),
        tty_(::isatty(STDOUT_FILENO) == 1 && !quiet) {}

  void started(const std::string& label) {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.push_back(label);
    status_line();
  }
  /// `source` names the series in the list of failures; `extra` ends an "ok" line.
  void finished(const std::string& label, const std::string& source, const Outcome& r,
                const std::string& extra) {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.erase(std::find(running_.begin(), running_.end(), label));
    ++done_;
    std::ostringstream line;
    line.setf(std::ios::fixed);
    line.precision(2);
    line << "[" << done_ << "/" << total_ << "] " << label << ": ";
    if (r.kind == Outcome::Kind::Failed) {
      ++failed_;
      failures_.push_back(source + ": " + r.step + ": " + r.message);
      line << "FAILED in " << r.step << ": " << r.message;
    } else if (r.kind == Outcome::Kind::Skipped) {
      ++skipped_;
      line << "skipped (outputs exist)";
    } else {
      ++ok_;
      line << "ok (" << (r.backend.empty() ? "?" : r.backend) << ", " << r.seconds << " s";
      line << extra << ")";
    }
    for (const auto& w : r.warnings) {
      warnings_.push_back(source + ": " + w);
      line << "\n  warning: " << w;
    }
    if (tty_) std::cout << "\r\033[K";
    if (!quiet_ || r.kind == Outcome::Kind::Failed) std::cout << line.str() << "\n";
    if (verbose_) std::cout << r.log;
    status_line();
  }
  int summary(double seconds) {
    if (tty_) std::cout << "\r\033[K";
    std::cout.setf(std::ios::fixed);
    std::cout.precision(1);
    std::cout << "perfq bids: " << total_ << " series in " << seconds << " s: " << ok_ << " ok, "
              << skipped_ << " skipped, " << failed_ << " failed\n";
    if (!warnings_.empty()) {
      std::cout << "warnings (outputs written; see each _cbf.json's Warnings):\n";
      for (const auto& w : warnings_) std::cout << "  " << w << "\n";
    }
    if (!failures_.empty()) {
      std::cout << "failed:\n";
      for (const auto& f : failures_) std::cout << "  " << f << "\n";
    }
    std::cout.flush();
    return failures_.empty() ? 0 : 1;
  }

 private:
  void status_line() {
    if (tty_ && done_ < total_) {
      std::cout << "\r\033[K[" << done_ << "/" << total_ << "] running:";
      for (std::size_t k = 0; k < running_.size(); ++k) {
        std::cout << (k ? ", " : " ") << running_[k];
      }
    }
    std::cout.flush();
  }
  std::size_t total_, done_ = 0, ok_ = 0, skipped_ = 0, failed_ = 0;
  bool quiet_, verbose_, tty_;
  std::mutex mutex_;
  std::vector<std::string> running_, failures_, warnings_;
};

}  // namespace bids_app
}  // namespace perfq_cli
