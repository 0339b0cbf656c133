/// @file
/// @brief A subject's anatomical derivatives as fMRIPrep and sMRIPrep write them: the
/// preprocessed T1w, its brain mask, tissue probability maps and the transforms from
/// templates to the T1w. Part of perfq::io.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <map>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// @brief The anatomical files of one subject (and session) in an fMRIPrep/sMRIPrep output
/// folder. Paths are empty where a file is absent (only `t1w` and `brain_mask` are required).
struct AnatDerivatives {
  std::string folder;      ///< the `anat` folder the files were found in
  std::string prefix;      ///< their common name before `_desc-preproc_T1w` (e.g. `sub-01`)
  std::string t1w;         ///< `<prefix>_desc-preproc_T1w.nii[.gz]`
  std::string brain_mask;  ///< `<prefix>_desc-brain_mask.nii[.gz]`
  std::string gm;          ///< `<prefix>_label-GM_probseg.nii[.gz]`
  std::string wm;          ///< `<prefix>_label-WM_probseg.nii[.gz]`
  std::string csf;         ///< `<prefix>_label-CSF_probseg.nii[.gz]`
  std::string dseg;        ///< `<prefix>_dseg.nii[.gz]` (tissue classes)
  /// Transforms that resample an image of a template onto the T1w, by template name:
  /// `<prefix>_from-<template>_to-T1w_mode-image_xfm.{h5,txt,mat}`.
  std::map<std::string, std::string> from_template;
};

/// @brief Finds a subject's anatomical derivatives under an fMRIPrep or sMRIPrep output folder.
///
/// Looked in, in order: `<root>/sub-<subject>/ses-<session>/anat` (when `session` is given),
/// then `<root>/sub-<subject>/anat` (fMRIPrep puts one anatomy per subject there when it
/// has several sessions); each also under `<root>/fmriprep/` and `<root>/smriprep/` (the
/// layout of versions before 21). In a folder, the T1w is the one file
/// `sub-<subject>[_ses-<session>][_<other entities>]_desc-preproc_T1w.nii[.gz]` without a
/// `space-` entity; the other files share its prefix.
/// @param root the derivatives folder
/// @param subject the label without `sub-`
/// @param session the label without `ses-`, or empty
/// @throws InputError naming the folders looked in when none holds a T1w, naming the files
/// when a folder holds several candidate T1w images, and naming the missing brain mask.
PERFQ_IO_API AnatDerivatives find_anat_derivatives(const std::string& root,
                                                   const std::string& subject,
                                                   const std::string& session = {});

}  // namespace io
PERFQ_NAMESPACE_END
