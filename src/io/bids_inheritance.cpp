// BIDS inheritance: which metadata files apply to a data file, merged nearest last, and
// which m0scan belongs to a series.
#include <perfq/errors.hpp>

#include "bids_internal.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace detail {
namespace {

/// Whether an IntendedFor entry names `data`: a path relative to the subject folder
/// ("perf/sub-01_asl.nii.gz") or a BIDS URI relative to the dataset ("bids::sub-01/perf/…"),
/// matched against the end of `data`'s absolute path, folder by folder.
bool names_file(std::string entry, const fs::path& data) {
  if (entry.rfind("bids::", 0) == 0) entry = entry.substr(6);
  if (entry.empty()) return false;
  std::error_code ec;
  const fs::path full = fs::absolute(data, ec).lexically_normal();
  if (ec) return false;
  std::vector<fs::path> want, have;
  for (const auto& part : fs::path(entry).lexically_normal()) want.push_back(part);
  for (const auto& part : full) have.push_back(part);
  if (want.empty() || want.size() > have.size()) return false;
  return std::equal(want.rbegin(), want.rend(), have.rbegin());
}

}  // namespace

std::optional<std::map<std::string, std::string>> entities_of(const std::string& stem) {
  std::map<std::string, std::string> entities;
  std::size_t start = 0;
  while (start < stem.size()) {
    std::size_t end = stem.find('_', start);
    if (end == std::string::npos) end = stem.size();
    const std::string part = stem.substr(start, end - start);
    const std::size_t dash = part.find('-');
    if (dash == 0 || dash == std::string::npos || dash + 1 == part.size()) return std::nullopt;
    entities[part.substr(0, dash)] = part.substr(dash + 1);
    start = end + 1;
  }
  return entities;
}

std::vector<fs::path> metadata_levels(const fs::path& folder) {
  std::error_code ec;
  fs::path at = fs::absolute(folder.empty() ? fs::path(".") : folder, ec).lexically_normal();
  std::vector<fs::path> above;  // the folders above `folder`, nearest first
  for (int depth = 0; !ec && depth < 64 && !at.empty(); ++depth) {
    std::error_code missing;  // set when the file is absent
    if (fs::is_regular_file(at / "dataset_description.json", missing)) {
      std::vector<fs::path> levels(above.rbegin(), above.rend());
      levels.push_back(folder);
      return levels;
    }
    if (at == at.parent_path()) break;
    at = at.parent_path();
    above.push_back(at);
  }
  return {folder};
}

std::vector<std::string> applicable_files(const std::vector<fs::path>& levels,
                                          const std::string& prefix, const std::string& suffix) {
  const auto own = entities_of(prefix);
  std::vector<std::string> found;
  for (const fs::path& level : levels) {
    if (!own && &level != &levels.back()) continue;
    std::vector<std::string> here;
    std::error_code ec;
    for (fs::directory_iterator it(level.empty() ? fs::path(".") : level, ec), end;
         !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (!ends_with(name, suffix) && name != suffix.substr(1)) continue;
      const std::string stem =
          name.size() > suffix.size() ? name.substr(0, name.size() - suffix.size()) : "";
      if (name == prefix + suffix) {  // the data file's own (also without a dataset root)
        here.push_back((level / name).string());
        continue;
      }
      if (!own) continue;
      const auto theirs = entities_of(stem);
      if (!theirs) continue;
      std::error_code file_ec;
      if (!fs::is_regular_file(it->path(), file_ec)) continue;
      const bool subset = std::all_of(theirs->begin(), theirs->end(), [&](const auto& entity) {
        const auto match = own->find(entity.first);
        return match != own->end() && match->second == entity.second;
      });
      if (subset) here.push_back((level / name).string());
    }
    std::sort(here.begin(), here.end());
    if (here.size() > 1) {
      throw InputError(here[0], "",
                       "more than one *" + suffix + " in one folder applies to " + prefix +
                           " (BIDS inheritance allows one per folder): " + here[0] + ", " +
                           here[1]);
    }
    found.insert(found.end(), here.begin(), here.end());
  }
  return found;
}

json merged_metadata(const std::vector<std::string>& files, const std::string& what,
                     std::map<std::string, std::string>& origin) {
  json merged = json::object();
  for (const std::string& file : files) {
    const json one = parse_json_object(read_text_file(file, what), file);
    for (auto item = one.begin(); item != one.end(); ++item) {
      merged[item.key()] = item.value();
      origin[item.key()] = file;
    }
  }
  return merged;
}

fs::path nifti_beside(const fs::path& folder, const std::string& stem) {
  std::vector<fs::path> found;
  for (const char* ext : {".nii.gz", ".nii"}) {
    const fs::path candidate = folder / (stem + ext);
    std::error_code ec;
    // Anything by that name (reading it says what it is when it is no file).
    if (fs::exists(fs::symlink_status(candidate, ec))) found.push_back(candidate);
  }
  if (found.size() > 1) {
    throw InputError(found[1].string(), "",
                     "is also " + found[0].filename().string() + " in the same folder; keep one");
  }
  return found.empty() ? fs::path() : found[0];
}

fs::path m0scan_intended_for(const fs::path& folder, const fs::path& asl, std::string& m0_prefix) {
  std::vector<std::pair<fs::path, std::string>> found;
  std::error_code ec;
  for (fs::directory_iterator it(folder.empty() ? fs::path(".") : folder, ec), end;
       !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!ends_with(name, "_m0scan.json")) continue;
    const std::string stem = name.substr(0, name.size() - std::string("_m0scan.json").size());
    json sidecar;
    try {
      const std::string path = (folder / name).string();
      const std::string text = read_text_file(path, "m0scan sidecar");
      check_json_nesting(text, path);
      sidecar = json::parse(text);
    } catch (const json::exception&) {
      continue;  // not this one: its own reading reports a broken sidecar
    }
    if (!sidecar.is_object() || !sidecar.contains("IntendedFor")) continue;
    const json& intended = sidecar["IntendedFor"];
    bool names = false;
    if (intended.is_string()) names = names_file(intended.get<std::string>(), asl);
    if (intended.is_array()) {
      for (const json& entry : intended) {
        names = names || (entry.is_string() && names_file(entry.get<std::string>(), asl));
      }
    }
    if (!names) continue;
    const fs::path image = nifti_beside(folder, stem + "_m0scan");
    if (!image.empty()) found.emplace_back(image, stem);
  }
  std::sort(found.begin(), found.end());
  if (found.size() > 1) {
    throw InputError(found[0].first.string(), "IntendedFor",
                     "two m0scans name " + asl.filename().string() + ": " +
                         found[0].first.filename().string() + " and " +
                         found[1].first.filename().string() + "; keep one");
  }
  if (found.empty()) return {};
  m0_prefix = found[0].second;
  return found[0].first;
}

}  // namespace detail
}  // namespace io
PERFQ_NAMESPACE_END
