// `perfq bids --anat-derivatives`: the steps that bring a subject's anatomy (fMRIPrep or
// sMRIPrep derivatives) and a template's territory atlas into each ASL series' space, run
// before the series' cbf step: perfq register (the series to its T1w), then perfq resample of
// the brain mask, the tissue probability maps and the atlas.
#pragma once

#include "bids_app.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/anatomy.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace perfq_cli {
namespace bids_app {

/// What the command line asked for.
struct AnatomyOptions {
  fs::path derivatives;                       ///< --anat-derivatives
  std::optional<fs::path> atlas;              ///< --atlas: territory labels in a template's space
  std::optional<fs::path> atlas_names;        ///< --atlas-names (else the .tsv beside the atlas)
  std::string atlas_space;                    ///< --atlas-space
  std::string template_space;                 ///< --template-space (default: the atlas's space)
  std::optional<fs::path> atlas_to_template;  ///< --atlas-to-template (atlas → template)
};

/// One step: `perfq <args…>`, done when `marker` exists.
struct AnatomyStep {
  std::string name;
  std::vector<std::string> args;
  fs::path marker;
};

/// The steps of one series, and the files they make (which replace those found by
/// convention). `error` says why the series cannot have them (no derivatives for its
/// subject): the series then fails, the others go on.
struct AnatomyPlan {
  std::string error;
  std::vector<AnatomyStep> steps;
  fs::path transform;  ///< <prefix>_from-asl_to-T1w_mode-image_xfm.txt
  std::optional<fs::path> brain, gm, wm, csf, territories, territory_names, tissue;
};

/// The classes of fMRIPrep's and sMRIPrep's `_dseg` (their BIDS order, from FSL FAST's).
constexpr const char* kAnatDsegNames = "index\tname\n1\tGM\n2\tWM\n3\tCSF\n";

/// The series' separate M0 image (perfq::io::find_m0scan: its own `<prefix>_m0scan`, else the
/// m0scan whose IntendedFor names it), else the series itself: the image registered to the
/// T1w (perfq register averages the volumes of a series).
inline fs::path registration_image(const Series& s) {
  const std::string m0 = perfq::io::find_m0scan(s.asl.string());
  return m0.empty() ? s.asl : fs::path(m0);
}

/// The steps for series `s`, writing into `out` (its output folder) images with extension
/// `nii` (".nii.gz" or ".nii"); `threads` (e.g. {"--threads", "2"}) is passed to each step.
inline AnatomyPlan plan_anatomy(const Series& s, const fs::path& out, const AnatomyOptions& o,
                                const std::string& nii, const std::vector<std::string>& threads) {
  AnatomyPlan p;
  perfq::io::AnatDerivatives a;
  try {
    a = perfq::io::find_anat_derivatives(o.derivatives.string(), s.subject, s.session);
  } catch (const perfq::Error& e) {
    p.error = e.what();
    return p;
  }
  std::string template_transform;
  if (o.atlas) {
    const auto found = a.from_template.find(o.template_space);
    if (found == a.from_template.end()) {
      std::string have;
      for (const auto& [space, path] : a.from_template) have += (have.empty() ? "" : ", ") + space;
      p.error = a.folder + ": no transform from " + o.template_space + " to the T1w (" + a.prefix +
                "_from-" + o.template_space + "_to-T1w_mode-image_xfm.h5); the folder has " +
                (have.empty() ? std::string("none") : "those from " + have) +
                " (see --template-space and --atlas-to-template)";
      return p;
    }
    template_transform = found->second;
  }
  const std::string px = s.prefix;
  auto in_out = [&](const std::string& suffix) { return out / (px + suffix); };
  auto add = [&](std::string name, std::vector<std::string> args, const fs::path& marker) {
    args.insert(args.end(), threads.begin(), threads.end());
    args.push_back("--overwrite");
    p.steps.push_back({std::move(name), std::move(args), marker});
  };
  p.transform = in_out("_from-asl_to-T1w_mode-image_xfm.txt");
  fs::path sidecar = p.transform;
  sidecar.replace_extension(".json");
  fs::path moving;
  try {
    moving = registration_image(s);
  } catch (const perfq::Error& e) {  // e.g. two m0scans name the series: this series fails
    p.error = e.what();
    return p;
  }
  add("register",
      {"register", moving.string(), a.t1w, "-o", p.transform.string(), "--fixed-mask",
       a.brain_mask},
      sidecar);
  // T1w-space images come into the series' space through the inverse of the registration.
  const std::string to_asl = "inverse:" + p.transform.string();
  auto resample = [&](const std::string& name, const std::string& image,
                      const std::string& transforms, const std::string& kind,
                      const fs::path& target) {
    std::vector<std::string> args = {"resample",    image,      "--reference", s.asl.string(),
                                     "--transform", transforms, "-o",          target.string()};
    if (!kind.empty()) args.push_back(kind);
    add(name, args, target);
  };
  p.brain = in_out("_desc-brain_mask" + nii);
  resample("brain mask", a.brain_mask, to_asl, "--mask", *p.brain);
  const std::pair<std::string, std::optional<fs::path>*> tissues[] = {
      {a.gm, &p.gm}, {a.wm, &p.wm}, {a.csf, &p.csf}};
  const char* names[] = {"GM", "WM", "CSF"};
  for (int k = 0; k < 3; ++k) {
    if (tissues[k].first.empty()) continue;
    *tissues[k].second = in_out(std::string("_label-") + names[k] + "_probseg" + nii);
    resample(std::string(names[k]) + " map", tissues[k].first, to_asl, "", **tissues[k].second);
  }
  if (!a.dseg.empty()) {
    p.tissue = in_out("_dseg" + nii);
    resample("tissue classes", a.dseg, to_asl, "--labels", *p.tissue);
  }
  if (o.atlas) {
    std::string chain;
    if (o.atlas_to_template) chain = o.atlas_to_template->string() + ",";
    chain += template_transform + "," + to_asl;
    p.territories = in_out("_territories" + nii);
    resample("atlas", o.atlas->string(), chain, "--labels", *p.territories);
    p.territory_names = o.atlas_names ? o.atlas_names : names_beside(o.atlas);
  }
  return p;
}

}  // namespace bids_app
}  // namespace perfq_cli
