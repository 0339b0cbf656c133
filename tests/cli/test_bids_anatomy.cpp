// perfq bids --anat-derivatives: a synthetic fMRIPrep output folder (a T1w, its brain mask and
// tissue maps at 2 mm, the head moved by a known rigid transform since the ASL scan, and a
// transform from a "template" in which a territory atlas lies), brought into the phantom's
// ASL space; the results are checked against the phantom's own truth on the ASL grid.
#include "cli_test_util.hpp"

#include <perfq/io/nifti.hpp>
#include <perfq/io/transform.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

namespace {

using cli_test::read_text;
using cli_test::Result;
using cli_test::run;
using cli_test::write_text;
namespace io = perfq::io;
namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// `g` moved by the rigid transform `r` (each point p to r.map(p)): the same voxels, the head
/// elsewhere in the scanner.
perfq::Geometry moved(const perfq::Geometry& g, const io::Transform& r) {
  const auto m = r.matrix();
  perfq::Geometry out = g;
  out.origin = r.map(g.origin);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      double s = 0.0;
      for (int k = 0; k < 3; ++k) s += m[4 * i + k] * g.direction[3 * k + j];
      out.direction[3 * i + j] = s;
    }
  }
  return out;
}

template <class T>
perfq::Image<T> on_grid(const perfq::Image<T>& image, const perfq::Geometry& g) {
  return perfq::Image<T>(g, 1, image.values());
}

/// The subject's anatomy as fMRIPrep writes it, the head moved by `head` since the ASL scan,
/// and the atlas in a template that is the anatomy moved by `tpl`; returns the atlas's path.
fs::path write_anatomy(const fs::path& dir, const io::Transform& head, const io::Transform& tpl) {
  perfq::PhantomOptions o;
  o.dims = {90, 108, 84};  // the ASL phantom's field of view (60 × 72 × 56 at 3 mm) at 2 mm
  o.voxel_mm = 2.0;
  o.repeats = 1;
  const perfq::Phantom fine = perfq::make_phantom(o);
  const perfq::Geometry t1w_grid = moved(fine.tissue.geometry(), head);
  perfq::Image<float> t1w(t1w_grid), brain(t1w_grid);
  perfq::Image<std::int32_t> dseg(t1w_grid);  // fMRIPrep's classes: 1 GM, 2 WM, 3 CSF
  perfq::Image<float> maps[3] = {perfq::Image<float>(t1w_grid), perfq::Image<float>(t1w_grid),
                                 perfq::Image<float>(t1w_grid)};
  for (std::size_t i = 0; i < t1w.size(); ++i) {
    const int t = fine.tissue[i];
    // T1-weighted contrast: white matter brightest, CSF dark; a dim scalp-less background.
    t1w[i] = t == perfq::kWhiteMatter  ? 900.0f
             : t == perfq::kGreyMatter ? 550.0f
             : t == perfq::kCsf        ? 200.0f
                                       : 20.0f;
    brain[i] = t == perfq::kBackground ? 0.0f : 1.0f;
    dseg[i] = t == perfq::kGreyMatter ? 1 : t == perfq::kWhiteMatter ? 2 : t == perfq::kCsf ? 3 : 0;
    if (t == perfq::kGreyMatter) maps[0][i] = 1.0f;
    if (t == perfq::kWhiteMatter) maps[1][i] = 1.0f;
    if (t == perfq::kCsf) maps[2][i] = 1.0f;
  }
  const fs::path anat = dir / "fmriprep" / "sub-01" / "anat";
  fs::create_directories(anat);
  io::write_nifti((anat / "sub-01_desc-preproc_T1w.nii.gz").string(), t1w.view());
  io::write_nifti((anat / "sub-01_desc-brain_mask.nii.gz").string(), brain.view());
  io::write_nifti((anat / "sub-01_dseg.nii.gz").string(), dseg.view());
  const char* names[] = {"GM", "WM", "CSF"};
  for (int k = 0; k < 3; ++k) {
    io::write_nifti((anat / (std::string("sub-01_label-") + names[k] + "_probseg.nii.gz")).string(),
                    maps[k].view());
  }
  // A T1w point p is the anatomy's head.inverse(p), which the template holds at tpl(…).
  io::write_transform((anat / "sub-01_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5").string(),
                      io::compose({tpl, head.inverse()}));
  const fs::path atlas = dir / "atlas_space-MNI152NLin6Asym.nii.gz";
  io::write_nifti(atlas.string(),
                  on_grid(fine.territories, moved(fine.territories.geometry(), tpl)).view());
  write_text(dir / "atlas_names.tsv", "index\tname\n1\tACA\n2\tMCA\n3\tPCA\n");
  return atlas;
}

