// A subject's anatomical derivatives (include/perfq/io/anatomy.hpp): fMRIPrep/sMRIPrep names.
#include <perfq/errors.hpp>
#include <perfq/io/anatomy.hpp>

#include "text_util.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <system_error>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

namespace fs = std::filesystem;
using strings::ends_with;

/// The file `<folder>/<stem>.nii.gz`, else `.nii`, else "".
std::string image_file(const fs::path& folder, const std::string& stem) {
  std::error_code ec;
  for (const char* ext : {".nii.gz", ".nii"}) {
    const fs::path p = folder / (stem + ext);
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return {};
}

/// Whether `prefix` (entities before the suffix) names a T1w of this subject and session in
/// native space: starts with sub-<subject>, has ses-<session> when one is asked for (and no
/// other session), and no space- entity.
bool native_t1w_prefix(const std::string& prefix, const std::string& subject,
                       const std::string& session, bool session_folder) {
  const std::string sub = "sub-" + subject;
  if (prefix != sub && prefix.rfind(sub + "_", 0) != 0) return false;
  std::string found_session;
  std::size_t start = 0;
  while (start <= prefix.size()) {
    std::size_t end = prefix.find('_', start);
    if (end == std::string::npos) end = prefix.size();
    const std::string part = prefix.substr(start, end - start);
    if (part.rfind("space-", 0) == 0) return false;
    if (part.rfind("ses-", 0) == 0) found_session = part.substr(4);
    start = end + 1;
  }
  if (session_folder) return found_session == session;
  return found_session.empty();
}

}  // namespace

AnatDerivatives find_anat_derivatives(const std::string& root, const std::string& subject,
                                      const std::string& session) {
  std::vector<std::pair<fs::path, bool>> folders;  // (folder, is a session folder)
  for (const fs::path base :
       {fs::path(root), fs::path(root) / "fmriprep", fs::path(root) / "smriprep"}) {
    const fs::path sub = base / ("sub-" + subject);
    if (!session.empty()) folders.emplace_back(sub / ("ses-" + session) / "anat", true);
    folders.emplace_back(sub / "anat", false);
  }
  const std::string suffix = "_desc-preproc_T1w";
  std::string looked;
  for (const auto& [folder, session_folder] : folders) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) {
      looked += (looked.empty() ? "" : ", ") + folder.string();
      continue;
    }
    std::vector<std::string> prefixes;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      std::string name = entry.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      for (const char* ext : {".nii.gz", ".nii"}) {
        if (!ends_with(name, suffix + ext)) continue;
        const std::string prefix = name.substr(0, name.size() - suffix.size() - std::strlen(ext));
        if (native_t1w_prefix(prefix, subject, session, session_folder)) {
          prefixes.push_back(prefix);
        }
        break;
      }
    }
    std::sort(prefixes.begin(), prefixes.end());
    prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
    if (prefixes.empty()) {
      looked += (looked.empty() ? "" : ", ") + folder.string();
      continue;
    }
    if (prefixes.size() > 1) {
      std::string list;
      for (const auto& p : prefixes) list += (list.empty() ? "" : ", ") + p + suffix;
      throw InputError(folder.string(), "",
                       "holds several preprocessed T1w images (" + list +
                           "); expected one per subject (or session)");
    }
    AnatDerivatives a;
    a.folder = folder.string();
    a.prefix = prefixes.front();
    a.t1w = image_file(folder, a.prefix + suffix);
    a.brain_mask = image_file(folder, a.prefix + "_desc-brain_mask");
    if (a.brain_mask.empty()) {
      throw InputError((folder / (a.prefix + "_desc-brain_mask.nii.gz")).string(), "",
                       "does not exist: the T1w's brain mask is needed beside " + a.t1w);
    }
    a.gm = image_file(folder, a.prefix + "_label-GM_probseg");
    a.wm = image_file(folder, a.prefix + "_label-WM_probseg");
    a.csf = image_file(folder, a.prefix + "_label-CSF_probseg");
    a.dseg = image_file(folder, a.prefix + "_dseg");
    const std::string from = a.prefix + "_from-";
    const std::string to = "_to-T1w_mode-image_xfm";
    std::map<std::string, int> rank;  // per template: .h5 before .txt before .mat
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(from, 0) != 0) continue;
      const char* const extensions[] = {".h5", ".txt", ".mat"};
      for (int k = 0; k < 3; ++k) {
        const char* ext = extensions[k];
        if (!ends_with(name, to + ext)) continue;
        const std::string space =
            name.substr(from.size(), name.size() - from.size() - to.size() - std::strlen(ext));
        if (space.empty() || space.find('_') != std::string::npos) break;
        const auto known = rank.find(space);
        if (known == rank.end() || k < known->second) {
          rank[space] = k;
          a.from_template[space] = entry.path().string();
        }
        break;
      }
    }
    return a;
  }
  throw InputError(root, "",
                   "no anatomical derivatives (a *_desc-preproc_T1w.nii[.gz] without space-) for "
                   "sub-" +
                       subject + (session.empty() ? "" : " ses-" + session) + "; looked in " +
                       looked);
}

}  // namespace io
PERFQ_NAMESPACE_END
