// perfq::io::find_anat_derivatives: fMRIPrep/sMRIPrep layouts built by hand (empty files: only
// the names matter).
#include "cli_test_util.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/anatomy.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using perfq::io::find_anat_derivatives;

void touch(const fs::path& file) {
  fs::create_directories(file.parent_path());
  cli_test::write_text(file, "");
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const perfq::InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(AnatDerivatives, FmriprepSubjectFolderWithTemplates) {
  const fs::path root = cli_test::scratch_dir("anat-fmriprep");
  const fs::path anat = root / "sub-01" / "anat";
  for (const char* name : {"sub-01_desc-preproc_T1w.nii.gz", "sub-01_desc-brain_mask.nii.gz",
                           "sub-01_label-GM_probseg.nii.gz", "sub-01_label-WM_probseg.nii.gz",
                           "sub-01_label-CSF_probseg.nii.gz", "sub-01_dseg.nii.gz",
                           // In a template's space: not the native T1w.
                           "sub-01_space-MNI152NLin2009cAsym_desc-preproc_T1w.nii.gz",
                           "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5",
                           "sub-01_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5",
                           "sub-01_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.txt",
                           "sub-01_from-T1w_to-MNI152NLin6Asym_mode-image_xfm.h5",
                           "sub-01_from-fsnative_to-T1w_mode-image_xfm.txt"}) {
    touch(anat / name);
  }
  // Another subject's files are not this one's.
  touch(root / "sub-011" / "anat" / "sub-011_desc-preproc_T1w.nii.gz");
  const auto a = find_anat_derivatives(root.string(), "01");
  EXPECT_EQ(a.folder, anat.string());
  EXPECT_EQ(a.prefix, "sub-01");
  EXPECT_EQ(a.t1w, (anat / "sub-01_desc-preproc_T1w.nii.gz").string());
  EXPECT_EQ(a.brain_mask, (anat / "sub-01_desc-brain_mask.nii.gz").string());
  EXPECT_EQ(a.gm, (anat / "sub-01_label-GM_probseg.nii.gz").string());
  EXPECT_EQ(a.wm, (anat / "sub-01_label-WM_probseg.nii.gz").string());
  EXPECT_EQ(a.csf, (anat / "sub-01_label-CSF_probseg.nii.gz").string());
  EXPECT_EQ(a.dseg, (anat / "sub-01_dseg.nii.gz").string());
  ASSERT_EQ(a.from_template.size(), 3u);
  // The .h5 (as fMRIPrep writes it) wins over a .txt of the same template.
  EXPECT_EQ(a.from_template.at("MNI152NLin6Asym"),
            (anat / "sub-01_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5").string());
  EXPECT_EQ(a.from_template.at("MNI152NLin2009cAsym"),
            (anat / "sub-01_from-MNI152NLin2009cAsym_to-T1w_mode-image_xfm.h5").string());
  EXPECT_EQ(a.from_template.count("fsnative"), 1u);
  // A session asked for but absent: the subject's anatomy (fMRIPrep's one per subject).
  EXPECT_EQ(find_anat_derivatives(root.string(), "01", "2").t1w, a.t1w);
}

TEST(AnatDerivatives, SessionFolderOldLayoutAndOptionalMaps) {
  const fs::path root = cli_test::scratch_dir("anat-sessions");
  // fMRIPrep < 21: outputs under fmriprep/; one anatomy per session, maps absent, .nii.
  const fs::path anat = root / "fmriprep" / "sub-02" / "ses-b" / "anat";
  touch(anat / "sub-02_ses-b_run-1_desc-preproc_T1w.nii");
  touch(anat / "sub-02_ses-b_run-1_desc-brain_mask.nii");
  const auto a = find_anat_derivatives(root.string(), "02", "b");
  EXPECT_EQ(a.prefix, "sub-02_ses-b_run-1");
  EXPECT_EQ(a.t1w, (anat / "sub-02_ses-b_run-1_desc-preproc_T1w.nii").string());
  EXPECT_TRUE(a.gm.empty() && a.wm.empty() && a.csf.empty() && a.dseg.empty());
  EXPECT_TRUE(a.from_template.empty());
  // Another session is not this one.
  const std::string none = message_of([&] { find_anat_derivatives(root.string(), "02", "c"); });
  EXPECT_NE(none.find("no anatomical derivatives"), std::string::npos) << none;
  EXPECT_NE(none.find("sub-02 ses-c"), std::string::npos) << none;
  EXPECT_NE(none.find((root / "sub-02" / "anat").string()), std::string::npos) << none;
}

TEST(AnatDerivatives, AmbiguousOrIncompleteFoldersAreRefusedNamingTheFiles) {
  const fs::path root = cli_test::scratch_dir("anat-bad");
  const fs::path anat = root / "sub-03" / "anat";
  touch(anat / "sub-03_run-1_desc-preproc_T1w.nii.gz");
  touch(anat / "sub-03_run-2_desc-preproc_T1w.nii.gz");
  std::string m = message_of([&] { find_anat_derivatives(root.string(), "03"); });
  EXPECT_NE(m.find("several preprocessed T1w images"), std::string::npos) << m;
  EXPECT_NE(m.find("sub-03_run-2_desc-preproc_T1w"), std::string::npos) << m;
  fs::remove(anat / "sub-03_run-2_desc-preproc_T1w.nii.gz");
  m = message_of([&] { find_anat_derivatives(root.string(), "03"); });
  EXPECT_NE(m.find("sub-03_run-1_desc-brain_mask.nii.gz"), std::string::npos) << m;
  EXPECT_NE(m.find("brain mask"), std::string::npos) << m;
  m = message_of([&] { find_anat_derivatives((root / "nowhere").string(), "03"); });
  EXPECT_NE(m.find("no anatomical derivatives"), std::string::npos) << m;
}

}  // namespace