TEST(BidsAnatomy, AtlasAndTissueMapsComeIntoEachSeriesFromFmriprepDerivatives) {
  const fs::path dir = cli_test::scratch_dir("bids-anatomy");
  const fs::path bids = dir / "bids";
  ASSERT_EQ(run("phantom -o " + bids.string() + " --repeats 2 --snr 20").status, 0);
  // A second subject without anatomical derivatives.
  ASSERT_EQ(run("phantom -o " + bids.string() + " --repeats 2 --subject 02").status, 0);
  // The head turned 4° and moved 5 mm between the ASL scan and the T1w.
  const auto head = io::Transform::rigid({0.03, -0.04, 0.05}, {3.0, -4.0, 2.0});
  const auto tpl = io::Transform::rigid({0.0, 0.05, -0.08}, {-6.0, 9.0, 4.0});
  const fs::path atlas = write_anatomy(dir, head, tpl);
  const std::string anat = " --anat-derivatives " + (dir / "fmriprep").string();
  const std::string with_atlas = anat + " --atlas " + atlas.string() +
                                 " --atlas-space MNI152NLin6Asym --atlas-names " +
                                 (dir / "atlas_names.tsv").string();
  const std::string command =
      "bids " + bids.string() + " " + (dir / "out").string() + " participant --backend cpu";
  Result r = run(command + with_atlas);
  // sub-02 fails (no anatomy), naming where it looked; sub-01 is done.
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "no anatomical derivatives")) << r.output;
  EXPECT_TRUE(contains(r.output, "sub-02")) << r.output;
  const fs::path perf = dir / "out" / "sub-01" / "perf";
  for (const std::string suffix :
       {"_from-asl_to-T1w_mode-image_xfm.txt", "_from-asl_to-T1w_mode-image_xfm.json",
        "_desc-brain_mask.nii.gz", "_label-GM_probseg.nii.gz", "_label-WM_probseg.nii.gz",
        "_label-CSF_probseg.nii.gz", "_territories.nii.gz", "_desc-borderzone_mask.nii.gz",
        "_desc-territories_stats.tsv", "_desc-borderzone_stats.tsv", "_cbf.nii.gz", "_dseg.nii.gz",
        "_desc-tissue_stats.tsv"}) {
    EXPECT_TRUE(fs::is_regular_file(perf / ("sub-01" + suffix))) << suffix << "\n" << r.output;
  }
  // The registration found the head's movement: T1w points map back to ASL points.
  const io::Transform found =
      io::read_transform((perf / "sub-01_from-asl_to-T1w_mode-image_xfm.txt").string());
  for (const std::array<double, 3> p :
       {std::array<double, 3>{0, 0, 0}, {60, 0, 0}, {0, 70, 0}, {0, 0, 55}, {-40, -50, -30}}) {
    const auto truth = head.inverse().map(p);
    const auto got = found.map(p);
    const double d = std::hypot(got[0] - truth[0], got[1] - truth[1], got[2] - truth[2]);
    EXPECT_LT(d, 1.5) << "point " << p[0] << " " << p[1] << " " << p[2];
  }
  // Against the phantom's truth on the ASL grid.
  const fs::path truth = bids / "derivatives" / "truth" / "sub-01" / "perf";
  const auto territories = io::read_nifti_labels((perf / "sub-01_territories.nii.gz").string());
  const auto true_territories =
      io::read_nifti_labels((truth / "sub-01_territories.nii.gz").string());
  for (int label = 1; label <= 3; ++label) {
    double both = 0, a = 0, b = 0;
    for (std::size_t i = 0; i < territories.size(); ++i) {
      const bool x = territories[i] == label, y = true_territories[i] == label;
      both += x && y;
      a += x;
      b += y;
    }
    EXPECT_GT(2 * both / (a + b), 0.85) << "territory " << label;
  }
  const auto gm = io::read_nifti((perf / "sub-01_label-GM_probseg.nii.gz").string());
  const auto true_gm = io::read_nifti_mask((truth / "sub-01_label-GM_mask.nii.gz").string());
  const auto true_wm = io::read_nifti_mask((truth / "sub-01_label-WM_mask.nii.gz").string());
  double in_gm = 0, n_gm = 0, in_wm = 0, n_wm = 0;
  for (std::size_t i = 0; i < gm.size(); ++i) {
    if (true_gm[i]) in_gm += gm[i], ++n_gm;
    if (true_wm[i]) in_wm += gm[i], ++n_wm;
  }
  EXPECT_GT(in_gm / n_gm, 0.6);
  EXPECT_LT(in_wm / n_wm, 0.2);
  const auto brain = io::read_nifti_mask((perf / "sub-01_desc-brain_mask.nii.gz").string());
  const auto true_brain = io::read_nifti_mask((truth / "sub-01_mask.nii.gz").string());
  double covered = 0, total = 0;
  for (std::size_t i = 0; i < brain.size(); ++i) {
    if (true_brain[i]) covered += brain[i] != 0, ++total;
  }
  EXPECT_GT(covered / total, 0.97);
  // CBF per tissue class from the anatomy's _dseg: grey matter's above white matter's.
  const std::string tissue = read_text(perf / "sub-01_desc-tissue_stats.tsv");
  auto mean_of = [&](const std::string& name) {
    const std::size_t at = tissue.find("\t" + name + "\t");
    if (at == std::string::npos) return -1.0;
    std::istringstream row(tissue.substr(tissue.rfind('\n', at) + 1));
    std::string cell;
    for (int column = 0; column < 8; ++column) std::getline(row, cell, '\t');  // 8th: mean
    return std::stod(cell);
  };
  EXPECT_GT(mean_of("GM"), 1.5 * mean_of("WM")) << tissue;
  EXPECT_GT(mean_of("WM"), 5.0) << tissue;
  // The tissue maps reached the quality indices; the registration's sidecar has its metric.
  const auto qc = nlohmann::json::parse(read_text(perf / "sub-01_desc-qualitycontrol_cbf.json"));
  EXPECT_TRUE(qc["NotDefined"].empty()) << qc["NotDefined"].dump();
  EXPECT_TRUE(contains(read_text(perf / "sub-01_from-asl_to-T1w_mode-image_xfm.json"), "Metric"));
  // The report shows the registration: its metric and the checkerboard of T1w and M0.
  const std::string report = read_text(perf / "sub-01_report.html");
  EXPECT_TRUE(contains(report, "Registration to the T1w")) << report;
  EXPECT_TRUE(contains(report, "MattesMutualInformation")) << report;
  EXPECT_TRUE(fs::is_regular_file(perf / "figures" / "sub-01_desc-registration_checkerboard.png"));
  // A second run does nothing for sub-01.
  r = run(command + with_atlas + " --participant-label 01");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "0 ok, 1 skipped")) << r.output;
}

