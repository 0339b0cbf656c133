// perfq register end to end: the transform and its sidecar written, read back mapping points
// as the library's result does; usage and input errors.
#include "../io/registration_data.hpp"
#include "cli_test_util.hpp"

#include <perfq/io/nifti.hpp>
#include <perfq/io/registration.hpp>
#include <perfq/io/transform.hpp>

#include <gtest/gtest.h>

#include <cmath>

namespace {

using cli_test::run;
namespace fs = std::filesystem;

constexpr double kDeg = M_PI / 180.0;

struct Files {
  fs::path dir, m0, series, t1w;
  perfq::Volume<float> m0_image;
  perfq::Volume<float> t1w_image;
};

// Each test its own folder: ctest runs the tests of this file in parallel processes.
Files make_files(const std::string& folder) {
  {
    Files f;
    f.dir = cli_test::scratch_dir(folder);
    const perfq_test::Anatomy a = perfq_test::make_anatomy();
    const auto truth = perfq::io::Transform::rigid({5 * kDeg, 0.0, -4 * kDeg}, {3.0, -4.0, 2.0});
    f.m0_image =
        perfq_test::make_m0(a, perfq_test::epi_grid({64, 64, 20}, {3.4, 3.4, 6}), truth, 0.03);
    f.t1w_image = a.t1w;
    f.m0 = f.dir / "m0.nii.gz";
    f.series = f.dir / "asl.nii.gz";
    f.t1w = f.dir / "T1w.nii.gz";
    perfq::io::write_nifti(f.m0.string(), f.m0_image);
    perfq::io::write_nifti(f.t1w.string(), a.t1w);
    perfq::Series<float> series(f.m0_image.geometry(), 2);
    for (std::size_t t = 0; t < 2; ++t) {
      std::copy(f.m0_image.values().begin(), f.m0_image.values().end(),
                series.data() + t * series.voxel_count());
    }
    perfq::io::write_nifti(f.series.string(), series);
    return f;
  }
}

TEST(RegisterCli, WritesTransformAndSidecarAsTheLibrary) {
  const Files f = make_files("register");
  const fs::path xfm = f.dir / "sub-01_from-asl_to-T1w_mode-image_xfm.txt";
  const fs::path png = f.dir / "check.png";
  fs::remove(xfm);
  fs::remove(xfm.parent_path() / "sub-01_from-asl_to-T1w_mode-image_xfm.json");
  fs::remove(png);
  // A 4D series: the mean of its (here equal) volumes is the M0.
  const auto r = run("register " + f.series.string() + " " + f.t1w.string() + " -o " +
                     xfm.string() + " --threads 1 --figure " + png.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("metric (Mattes MI)"), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(xfm));
  ASSERT_TRUE(fs::exists(png));
  const fs::path sidecar = f.dir / "sub-01_from-asl_to-T1w_mode-image_xfm.json";
  ASSERT_TRUE(fs::exists(sidecar));
  const auto j = nlohmann::json::parse(cli_test::read_text(sidecar));
  EXPECT_EQ(j["Metric"], "MattesMutualInformation");
  EXPECT_LT(j["FinalMetric"].get<double>(), j["InitialMetric"].get<double>());
  EXPECT_EQ(j["GeneratedBy"]["Name"], "perfq");
  EXPECT_EQ(j["MovingVolume"], "mean");
  EXPECT_EQ(j["Iterations"].size(), 2u);

  perfq::io::RegistrationOptions options;
  options.threads = 1;
  // The images as read back (NIfTI stores the grid in single precision).
  const auto lib = perfq::io::register_rigid(perfq::io::read_nifti(f.m0.string()),
                                             perfq::io::read_nifti(f.t1w.string()), options);
  EXPECT_DOUBLE_EQ(j["FinalMetric"].get<double>(), lib.final_metric);
  const perfq::io::Transform read = perfq::io::read_transform(xfm.string());
  for (const std::array<double, 3>& p :
       {std::array<double, 3>{0, 0, 0}, {50, -40, 30}, {-60, 70, -20}}) {
    const auto a = read.map(p);
    const auto b = lib.transform.map(p);
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(a[k], b[k], 1e-9);
  }

  // Existing outputs are refused without --overwrite; --volume picks one volume.
  const auto again = run("register " + f.series.string() + " " + f.t1w.string() + " -o " +
                         xfm.string() + " --volume 1 --threads 1");
  EXPECT_EQ(again.status, 1) << again.output;
  EXPECT_NE(again.output.find("--overwrite"), std::string::npos) << again.output;
  const auto volume = run("register " + f.series.string() + " " + f.t1w.string() + " -o " +
                          xfm.string() + " --volume 1 --threads 1 --overwrite");
  EXPECT_EQ(volume.status, 0) << volume.output;
  const auto k = nlohmann::json::parse(cli_test::read_text(sidecar));
  EXPECT_EQ(k["MovingVolume"], 1);
  EXPECT_DOUBLE_EQ(k["FinalMetric"].get<double>(), lib.final_metric);
}

TEST(RegisterCli, UsageAndInputErrors) {
  const Files f = make_files("register-errors");
  const std::string out = (f.dir / "x_xfm.txt").string();
  EXPECT_EQ(run("register " + f.m0.string() + " " + f.t1w.string()).status, 2);
  EXPECT_EQ(run("register " + f.m0.string() + " -o " + out).status, 2);
  EXPECT_EQ(run("register " + f.m0.string() + " " + f.t1w.string() + " -o x.nii").status, 2);
  EXPECT_EQ(
      run("register " + f.m0.string() + " " + f.t1w.string() + " -o " + out + " --start x").status,
      2);
  const auto missing =
      run("register " + (f.dir / "none.nii.gz").string() + " " + f.t1w.string() + " -o " + out);
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.output.find("none.nii.gz"), std::string::npos) << missing.output;
  // A mask on the T1w's grid given as the M0's mask.
  const auto off_grid = run("register " + f.m0.string() + " " + f.t1w.string() + " -o " + out +
                            " --moving-mask " + f.t1w.string());
  EXPECT_EQ(off_grid.status, 1);
  EXPECT_NE(off_grid.output.find("T1w.nii.gz"), std::string::npos) << off_grid.output;
  const auto volume =
      run("register " + f.m0.string() + " " + f.t1w.string() + " -o " + out + " --volume 3");
  EXPECT_EQ(volume.status, 1);
  EXPECT_NE(volume.output.find("--volume 3"), std::string::npos) << volume.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace

namespace {

// Real data (skipped without ../shared): the 2D PCASL series' own M0 (10_pcasl_2d_m0_10) to the
// volunteer's 1 mm MPRAGE, then the report of the quantified series shows the registration:
// its metric and the checkerboard of T1w and M0.
TEST(RegisterCli, RealM0ToItsT1wShowsInTheSeriesReport) {
  const fs::path real = fs::path(PERFQ_SHARED_DATA) / "real" / "siemens-prisma";
  if (!fs::exists(real)) GTEST_SKIP() << "no real data at " << real;
  const fs::path dir = cli_test::scratch_dir("register-real-report");
  const fs::path perf = dir / "bids" / "sub-01" / "perf";
  fs::create_directories(perf);
  cli_test::write_text(dir / "bids" / "dataset_description.json",
                       R"({"Name": "real", "BIDSVersion": "1.9.0"})");
  // The converter's sidecars, completed from the protocol sheet (as tests/io/test_real_data.cpp).
  auto asl = nlohmann::json::parse(cli_test::read_text(real / "9_pcasl_2d_9.json"));
  asl["M0Type"] = "Separate";
  asl["RepetitionTimePreparation"] = 2.54;
  asl["BackgroundSuppression"] = false;
  cli_test::write_text(perf / "sub-01_asl.json", asl.dump(2));
  fs::create_symlink(real / "9_pcasl_2d_9.nii.gz", perf / "sub-01_asl.nii.gz");
  std::string context = "volume_type\n";
  for (int p = 0; p < 51; ++p) context += "label\ncontrol\n";
  cli_test::write_text(perf / "sub-01_aslcontext.tsv", context);
  auto m0 = nlohmann::json::parse(cli_test::read_text(real / "10_pcasl_2d_m0_10.json"));
  m0.erase("M0Type");
  m0["RepetitionTimePreparation"] = 2.0;
  cli_test::write_text(perf / "sub-01_m0scan.json", m0.dump(2));
  fs::create_symlink(real / "10_pcasl_2d_m0_10.nii.gz", perf / "sub-01_m0scan.nii.gz");

  const fs::path out = dir / "out";
  cli_test::Result r = run("cbf " + (perf / "sub-01_asl.nii.gz").string() + " -o " + out.string() +
                           " --backend cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path xfm = out / "sub-01_from-asl_to-T1w_mode-image_xfm.txt";
  r = run("register " + (perf / "sub-01_m0scan.nii.gz").string() + " " +
          (real / "T1_5.nii.gz").string() + " -o " + xfm.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(
      cli_test::read_text(out / "sub-01_from-asl_to-T1w_mode-image_xfm.json"));
  // The head tilted by about 13° between the T1w and the ASL series (docs/anatomy.md).
  EXPECT_LT(j["FinalMetric"].get<double>(), j["InitialMetric"].get<double>() - 0.2);
  EXPECT_NEAR(j["AnglesDegrees"][0].get<double>(), 12.75, 1.0);
  r = run("report " + (out / "sub-01_cbf.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string page = cli_test::read_text(out / "sub-01_report.html");
  EXPECT_NE(page.find("Registration to the T1w"), std::string::npos);
  EXPECT_NE(page.find("MattesMutualInformation"), std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(out / "figures" / "sub-01_desc-registration_checkerboard.png"));
}

}  // namespace
