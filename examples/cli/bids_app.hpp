// Helpers of `perfq bids` (cmd_bids.cpp): finding ASL series in a BIDS dataset, the files
// found next to them by convention, and what a step printed.
#pragma once

#include "cli_util.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/series_config.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace perfq_cli {
namespace bids_app {

/// "sub-01" → "01"; labels are accepted with or without their prefix.
inline std::string strip_prefix(const std::string& label, const std::string& prefix) {
  return label.rfind(prefix, 0) == 0 ? label.substr(prefix.size()) : label;
}

/// The key-value entities of a BIDS name's prefix, in order ("sub-01_ses-1" → sub, ses).
inline std::vector<std::pair<std::string, std::string>> entities(const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t start = 0;
  while (start <= prefix.size()) {
    std::size_t end = prefix.find('_', start);
    if (end == std::string::npos) end = prefix.size();
    const std::string part = prefix.substr(start, end - start);
    const std::size_t dash = part.find('-');
    if (dash != std::string::npos) out.emplace_back(part.substr(0, dash), part.substr(dash + 1));
    start = end + 1;
  }
  return out;
}

inline std::string entity(const std::string& prefix, const std::string& key) {
  for (const auto& [k, v] : entities(prefix)) {
    if (k == key) return v;
  }
  return {};
}

/// One ASL series of the input dataset.
struct Series {
  fs::path asl;                ///< the *_asl.nii[.gz] file
  fs::path folder;             ///< its folder relative to the dataset: sub-X/[ses-Y/]perf
  std::string prefix;          ///< its name before `_asl` (sub-01_ses-1_run-2)
  std::string subject;         ///< "01"
  std::string session;         ///< "1", or empty
  std::string label() const {  // "sub-01 ses-1 run-2", for progress lines
    std::string s = prefix;
    std::replace(s.begin(), s.end(), '_', ' ');
    return s;
  }
};

inline std::vector<fs::path> sorted_dirs(const fs::path& dir, const std::string& name_prefix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(name_prefix, 0) == 0 && e.is_directory(ec)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Every `sub-*/[ses-*/]perf/*_asl.nii[.gz]` of the dataset, sorted, keeping the listed
/// participants and sessions (all when a list is empty; labels without their prefix). A
/// listed label that matches nothing is an error: it is most likely a typo.
inline std::vector<Series> find_series(const fs::path& root,
                                       const std::vector<std::string>& participants,
                                       const std::vector<std::string>& sessions) {
  std::set<std::string> want_sub(participants.begin(), participants.end());
  std::set<std::string> want_ses(sessions.begin(), sessions.end());
  std::set<std::string> seen_sub, seen_ses;
  std::vector<Series> found;
  auto scan_perf = [&](const fs::path& perf, const std::string& subject,
                       const std::string& session) {
    std::error_code ec;
    if (!fs::is_directory(perf, ec)) return;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(perf, ec)) {
      const std::string name = e.path().filename().string();
      if ((ends_with(name, "_asl.nii.gz") || ends_with(name, "_asl.nii")) && name[0] != '.') {
        files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string name = f.filename().string();
      // The same series as .nii and .nii.gz (a stale conversion): both would be quantified
      // into the same outputs, the last one written winning.
      if (!found.empty() && found.back().asl.parent_path() == perf &&
          found.back().prefix == name.substr(0, name.rfind("_asl.nii"))) {
        throw perfq::InputError(f.string(), "",
                                "the series is also " + found.back().asl.filename().string() +
                                    " in the same folder; keep one");
      }
      Series s;
      s.asl = f;
      s.folder = fs::relative(perf, root);
      s.prefix = name.substr(0, name.rfind("_asl.nii"));
      s.subject = subject;
      s.session = session;
      found.push_back(s);
    }
  };
  for (const fs::path& sub : sorted_dirs(root, "sub-")) {
    const std::string subject = strip_prefix(sub.filename().string(), "sub-");
    if (!want_sub.empty() && !want_sub.count(subject)) continue;
    seen_sub.insert(subject);
    if (want_ses.empty()) scan_perf(sub / "perf", subject, "");
    for (const fs::path& ses : sorted_dirs(sub, "ses-")) {
      const std::string session = strip_prefix(ses.filename().string(), "ses-");
      if (!want_ses.empty() && !want_ses.count(session)) continue;
      seen_ses.insert(session);
      scan_perf(ses / "perf", subject, session);
    }
  }
  for (const auto& s : want_sub) {
    if (!seen_sub.count(s)) {
      throw perfq::Error(root.string() + ": --participant-label " + s + ": no folder sub-" + s);
    }
  }
  for (const auto& s : want_ses) {
    if (!seen_ses.count(s)) {
      throw perfq::Error(root.string() + ": --session-label " + s + ": no folder ses-" + s +
                         " in the selected participants");
    }
  }
  return found;
}

/// Per-series label images found by convention (see kBidsHelp): each on the series' grid.
struct Conventions {
  std::optional<fs::path> territories, territory_names, tissue, tissue_names, brain;
};

/// The first existing `<folder>/<prefix>_<suffix>{.nii.gz,.nii}` (or exact `suffix` when it
/// has its own extension) over `roots`, then over ever shorter prefixes
/// (sub-01_ses-1_run-2 → sub-01_ses-1 → sub-01), each in its own folder sub-X/[ses-Y/]perf.
inline std::optional<fs::path> find_by_convention(const Series& s,
                                                  const std::vector<fs::path>& roots,
                                                  const std::string& suffix) {
  const auto parts = entities(s.prefix);
  std::vector<std::string> extensions = {".nii.gz", ".nii"};
  if (suffix.find('.') != std::string::npos) extensions = {""};
  for (const fs::path& root : roots) {
    for (std::size_t n = parts.size(); n >= 1; --n) {
      std::string prefix;
      fs::path folder = root / ("sub-" + s.subject);
      for (std::size_t k = 0; k < n; ++k) {
        prefix += (k ? "_" : "") + parts[k].first + "-" + parts[k].second;
        if (parts[k].first == "ses") folder /= "ses-" + parts[k].second;
      }
      for (const auto& ext : extensions) {
        const fs::path candidate = folder / "perf" / (prefix + "_" + suffix + ext);
        std::error_code ec;
        if (fs::is_regular_file(candidate, ec)) return candidate;
      }
    }
  }
  return std::nullopt;
}

/// Names tables sit beside their image: `x_dseg.nii.gz` → `x_dseg.tsv`.
inline std::optional<fs::path> names_beside(const std::optional<fs::path>& image) {
  if (!image) return std::nullopt;
  std::string stem = image->filename().string();
  stem = stem.substr(0, stem.find(".nii"));
  const fs::path tsv = image->parent_path() / (stem + ".tsv");
  std::error_code ec;
  if (fs::is_regular_file(tsv, ec)) return tsv;
  return std::nullopt;
}

inline Conventions find_conventions(const Series& s, const std::vector<fs::path>& roots) {
  Conventions c;
  c.territories = find_by_convention(s, roots, "territories");
  c.territory_names = names_beside(c.territories);
  c.tissue = find_by_convention(s, roots, "dseg");
  c.tissue_names = names_beside(c.tissue);
  c.brain = find_by_convention(s, roots, "desc-brain_mask");
  if (!c.brain) c.brain = find_by_convention(s, roots, "mask");
  return c;
}

/// The entries of a configuration that match none of `series` (likely a typo in a filter). A
/// series whose sidecar cannot be read is left out: its cbf step reports it.
inline std::vector<std::size_t> unmatched_entries(const perfq::io::SeriesConfig& config,
                                                  const std::vector<Series>& series) {
  std::vector<bool> used(config.entries.size(), false);
  for (const Series& s : series) {
    try {
      for (const std::size_t k :
           perfq::io::matching_entries(config, perfq::io::series_facts(s.asl.string()))) {
        used[k] = true;
      }
    } catch (const perfq::Error&) {
    }
  }
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < used.size(); ++k) {
    if (!used[k]) out.push_back(k);
  }
  return out;
}

/// What a step (one perfq subcommand, run in this process) did: its exit status and what it
/// printed.
struct StepResult {
  int status = -1;
  std::string out, err;
};

}  // namespace bids_app
}  // namespace perfq_cli