TEST(BidsAnatomy, OptionsAreCheckedBeforeAnyWork) {
  const fs::path dir = cli_test::scratch_dir("bids-anatomy-options");
  ASSERT_EQ(run("phantom -o " + (dir / "bids").string() + " --repeats 1").status, 0);
  const std::string command =
      "bids " + (dir / "bids").string() + " " + (dir / "out").string() + " participant";
  Result r = run(command + " --atlas x.nii.gz --atlas-space MNI152NLin6Asym");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.output, "--atlas needs --anat-derivatives")) << r.output;
  fs::create_directories(dir / "anat");
  const std::string anat = " --anat-derivatives " + (dir / "anat").string();
  r = run(command + anat + " --atlas x.nii.gz");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.output, "--atlas needs --atlas-space")) << r.output;
  r = run(command + anat +
          " --atlas x.nii.gz --atlas-space MNI152NLin6Asym --template-space MNI152NLin2009cAsym");
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.output, "give --atlas-to-template")) << r.output;
  r = run(command + anat + " --atlas x.nii.gz --atlas-space MNI152NLin6Asym");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.output, "x.nii.gz: --atlas: no such file")) << r.output;
  r = run(command + " --anat-derivatives " + (dir / "none").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.output, "--anat-derivatives: no such folder")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

}  // namespace
