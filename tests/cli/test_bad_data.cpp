// Bad input data (issue #6 §3), one test per case of the issue: each gets a clear error
// naming the file and field, or a documented per-voxel status (docs/reliability.md, "Bad input"). Cases
// also covered elsewhere say where.
#include <perfq/cbf.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

fs::path scratch(const std::string& name) { return scratch_dir("bad-data-" + name); }

/// A small phantom dataset; returns its *_asl.nii.gz.
fs::path phantom(const fs::path& root, std::vector<double> delays = {1.8}) {
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.repeats = 2;
  o.delays = std::move(delays);
  return perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
}

/// A small PASL phantom dataset (TIs `tis`, TI1 0.8 s); returns its *_asl.nii.gz.
fs::path pasl_phantom(const fs::path& root, std::vector<double> tis = {2.5}) {
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.repeats = 2;
  o.pasl = true;
  o.delays = std::move(tis);
  return perfq::io::write_phantom_bids(perfq::make_phantom(o), root.string());
}

fs::path perf_of(const fs::path& asl) { return asl.parent_path(); }

/// `perfq cbf` on the dataset of `asl` into `out`.
Result cbf(const fs::path& asl, const fs::path& out, const std::string& extra = "") {
  return run("cbf " + asl.string() + " -o " + out.string() + " --backend cpu " + extra);
}

/// Exit 1, a message naming `file` and `field`, and no output.
void expect_refused(const Result& r, const fs::path& out, const std::string& file,
                    const std::string& field) {
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(file), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(field), std::string::npos) << r.output;
  EXPECT_FALSE(folder_has_files(out)) << r.output;
}

void edit_sidecar(const fs::path& asl, const std::function<void(Json&)>& edit) {
  edit_json(perf_of(asl) / "sub-01_asl.json", edit);
}

/// A NIfTI-1 file written byte by byte: `dims` (3 or 4 used), a datatype code, scaling,
/// identity orientation, and `data` as given (which may be shorter than the header says).
void write_raw_nifti(const fs::path& path, std::vector<std::int16_t> dims, std::int16_t datatype,
                     std::int16_t bitpix, float slope, float inter, const std::string& data) {
  std::string h(352, '\0');
  auto put = [&](std::size_t at, const auto& value) { std::memcpy(&h[at], &value, sizeof value); };
  put(0, std::int32_t{348});
  put(40, static_cast<std::int16_t>(dims.size()));
  for (std::size_t i = 0; i < dims.size(); ++i) put(42 + 2 * i, dims[i]);
  for (std::size_t i = dims.size(); i < 7; ++i) put(42 + 2 * i, std::int16_t{1});
  put(70, datatype);
  put(72, bitpix);
  for (int i = 0; i < 8; ++i) put(76 + 4 * i, 1.0f);
  put(108, 352.0f);
  put(112, slope);
  put(116, inter);
  put(254, std::int16_t{1});  // sform: identity (RAS)
  const float srow[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
  for (int i = 0; i < 12; ++i) put(280 + 4 * i, srow[i]);
  std::memcpy(&h[344], "n+1\0", 4);
  std::ofstream(path, std::ios::binary) << h << data;
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

void expect_input_error(const std::function<void()>& f, const std::string& file,
                        const std::string& needle) {
  try {
    f();
    FAIL() << "no error";
  } catch (const perfq::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// ---- NaN/Inf, all-zero volumes ------------------------------------------------------------

TEST(BadData, NanOrInfInTheAslSeriesGivesStatusNonFiniteInput) {
  // (A series with no finite voxel at all is refused: test_bids.cpp NanOnlySeriesIsRefused.)
  const fs::path dir = scratch("nan-asl");
  const fs::path asl = phantom(dir / "bids");
  auto series = perfq::io::read_nifti(asl.string());
  const std::size_t n = series.voxel_count(), centre = n / 2 + 14 + 24 * 14;
  series[centre] = std::nanf("");                                     // control, pair 1
  series[n + centre + 1] = std::numeric_limits<float>::infinity();     // label, pair 1
  perfq::io::write_nifti(asl.string(), series.view());
  const Result r = cbf(asl, dir / "out");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto status = perfq::io::read_nifti((dir / "out" / "sub-01_fitstatus.nii.gz").string());
  const auto map = perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string());
  for (std::size_t i : {centre, centre + 1}) {
    EXPECT_EQ(status[i], 3.0f) << i;  // non-finite input
    EXPECT_EQ(map[i], 0.0f) << i;     // never a NaN presented as a value
  }
  for (float v : map.values()) ASSERT_TRUE(std::isfinite(v));
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["StatusCounts"]["3"], 2);
}

TEST(BadData, NanOrInfInM0GivesStatusNonFiniteInput) {
  const fs::path dir = scratch("nan-m0");
  const fs::path asl = phantom(dir / "bids");
  const fs::path m0_path = perf_of(asl) / "sub-01_m0scan.nii.gz";
  auto m0 = perfq::io::read_nifti(m0_path.string());
  const std::size_t centre = m0.size() / 2 + 14 + 24 * 14;
  m0[centre] = std::nanf("");
  m0[centre + 1] = -std::numeric_limits<float>::infinity();
  perfq::io::write_nifti(m0_path.string(), m0.view());
  const Result r = cbf(asl, dir / "out");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto status = perfq::io::read_nifti((dir / "out" / "sub-01_fitstatus.nii.gz").string());
  EXPECT_EQ(status[centre], 3.0f);
  EXPECT_EQ(status[centre + 1], 3.0f);
  // Library level, multi-delay as well (see also test_single_delay.cpp BadVoxelsGetStatusAndZero).
  perfq::Geometry g;
  g.dims = {2, 1, 1};
  perfq::Series<float> dm(g, 2, 10.0f);
  perfq::Volume<float> bad(g, 1, 1000.0f);
  bad[0] = std::nanf("");
  perfq::AslProtocol p;
  p.post_labeling_delay = {1.0, 2.0};
  p.labeling_duration = {1.8};
  perfq::Execution e;
  e.backend = perfq::Backend::Cpu;
  const auto fit = perfq::fit_kinetic(dm.view(), perfq::M0Source::from_image(bad.view()), p,
                                      perfq::Physiology{}, perfq::KineticOptions{}, std::nullopt, e);
  EXPECT_EQ(fit.status[0], static_cast<std::uint8_t>(perfq::VoxelStatus::NonFiniteInput));
  EXPECT_EQ(fit.cbf[0], 0.0f);
}

TEST(BadData, AllZeroVolumeInTheSeriesIsRefused) {
  const fs::path dir = scratch("zero-volume");
  const fs::path asl = phantom(dir / "bids");
  auto series = perfq::io::read_nifti(asl.string());
  const std::size_t n = series.voxel_count();
  std::fill(series.data() + n, series.data() + 2 * n, 0.0f);  // volume 1 dropped
  perfq::io::write_nifti(asl.string(), series.view());
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.nii.gz", "volume 1");
}

TEST(BadData, AllNanVolumeInTheSeriesOrM0IsRefused) {
  // A dropped volume filled with NaN instead of 0 used to give exit 0 and a CBF map of zeros
  // (every voxel status 3, non-finite input).
  const fs::path dir = scratch("nan-volume");
  const fs::path asl = phantom(dir / "bids");
  auto series = perfq::io::read_nifti(asl.string());
  const std::size_t n = series.voxel_count();
  std::fill(series.data() + 3 * n, series.data() + 4 * n, std::nanf(""));  // volume 3
  perfq::io::write_nifti(asl.string(), series.view());
  const Result r = cbf(asl, dir / "out");
  expect_refused(r, dir / "out", "sub-01_asl.nii.gz", "volume 3");
  EXPECT_NE(r.output.find("no voxel has a finite value"), std::string::npos) << r.output;
  // The same in a 4D m0scan (its volumes are averaged).
  const fs::path dir2 = scratch("nan-m0-volume");
  const fs::path asl2 = phantom(dir2 / "bids");
  const fs::path m0_path = perf_of(asl2) / "sub-01_m0scan.nii.gz";
  const auto m0 = perfq::io::read_nifti(m0_path.string());
  perfq::Series<float> two(m0.geometry(), 2, std::nanf(""));
  std::copy(m0.values().begin(), m0.values().end(), two.data());
  perfq::io::write_nifti(m0_path.string(), two.view());
  expect_refused(cbf(asl2, dir2 / "out"), dir2 / "out", "sub-01_m0scan.nii.gz", "volume 1");
}

TEST(BadData, AllZeroM0IsRefusedAndZeroVoxelsGetStatusM0NotPositive) {
  const fs::path dir = scratch("zero-m0");
  const fs::path asl = phantom(dir / "bids");
  const fs::path m0_path = perf_of(asl) / "sub-01_m0scan.nii.gz";
  const auto m0 = perfq::io::read_nifti(m0_path.string());
  perfq::io::write_nifti(m0_path.string(), perfq::Volume<float>(m0.geometry(), 1, 0.0f).view());
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_m0scan.nii.gz", "no voxel is positive");
  // Library level: a zero or negative M0 voxel is status 2, CBF 0.
  perfq::Geometry g;
  g.dims = {3, 1, 1};
  perfq::Volume<float> dm(g, 1, 10.0f), zero(g, 1, 0.0f);
  zero[2] = -5.0f;
  perfq::AslProtocol p;
  p.post_labeling_delay = {1.8};
  p.labeling_duration = {1.8};
  const auto maps = perfq::quantify_cbf(dm.view(), perfq::M0Source::from_image(zero.view()), p,
                                        perfq::Physiology{});
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(maps.status[i], static_cast<std::uint8_t>(perfq::VoxelStatus::M0NotPositive));
    EXPECT_EQ(maps.cbf[i], 0.0f);
  }
}

// ---- timing ---------------------------------------------------------------------------------

TEST(BadData, NegativeOrZeroPldIsRefused) {
  for (const Json& pld : {Json(-1.8), Json(0.0), Json::array({1.8, -1.8, 1.8, 1.8, 1.8, 1.8, 1.8, 1.8})}) {
    const fs::path dir = scratch("pld");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [&](Json& j) { j["PostLabelingDelay"] = pld; });
    expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", "PostLabelingDelay");
  }
  // A zero in a list is allowed only for m0scan volumes: for a control volume it is refused.
  const fs::path dir = scratch("pld-zero-in-list");
  const fs::path asl = phantom(dir / "bids");
  edit_sidecar(asl, [&](Json& j) {
    j["PostLabelingDelay"] = Json::array({0.0, 1.8, 1.8, 1.8});
  });
  const Result r = cbf(asl, dir / "out");
  expect_refused(r, dir / "out", "sub-01_asl", "PostLabelingDelay");
  // Library level.
  perfq::Geometry g;
  perfq::Volume<float> dm(g, 1, 10.0f);
  perfq::AslProtocol p;
  p.labeling_duration = {1.8};
  for (double bad : {0.0, -1.0, std::nan("")}) {
    p.post_labeling_delay = {bad};
    EXPECT_THROW(perfq::quantify_cbf(dm.view(), perfq::M0Source::from_value(1000), p,
                                     perfq::Physiology{}),
                 perfq::InvalidArgument)
        << bad;
  }
  perfq::Series<float> two(g, 2, 10.0f);
  p.post_labeling_delay = {1.0, 0.0};
  EXPECT_THROW(perfq::fit_kinetic(two.view(), perfq::M0Source::from_value(1000), p,
                                  perfq::Physiology{}, perfq::KineticOptions{}),
               perfq::InvalidArgument);
}

TEST(BadData, NegativeOrZeroTiIsRefused) {
  // PASL: TI is the PostLabelingDelay, TI1 the BolusCutOffDelayTime.
  const fs::path dir = scratch("ti");
  const fs::path asl = pasl_phantom(dir / "bids");
  edit_sidecar(asl, [](Json& j) { j["PostLabelingDelay"] = -2.5; });
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", "PostLabelingDelay");
  edit_sidecar(asl, [](Json& j) {
    j["PostLabelingDelay"] = 2.5;
    j["BolusCutOffDelayTime"] = 0.0;
  });
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", "BolusCutOffDelayTime");
}

/// A small PASL phantom dataset (TI1 0.8 s); returns its *_asl.nii.gz.
TEST(BadData, PaslWithoutBolusCutOffIsRefused) {
  // PASL is quantified with the bolus duration TI1. Without a bolus cut-off (flag false, or
  // no BolusCutOffDelayTime) the run used to stop in the quantification with a message naming
  // neither the sidecar nor the field.
  const auto edits = std::vector<std::pair<std::string, std::function<void(Json&)>>>{
      {"BolusCutOffFlag", [](Json& j) { j["BolusCutOffFlag"] = false; }},
      {"BolusCutOffFlag", [](Json& j) {
         j["BolusCutOffFlag"] = false;
         j.erase("BolusCutOffDelayTime");
       }},
      {"BolusCutOffDelayTime", [](Json& j) {
         j.erase("BolusCutOffFlag");
         j.erase("BolusCutOffDelayTime");
       }}};
  for (const auto& [field, edit] : edits) {
    for (const std::vector<double>& delays : {std::vector<double>{2.5}, {1.0, 1.5, 2.0}}) {
      const fs::path dir = scratch("pasl-no-cutoff");
      const fs::path asl = pasl_phantom(dir / "bids", delays);
      edit_sidecar(asl, edit);
      expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", field);
    }
  }
}

TEST(BadData, PaslBolusCutOffNotBeforeTheInversionTimeIsRefused) {
  // TI1 (BolusCutOffDelayTime) at or after TI (PostLabelingDelay) is no cut-off: the
  // single-delay formula divides by TI1 and gave exit 0 with CBF a third of the truth (TI1 2.5
  // s for TI 1.8 s).
  for (const Json& ti1 : {Json(2.5), Json(1.8), Json::array({1.8, 2.4})}) {
    const fs::path dir = scratch("pasl-ti1-after-ti");
    const fs::path asl = pasl_phantom(dir / "bids", {1.8});
    edit_sidecar(asl, [&](Json& j) { j["BolusCutOffDelayTime"] = ti1; });
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_asl.json", "BolusCutOffDelayTime");
    EXPECT_NE(r.output.find("PostLabelingDelay"), std::string::npos) << r.output;
  }
  {  // Q2TIPS [start, end] before TI works.
    const fs::path dir = scratch("pasl-q2tips");
    const fs::path asl = pasl_phantom(dir / "bids", {1.8});
    edit_sidecar(asl, [](Json& j) { j["BolusCutOffDelayTime"] = Json::array({0.8, 1.6}); });
    EXPECT_EQ(cbf(asl, dir / "out").status, 0);
  }
  // Multi-TI: early TIs before TI1 are fine, as long as a TI comes after it.
  perfq::AslProtocol p;
  p.labeling_type = perfq::LabelingType::Pasl;
  p.post_labeling_delay = {0.5, 1.0, 2.0};
  p.bolus_cutoff_delay = 0.8;
  EXPECT_NO_THROW(perfq::validate_protocol(p, 3, 1, "x.json"));
  p.bolus_cutoff_delay = 2.0;
  expect_input_error([&] { perfq::validate_protocol(p, 3, 1, "x.json"); }, "x.json",
                     "BolusCutOffDelayTime");
  // The library refuses it too, without a sidecar: quantify_cbf and fit_kinetic.
  perfq::Geometry g;
  const auto m0 = perfq::M0Source::from_value(1000);
  perfq::Series<float> three(g, 3, 10.0f);
  EXPECT_THROW(perfq::fit_kinetic(three.view(), m0, p, perfq::Physiology{}, {}),
               perfq::InvalidArgument);
  p.bolus_cutoff_delay = 0.8;
  EXPECT_NO_THROW(perfq::fit_kinetic(three.view(), m0, p, perfq::Physiology{}, {}));
  perfq::AslProtocol single;
  single.labeling_type = perfq::LabelingType::Pasl;
  single.post_labeling_delay = {1.8};
  single.bolus_cutoff_delay = 2.5;
  perfq::Volume<float> dm(g, 1, 10.0f);
  EXPECT_THROW(perfq::quantify_cbf(dm.view(), m0, single, perfq::Physiology{}),
               perfq::InvalidArgument);
}

TEST(BadData, BolusCutOffTimesOutOfOrderAreRefused) {
  // Q2TIPS gives the first and last saturation pulse times; TI1 is the first. Given in the
  // other order ([1.6, 0.7]), 1.6 s was taken as TI1: exit 0 with CBF 0.44 of the truth.
  const fs::path dir = scratch("q2tips-order");
  const fs::path asl = pasl_phantom(dir / "bids");
  edit_sidecar(asl, [](Json& j) { j["BolusCutOffDelayTime"] = Json::array({1.6, 0.7}); });
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", "BolusCutOffDelayTime");
  edit_sidecar(asl, [](Json& j) { j["BolusCutOffDelayTime"] = Json::array({0.8, 1.6}); });
  EXPECT_EQ(cbf(asl, dir / "out").status, 0);
}

TEST(BadData, NegativeOrZeroLabelingDurationIsRefused) {
  // (Missing LabelingDuration: test_cli.cpp RefusesPcaslWithoutLabelingDuration.)
  for (const Json& tau : {Json(0.0), Json(-1.8)}) {
    const fs::path dir = scratch("tau");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [&](Json& j) { j["LabelingDuration"] = tau; });
    expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", "LabelingDuration");
  }
  perfq::Geometry g;
  perfq::Volume<float> dm(g, 1, 10.0f);
  perfq::AslProtocol p;
  p.post_labeling_delay = {1.8};
  p.labeling_duration = {0.0};
  EXPECT_THROW(perfq::quantify_cbf(dm.view(), perfq::M0Source::from_value(1000), p,
                                   perfq::Physiology{}),
               perfq::InvalidArgument);
}

TEST(BadData, TimesInMillisecondsAreRefused) {
  // BIDS gives times in seconds; a converter that wrote milliseconds used to give exit 0 with
  // a CBF map of zeros (every voxel's factor overflowed: status "non-finite result").
  const auto edits = std::vector<std::pair<std::string, std::function<void(Json&)>>>{
      {"PostLabelingDelay", [](Json& j) { j["PostLabelingDelay"] = 1800; }},
      {"LabelingDuration", [](Json& j) { j["LabelingDuration"] = 1800; }},
      {"SliceTiming", [](Json& j) {
         j["MRAcquisitionType"] = "2D";
         Json times = Json::array();
         for (int z = 0; z < 20; ++z) times.push_back(35.0 * z);  // ms
         j["SliceTiming"] = times;
       }}};
  for (const auto& [field, edit] : edits) {
    const fs::path dir = scratch("ms-" + field);
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, edit);
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_asl.json", field);
    EXPECT_NE(r.output.find("milliseconds"), std::string::npos) << r.output;
  }
  {  // Slice times under 30 s but beyond the repetition time (few slices, ms spacing).
    const fs::path dir = scratch("ms-slices-within-tr");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [](Json& j) {
      j["MRAcquisitionType"] = "2D";
      Json times = Json::array();
      for (int z = 0; z < 20; ++z) times.push_back(1.5 * z);  // up to 28.5 (ms meant)
      j["SliceTiming"] = times;
    });
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_asl.json", "SliceTiming");
    EXPECT_NE(r.output.find("repetition time"), std::string::npos) << r.output;
  }
  {  // The M0 repetition time from the m0scan sidecar: the error names that file.
    const fs::path dir = scratch("ms-m0-tr");
    const fs::path asl = phantom(dir / "bids");
    edit_json(perf_of(asl) / "sub-01_m0scan.json",
              [](Json& j) { j["RepetitionTimePreparation"] = 6000; });
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_m0scan.json", "RepetitionTimePreparation");
    EXPECT_NE(r.output.find("milliseconds"), std::string::npos) << r.output;
  }
  {  // The ASL sidecar's RepetitionTimePreparation with a separate M0: refused alike (the
     // m0scan sidecar gives the M0's; this one is still a time of the series).
    const fs::path dir = scratch("ms-asl-tr");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [](Json& j) { j["RepetitionTimePreparation"] = 4100; });
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_asl.json", "RepetitionTimePreparation");
    EXPECT_NE(r.output.find("milliseconds"), std::string::npos) << r.output;
  }
  {  // PASL: TI1 in ms.
    const fs::path dir = scratch("ms-ti1");
    const fs::path asl = pasl_phantom(dir / "bids");
    edit_sidecar(asl, [](Json& j) { j["BolusCutOffDelayTime"] = 800; });
    expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json",
                   "BolusCutOffDelayTime");
  }
  // 30 s is the last value taken for seconds (validate_protocol, quantify_cbf, fit_kinetic).
  perfq::AslProtocol p;
  p.post_labeling_delay = {30.0};
  p.labeling_duration = {1.8};
  EXPECT_NO_THROW(perfq::validate_protocol(p, 1, 1, "x.json"));
  p.post_labeling_delay = {30.5};
  expect_input_error([&] { perfq::validate_protocol(p, 1, 1, "x.json"); }, "x.json",
                     "PostLabelingDelay");
  // Library level: the same bound without a sidecar.
  perfq::Geometry g;
  perfq::Volume<float> dm(g, 1, 10.0f);
  const auto m0 = perfq::M0Source::from_value(1000);
  p.post_labeling_delay = {1800.0};
  EXPECT_THROW(perfq::quantify_cbf(dm.view(), m0, p, perfq::Physiology{}), perfq::InvalidArgument);
  p.post_labeling_delay = {1.8};
  p.labeling_duration = {1800.0};  // would not overflow, but would lower CBF by a third
  EXPECT_THROW(perfq::quantify_cbf(dm.view(), m0, p, perfq::Physiology{}), perfq::InvalidArgument);
  perfq::Series<float> two(g, 2, 10.0f);
  p.post_labeling_delay = {1000.0, 2000.0};
  p.labeling_duration = {1.8};
  EXPECT_THROW(perfq::fit_kinetic(two.view(), m0, p, perfq::Physiology{}, {}),
               perfq::InvalidArgument);
  p.post_labeling_delay = {1.0, 2.0};
  p.labeling_duration = {1800.0};
  EXPECT_THROW(perfq::fit_kinetic(two.view(), m0, p, perfq::Physiology{}, {}),
               perfq::InvalidArgument);
  // Slice times and the M0 repetition time in milliseconds, without a sidecar.
  perfq::AslProtocol two_d;
  two_d.post_labeling_delay = {1.8};
  two_d.labeling_duration = {1.8};
  two_d.readout = perfq::Readout::TwoD;
  two_d.slice_timing = {0.0};
  EXPECT_NO_THROW(perfq::quantify_cbf(dm.view(), m0, two_d, perfq::Physiology{}));
  two_d.slice_timing = {40.0};
  EXPECT_THROW(perfq::quantify_cbf(dm.view(), m0, two_d, perfq::Physiology{}),
               perfq::InvalidArgument);
  perfq::AslProtocol tr_ms;
  tr_ms.m0_repetition_time = 4600.0;
  EXPECT_THROW(perfq::resolve_constants(tr_ms, perfq::Physiology{}), perfq::InvalidArgument);
  // The factor itself: finite and within single precision, or an error (was +inf).
  perfq::AslProtocol fine;
  fine.post_labeling_delay = {1.8};
  fine.labeling_duration = {1.8};
  const perfq::ResolvedConstants c = perfq::resolve_constants(fine, perfq::Physiology{});
  EXPECT_GT(perfq::single_delay_factor(perfq::LabelingType::Pcasl, 100.0, 1.8, 0.0, c), 0.0);
  EXPECT_THROW(perfq::single_delay_factor(perfq::LabelingType::Pcasl, 200.0, 1.8, 0.0, c),
               perfq::InvalidArgument);
  EXPECT_THROW(perfq::single_delay_factor(perfq::LabelingType::Pasl, 1800.0, 0.0, 0.8, c),
               perfq::InvalidArgument);
}

TEST(BadData, SwappedControlAndLabelAreRefused) {
  // An aslcontext with control and label in the wrong order gave a map of negative CBF with
  // exit 0. Noisy phantoms (SNR 3 per pair), single- and multi-delay.
  for (const std::vector<double>& delays :
       {std::vector<double>{1.8}, std::vector<double>{0.5, 1.0, 1.5, 2.0}}) {
    const fs::path dir = scratch("swapped-" + std::to_string(delays.size()));
    perfq::PhantomOptions o;
    o.dims = {24, 28, 20};
    o.repeats = 1;
    o.snr = 3.0;
    o.delays = delays;
    const fs::path asl =
        perfq::io::write_phantom_bids(perfq::make_phantom(o), (dir / "bids").string());
    // In the right order: passes, and the sidecar records the check.
    const Result right = cbf(asl, dir / "right");
    ASSERT_EQ(right.status, 0) << right.output;
    const Json checked = Json::parse(read_text(dir / "right" / "sub-01_cbf.json"));
    EXPECT_FALSE(checked["DeltaMSignCheck"]["Inverted"].get<bool>());
    EXPECT_LT(checked["DeltaMSignCheck"]["NegativeFraction"].get<double>(), 0.3);
    // Swapped: every control row becomes label and every label row control.
    const fs::path context = perf_of(asl) / "sub-01_aslcontext.tsv";
    std::istringstream rows(read_text(context));
    std::string text, row;
    while (std::getline(rows, row)) {
      text += (row == "control" ? "label" : row == "label" ? "control" : row) + "\n";
    }
    write_text(context, text);
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_aslcontext.tsv", "volume_type");
    EXPECT_NE(r.output.find("look swapped"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("--no-sign-check"), std::string::npos) << r.output;
    // Asked for: quantified, negative, and recorded.
    const Result forced = cbf(asl, dir / "forced", "--no-sign-check");
    ASSERT_EQ(forced.status, 0) << forced.output;
    EXPECT_NE(forced.output.find("median CBF -"), std::string::npos) << forced.output;
    const Json j = Json::parse(read_text(dir / "forced" / "sub-01_cbf.json"));
    EXPECT_TRUE(j["DeltaMSignCheck"]["Inverted"].get<bool>());
    EXPECT_FALSE(j["DeltaMSignCheck"]["Checked"].get<bool>());
    EXPECT_GT(j["DeltaMSignCheck"]["NegativeFraction"].get<double>(), 0.6);
  }
}

TEST(BadData, ImplausibleCbfGivesAWarning) {
  // An M0 stored with another scale than the ASL series (here 20 times lower) cannot be told
  // from the data alone; a median CBF far outside 10–150 ml/100 g/min in the brain is
  // reported as a warning (stderr and the sidecar's Warnings), the outputs still written.
  for (const std::vector<double>& delays :
       {std::vector<double>{1.8}, std::vector<double>{0.5, 1.0, 1.5, 2.0}}) {
    const fs::path dir = scratch("implausible-" + std::to_string(delays.size()));
    const fs::path asl = phantom(dir / "bids", delays);
    const Result right = cbf(asl, dir / "right");
    ASSERT_EQ(right.status, 0) << right.output;
    EXPECT_EQ(right.output.find("warning"), std::string::npos) << right.output;
    const Json ok = Json::parse(read_text(dir / "right" / "sub-01_cbf.json"));
    EXPECT_TRUE(ok["Warnings"].empty());
    EXPECT_TRUE(ok["CbfRangeCheck"]["Plausible"].get<bool>());
    const double median = ok["CbfRangeCheck"]["MedianCBF"].get<double>();
    EXPECT_GT(median, 15.0);  // the phantom's brain: GM 55, WM 19.5 ml/100 g/min
    EXPECT_LT(median, 60.0);

    const fs::path m0_path = perf_of(asl) / "sub-01_m0scan.nii.gz";
    perfq::Image<float> m0 = perfq::io::read_nifti(m0_path.string());
    for (std::size_t i = 0; i < m0.size(); ++i) m0[i] *= 0.05f;
    perfq::io::write_nifti(m0_path.string(), m0.view());
    const Result r = cbf(asl, dir / "out");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("perfq cbf: warning: the median CBF in the brain is"),
              std::string::npos)
        << r.output;
    const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
    ASSERT_EQ(j["Warnings"].size(), 1u);
    EXPECT_FALSE(j["CbfRangeCheck"]["Plausible"].get<bool>());
    // The same voxels (the region comes from M0's shape, not its scale): 20 times the median
    // for one delay; more with several, whose (Buxton) model's T1app shortens with the flow.
    const double ratio = j["CbfRangeCheck"]["MedianCBF"].get<double>() / median;
    if (delays.size() == 1) {
      EXPECT_NEAR(ratio, 20.0, 1e-3);
    } else {
      EXPECT_GT(ratio, 20.0);
      EXPECT_LT(ratio, 25.0);
    }
    EXPECT_TRUE(fs::exists(dir / "out" / "sub-01_cbf.nii.gz"));

    // --m0-scale puts the M0 back on the ASL series' scale: no warning, the first run's CBF.
    const Result rescaled = cbf(asl, dir / "rescaled", "--m0-scale 20");
    ASSERT_EQ(rescaled.status, 0) << rescaled.output;
    EXPECT_EQ(rescaled.output.find("warning"), std::string::npos) << rescaled.output;
    const Json k = Json::parse(read_text(dir / "rescaled" / "sub-01_cbf.json"));
    EXPECT_EQ(k["M0UserScaleFactor"].get<double>(), 20.0);
    EXPECT_TRUE(k["Warnings"].empty());
    const perfq::Image<float> a = perfq::io::read_nifti((dir / "right" / "sub-01_cbf.nii.gz").string());
    const perfq::Image<float> b =
        perfq::io::read_nifti((dir / "rescaled" / "sub-01_cbf.nii.gz").string());
    double worst = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (a[i] != 0.0f) worst = std::max(worst, std::abs(double(b[i]) / a[i] - 1.0));
    }
    EXPECT_LT(worst, delays.size() == 1 ? 1e-6 : 1e-3);
  }
  // A factor must be positive (bad usage, exit 2).
  const fs::path dir = scratch("m0-scale-usage");
  for (const char* bad : {"0", "-3", "nan"}) {
    EXPECT_EQ(cbf(dir / "sub-01_asl.nii.gz", dir / "out", std::string("--m0-scale ") + bad).status,
              2)
        << bad;
  }
}

TEST(BadData, ArrivalTimesAtTheBoundInMuchOfTheBrainGiveAWarning) {
  // A range that ends before the white matter's arrival (1.1 s): most brain voxels end at the
  // bound. Warned of above 10 % of the brain's fitted voxels, and recorded in the sidecar.
  const fs::path dir = scratch("att-bound");
  const fs::path asl = phantom(dir / "bids", {0.5, 1.0, 1.5, 2.0, 2.5});
  const Result narrow = cbf(asl, dir / "narrow", "--att-max 0.9");
  ASSERT_EQ(narrow.status, 0) << narrow.output;
  EXPECT_NE(narrow.output.find("have their arrival time at a bound of its range [0, 0.9] s"),
            std::string::npos)
      << narrow.output;
  const Json record = Json::parse(read_text(dir / "narrow" / "sub-01_cbf.json"))["AttAtBound"];
  EXPECT_GT(record["Fraction"].get<double>(), 0.5);
  EXPECT_EQ(record["AtBound"].get<double>() / record["FittedVoxels"].get<double>(),
            record["Fraction"].get<double>());
  EXPECT_EQ(record["WarningAbove"], 0.1);
  // The default range [0, 3] s covers the phantom's arrival times: a few noisy voxels only.
  const Result wide = cbf(asl, dir / "wide", "--att-prior");
  ASSERT_EQ(wide.status, 0) << wide.output;
  EXPECT_EQ(wide.output.find("at a bound"), std::string::npos) << wide.output;
  EXPECT_LT(Json::parse(read_text(dir / "wide" / "sub-01_cbf.json"))["AttAtBound"]["Fraction"]
                .get<double>(),
            0.1);
}

TEST(BadData, TwoDReadoutWithoutSliceTimingIsRefused) {
  // Each slice of a 2D readout has its own delay. Without SliceTiming the run used to stop in
  // the quantification with a message naming neither the sidecar nor the field.
  for (const std::vector<double>& delays : {std::vector<double>{1.8}, {0.5, 1.0, 1.5}}) {
    const fs::path dir = scratch("2d-no-slice-timing");
    const fs::path asl = phantom(dir / "bids", delays);
    edit_sidecar(asl, [](Json& j) { j["MRAcquisitionType"] = "2D"; });
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_asl.json", "SliceTiming");
    EXPECT_NE(r.output.find("2D"), std::string::npos) << r.output;
  }
  perfq::AslProtocol p;
  p.post_labeling_delay = {1.8};
  p.labeling_duration = {1.8};
  p.readout = perfq::Readout::TwoD;
  expect_input_error([&] { perfq::validate_protocol(p, 1, 20, "x.json"); }, "x.json",
                     "SliceTiming");
}

TEST(BadData, SliceTimingFollowsSliceEncodingDirection) {
  // BIDS: with SliceEncodingDirection "k-" SliceTiming lists the slices from the last to the
  // first; with "i" or "j" the slices lie along another image axis. Both used to be ignored
  // (exit 0, every slice given another slice's delay).
  std::vector<double> times;
  for (int z = 0; z < 20; ++z) times.push_back(0.04 * z);
  const std::vector<double> reversed(times.rbegin(), times.rend());
  auto run_2d = [&](const std::string& name, const std::vector<double>& slice_times,
                    const char* direction) {
    const fs::path dir = scratch("slice-direction-" + name);
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [&](Json& j) {
      j["MRAcquisitionType"] = "2D";
      j["SliceTiming"] = slice_times;
      if (direction != nullptr) j["SliceEncodingDirection"] = direction;
    });
    return std::make_pair(cbf(asl, dir / "out"), dir / "out");
  };
  auto map_of = [](const fs::path& out) {
    return perfq::io::read_nifti((out / "sub-01_cbf.nii.gz").string()).values();
  };
  const auto [plain, plain_out] = run_2d("none", times, nullptr);
  const auto [k, k_out] = run_2d("k", times, "k");
  const auto [flipped, flipped_out] = run_2d("k-minus", reversed, "k-");
  const auto [wrong, wrong_out] = run_2d("k-minus-unreversed", times, "k-");
  for (const Result* r : {&plain, &k, &flipped, &wrong}) ASSERT_EQ(r->status, 0) << r->output;
  EXPECT_EQ(map_of(k_out), map_of(plain_out));
  EXPECT_EQ(map_of(flipped_out), map_of(plain_out));  // the same slice times, listed backwards
  EXPECT_NE(map_of(wrong_out), map_of(plain_out));
  for (const char* other : {"j", "i-", "z"}) {
    const auto [r, out] = run_2d(std::string("other-") + other, times, other);
    expect_refused(r, out, "sub-01_asl.json", "SliceEncodingDirection");
  }
}

TEST(BadData, UnknownM0RepetitionTimeIsRefused) {
  // The M0 repetition time decides the short-TR M0 correction (a factor 1.27 at TR 2 s). An
  // m0scan sidecar without RepetitionTimePreparation or RepetitionTime, or M0Type Included
  // without RepetitionTimePreparation, used to give exit 0 with the correction skipped.
  {
    const fs::path dir = scratch("m0-tr-missing");
    const fs::path asl = phantom(dir / "bids");
    edit_json(perf_of(asl) / "sub-01_m0scan.json",
              [](Json& j) { j.erase("RepetitionTimePreparation"); });
    const Result r = cbf(asl, dir / "out");
    expect_refused(r, dir / "out", "sub-01_m0scan.json", "RepetitionTimePreparation");
    edit_json(perf_of(asl) / "sub-01_m0scan.json", [](Json& j) { j["RepetitionTime"] = 2.0; });
    ASSERT_EQ(cbf(asl, dir / "out").status, 0);
    const Json out = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
    EXPECT_DOUBLE_EQ(out["M0RepetitionTime"].get<double>(), 2.0);
    EXPECT_LT(out["M0ScaleFactor"].get<double>(), 1.0);
  }
  // M0Type Included: the phantom's M0 as the first volume of the series.
  const fs::path dir = scratch("m0-included-tr-missing");
  const fs::path asl = phantom(dir / "bids");
  const auto series = perfq::io::read_nifti(asl.string());
  const auto m0 = perfq::io::read_nifti((perf_of(asl) / "sub-01_m0scan.nii.gz").string());
  perfq::Series<float> with_m0(series.geometry(), series.volumes() + 1);
  std::copy(m0.values().begin(), m0.values().end(), with_m0.data());
  std::copy(series.values().begin(), series.values().end(), with_m0.data() + m0.size());
  perfq::io::write_nifti(asl.string(), with_m0.view());
  fs::remove(perf_of(asl) / "sub-01_m0scan.nii.gz");
  fs::remove(perf_of(asl) / "sub-01_m0scan.json");
  write_text(perf_of(asl) / "sub-01_aslcontext.tsv",
             "volume_type\nm0scan\ncontrol\nlabel\ncontrol\nlabel\n");
  edit_sidecar(asl, [](Json& j) {
    j["M0Type"] = "Included";
    j["PostLabelingDelay"] = 1.8;
    j["LabelingDuration"] = 1.8;
    j.erase("RepetitionTimePreparation");
  });
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json",
                 "RepetitionTimePreparation");
  edit_sidecar(asl, [](Json& j) { j["RepetitionTimePreparation"] = {0.0, 4.6, 4.6, 4.6, 4.6}; });
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json",
                 "RepetitionTimePreparation");
  edit_sidecar(asl, [](Json& j) { j["RepetitionTimePreparation"] = 6.0; });
  EXPECT_EQ(cbf(asl, dir / "out").status, 0);
}

TEST(BadData, DuplicateSidecarKeysAreRefused) {
  // A key given twice (a hand-edited sidecar): the JSON parser kept the last value silently,
  // so "M0Type": "Included" added at the top of a sidecar that says Separate further down
  // was ignored with exit 0.
  const fs::path dir = scratch("duplicate-keys");
  const fs::path asl = phantom(dir / "bids");
  const fs::path sidecar = perf_of(asl) / "sub-01_asl.json";
  const std::string original = read_text(sidecar);
  write_text(sidecar, "{\"M0Type\": \"Included\", " + original.substr(original.find('{') + 1));
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json", "M0Type");
  write_text(sidecar, original);
  const fs::path m0_sidecar = perf_of(asl) / "sub-01_m0scan.json";
  const std::string m0_original = read_text(m0_sidecar);
  write_text(m0_sidecar, "{\"RepetitionTimePreparation\": 2.0, " +
                             m0_original.substr(m0_original.find('{') + 1));
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_m0scan.json",
                 "RepetitionTimePreparation");
  // Inside a nested object perfq reads nothing: a repeat there is no error.
  write_text(m0_sidecar, "{\"Extra\": {\"Name\": 1, \"Name\": 2}, " +
                             m0_original.substr(m0_original.find('{') + 1));
  EXPECT_EQ(cbf(asl, dir / "out").status, 0);
}

TEST(BadData, BackgroundSuppressionWithoutPulseCountIsRefused) {
  // BackgroundSuppression true without BackgroundSuppressionNumberPulses used to give exit 0
  // with no correction for the pulses (CBF 19 % too low for 4 pulses at 0.95 each), and
  // pulses with BackgroundSuppression false were ignored.
  const auto edits = std::vector<std::function<void(Json&)>>{
      [](Json& j) { j["BackgroundSuppression"] = true; },
      [](Json& j) {
        j["BackgroundSuppression"] = false;
        j["BackgroundSuppressionNumberPulses"] = 4;
      },
      [](Json& j) {
        j.erase("BackgroundSuppression");
        j["BackgroundSuppressionNumberPulses"] = 2;
      }};
  for (const auto& edit : edits) {
    const fs::path dir = scratch("bs-pulses");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, edit);
    expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_asl.json",
                   "BackgroundSuppressionNumberPulses");
  }
  // The pulse count may be stated on the command line instead (it beats the sidecar's).
  {
    const fs::path dir = scratch("bs-pulses-option");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [](Json& j) { j["BackgroundSuppression"] = true; });
    const Result refused = cbf(asl, dir / "refused");
    EXPECT_NE(refused.output.find("--bs-pulses"), std::string::npos) << refused.output;
    const Result r = cbf(asl, dir / "out", "--bs-pulses 4");
    ASSERT_EQ(r.status, 0) << r.output;
    const Json out = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
    EXPECT_NEAR(out["BackgroundSuppressionFactor"].get<double>(), std::pow(0.95, 4), 1e-12);
    EXPECT_EQ(out["BackgroundSuppressionPulsesSource"], "--bs-pulses");
    // The library refuses an unknown count unless a total efficiency is given.
    perfq::AslProtocol p;
    p.background_suppression.enabled = true;
    p.background_suppression.pulses_unknown = true;
    EXPECT_THROW(perfq::resolve_constants(p, perfq::Physiology{}), perfq::InvalidArgument);
    p.background_suppression.efficiency = 0.8;
    EXPECT_DOUBLE_EQ(perfq::resolve_constants(p, perfq::Physiology{}).background_suppression_factor,
                     0.8);
  }
  // Stated pulses (0 included) are taken.
  for (int pulses : {0, 4}) {
    const fs::path dir = scratch("bs-pulses-given");
    const fs::path asl = phantom(dir / "bids");
    edit_sidecar(asl, [&](Json& j) {
      j["BackgroundSuppression"] = true;
      j["BackgroundSuppressionNumberPulses"] = pulses;
    });
    ASSERT_EQ(cbf(asl, dir / "out").status, 0);
    const Json out = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
    EXPECT_NEAR(out["BackgroundSuppressionFactor"].get<double>(), std::pow(0.95, pulses), 1e-12);
  }
}

TEST(BadData, BackgroundSuppressionPulseTimesGiveTheCountWhenTheNumberIsMissing) {
  // BIDS recommends BackgroundSuppressionNumberPulses and BackgroundSuppressionPulseTime; with
  // only the times, the count is their number (recorded as its source), here 3: α × 0.95³.
  const fs::path dir = scratch("bs-pulse-times");
  const fs::path asl = phantom(dir / "bids");
  edit_sidecar(asl, [](Json& j) {
    j["BackgroundSuppression"] = true;
    j["BackgroundSuppressionPulseTime"] = Json::array({0.3, 1.1, 1.6});
  });
  const Result r = cbf(asl, dir / "out");
  ASSERT_EQ(r.status, 0) << r.output;
  const Json out = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(out["BackgroundSuppressionNumberPulses"], 3);
  EXPECT_NEAR(out["BackgroundSuppressionFactor"].get<double>(), 0.95 * 0.95 * 0.95, 1e-12);
  EXPECT_NEAR(out["EffectiveLabelingEfficiency"].get<double>(), 0.85 * 0.95 * 0.95 * 0.95, 1e-12);
  EXPECT_EQ(out["BackgroundSuppressionPulsesSource"],
            "sidecar: BackgroundSuppressionPulseTime (the number of its times)");
  // With the count as well, the count is taken (its source says so).
  edit_sidecar(asl, [](Json& j) { j["BackgroundSuppressionNumberPulses"] = 2; });
  ASSERT_EQ(cbf(asl, dir / "counted").status, 0);
  const Json counted = Json::parse(read_text(dir / "counted" / "sub-01_cbf.json"));
  EXPECT_NEAR(counted["BackgroundSuppressionFactor"].get<double>(), 0.95 * 0.95, 1e-12);
  EXPECT_EQ(counted["BackgroundSuppressionPulsesSource"],
            "sidecar: BackgroundSuppressionNumberPulses");
  // Neither: refused, saying BIDS recommends the field (it does not require it).
  edit_sidecar(asl, [](Json& j) {
    j.erase("BackgroundSuppressionNumberPulses");
    j.erase("BackgroundSuppressionPulseTime");
  });
  const Result refused = cbf(asl, dir / "refused");
  expect_refused(refused, dir / "refused", "sub-01_asl.json", "BackgroundSuppressionNumberPulses");
  EXPECT_NE(refused.output.find("recommended by BIDS"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("BackgroundSuppressionPulseTime"), std::string::npos)
      << refused.output;
  EXPECT_EQ(refused.output.find("required"), std::string::npos) << refused.output;
}

TEST(BadData, PaslWithALabelingDurationIsQuantifiedFromTheInversionTimeWithAWarning) {
  // BIDS defines LabelingDuration for PCASL/CASL only; a simulator writes it for PASL with
  // PostLabelingDelay = TI − TI1 beside it. perfq takes TI from PostLabelingDelay (CBF then
  // e^(−LD/T1b) low, 38 % for 0.8 s) and warns, naming both fields.
  const fs::path dir = scratch("pasl-labeling-duration");
  const fs::path asl = pasl_phantom(dir / "bids");
  const Result plain = cbf(asl, dir / "plain");
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_EQ(plain.output.find("LabelingDuration"), std::string::npos) << plain.output;
  edit_sidecar(asl, [](Json& j) { j["LabelingDuration"] = 0.8; });
  const Result r = cbf(asl, dir / "out");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const std::string needle : {"sub-01_asl.json: LabelingDuration", "PostLabelingDelay (2.5 s",
                                   "BolusCutOffDelayTime (0.8 s)", "38 % too low"}) {
    EXPECT_NE(r.output.find(needle), std::string::npos) << needle << "\n" << r.output;
  }
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  ASSERT_EQ(j["Warnings"].size(), 1u) << j["Warnings"].dump();
  EXPECT_NE(j["Warnings"][0].get<std::string>().find("LabelingDuration"), std::string::npos);
  // The maps are those of TI = PostLabelingDelay: the same as without the field.
  const auto a = perfq::io::read_nifti((dir / "plain" / "sub-01_cbf.nii.gz").string());
  const auto b = perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string());
  EXPECT_EQ(std::memcmp(a.values().data(), b.values().data(), a.size() * sizeof(float)), 0);
  // perfq check warns too, naming both fields.
  const Result check = run("check " + asl.string());
  EXPECT_NE(check.output.find("LabelingDuration"), std::string::npos) << check.output;
  EXPECT_NE(check.output.find("PostLabelingDelay"), std::string::npos) << check.output;
}

TEST(BadData, RequiredFieldsLeftOutAreDefaultedWithAWarningUnlessAnOptionStatesThem) {
  // BackgroundSuppression and MagneticFieldStrength are required by BIDS; dcm2niix leaves the
  // first out. Read as none and 3 T, each with a warning saying what it changes, printed and
  // in the sidecar's Warnings; an option that states the value silences it.
  const fs::path dir = scratch("defaulted");
  const fs::path asl = phantom(dir / "bids");
  edit_sidecar(asl, [](Json& j) {
    j.erase("BackgroundSuppression");
    j.erase("MagneticFieldStrength");
  });
  const perfq::io::AslDataset d = perfq::io::read_asl_bids(asl.string());
  ASSERT_EQ(d.defaulted.size(), 2u);
  EXPECT_EQ(d.defaulted[0].field, "BackgroundSuppression");
  EXPECT_EQ(d.defaulted[1].field, "MagneticFieldStrength");
  EXPECT_EQ(d.defaulted[0].file, (perf_of(asl) / "sub-01_asl.json").string());
  EXPECT_FALSE(d.protocol.background_suppression.enabled);
  EXPECT_EQ(d.protocol.magnetic_field_strength, 3.0);

  const Result r = cbf(asl, dir / "out");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("warning: " + d.defaulted[0].file + ": BackgroundSuppression: not "
                          "given (BIDS requires it)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("--bs-pulses"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("MagneticFieldStrength: not given"), std::string::npos) << r.output;
  const Json sidecar = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  ASSERT_EQ(sidecar["Warnings"].size(), 2u) << sidecar["Warnings"].dump();
  const Result stated = cbf(asl, dir / "stated", "--bs-pulses 0 --t1b 1.65");
  ASSERT_EQ(stated.status, 0) << stated.output;
  EXPECT_EQ(stated.output.find("not given"), std::string::npos) << stated.output;
  // Stated, the values are the ones assumed: the same CBF.
  EXPECT_EQ(perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string()).values(),
            perfq::io::read_nifti((dir / "stated" / "sub-01_cbf.nii.gz").string()).values());

  // Given in the sidecar: nothing defaulted (the phantom writes both).
  const fs::path full = phantom(dir / "full");
  EXPECT_TRUE(perfq::io::read_asl_bids(full.string()).defaulted.empty());
}

TEST(BadData, SeriesOrM0AsBothNiiAndNiiGzIsRefused) {
  // A stale conversion left the same image as .nii beside .nii.gz. perfq bids used to
  // quantify both into the same outputs (exit 0; with --nprocs 2 concurrently, the last
  // written winning), and perfq cbf took the .nii.gz M0 without a word.
  auto copy_as_nii = [](const fs::path& gz, const fs::path& nii) {
    perfq::io::write_nifti(nii.string(), perfq::io::read_nifti(gz.string()).view());
  };
  {
    const fs::path dir = scratch("series-twice");
    const fs::path asl = phantom(dir / "bids");
    copy_as_nii(asl, perf_of(asl) / "sub-01_asl.nii");
    const Result r = run("bids " + (dir / "bids").string() + " " + (dir / "out").string() +
                         " participant --backend cpu --nprocs 2");
    expect_refused(r, dir / "out", "sub-01_asl.nii", "keep one");
  }
  const fs::path dir = scratch("m0-twice");
  const fs::path asl = phantom(dir / "bids");
  copy_as_nii(perf_of(asl) / "sub-01_m0scan.nii.gz", perf_of(asl) / "sub-01_m0scan.nii");
  expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_m0scan.nii", "keep one");
}

TEST(BadData, FieldStrengthWithoutADefaultBloodT1NeedsT1b) {
  // 7 T used to take the 3 T blood T1 (1.65 s) silently.
  const fs::path dir = scratch("seven-tesla");
  const fs::path asl = phantom(dir / "bids");
  edit_sidecar(asl, [](Json& j) { j["MagneticFieldStrength"] = 7; });
  const Result r = cbf(asl, dir / "out");
  expect_refused(r, dir / "out", "sub-01_asl.json", "MagneticFieldStrength");
  EXPECT_NE(r.output.find("--t1b"), std::string::npos) << r.output;
  const Result given = cbf(asl, dir / "given", "--t1b 2.1");
  ASSERT_EQ(given.status, 0) << given.output;
  EXPECT_DOUBLE_EQ(Json::parse(read_text(dir / "given" / "sub-01_cbf.json"))["ArterialBloodT1"]
                       .get<double>(),
                   2.1);
  // 2.89 T (as some 3 T scanners report) and 1.5 T keep their defaults.
  for (const auto& [tesla, t1b] : {std::pair{2.89, 1.65}, std::pair{1.5, 1.35}}) {
    edit_sidecar(asl, [&](Json& j) { j["MagneticFieldStrength"] = tesla; });
    const fs::path out = dir / ("t" + std::to_string(static_cast<int>(tesla * 100)));
    ASSERT_EQ(cbf(asl, out).status, 0);
    EXPECT_DOUBLE_EQ(
        Json::parse(read_text(out / "sub-01_cbf.json"))["ArterialBloodT1"].get<double>(), t1b);
  }
}

// ---- masks ---------------------------------------------------------------------------------

TEST(BadData, EmptyMaskIsRefused) {
  const fs::path dir = scratch("empty-mask");
  const fs::path asl = phantom(dir / "bids");
  const auto m0 = perfq::io::read_nifti((perf_of(asl) / "sub-01_m0scan.nii.gz").string());
  perfq::io::write_nifti((dir / "empty.nii.gz").string(), perfq::Mask(m0.geometry()).view());
  expect_refused(cbf(asl, dir / "out", "--mask " + (dir / "empty.nii.gz").string()), dir / "out",
                 "empty.nii.gz", "empty");
  // (stats with an empty mask: test_stats_cli.cpp RefusesBadInputsAndLeavesNoOutput.)
  const Result s = run("stats " + (perf_of(asl) / "sub-01_m0scan.nii.gz").string() + " --mask " +
                       (dir / "empty.nii.gz").string() + " -o " + (dir / "s" / "t.tsv").string());
  expect_refused(s, dir / "s", "empty.nii.gz", "no region");
  // Library level: every voxel outside the mask gets status 1 (documented), no error.
  perfq::Geometry g;
  g.dims = {2, 2, 1};
  perfq::Volume<float> dm(g, 1, 10.0f);
  perfq::Mask none(g);
  perfq::AslProtocol p;
  p.post_labeling_delay = {1.8};
  p.labeling_duration = {1.8};
  const auto maps = perfq::quantify_cbf(dm.view(), perfq::M0Source::from_value(1000), p,
                                        perfq::Physiology{}, none.view());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(maps.status[i], 1);
}

TEST(BadData, OneVoxelMaskWorks) {
  const fs::path dir = scratch("one-voxel-mask");
  const fs::path asl = phantom(dir / "bids", {0.5, 1.0, 1.5, 2.0});
  const auto m0 = perfq::io::read_nifti((perf_of(asl) / "sub-01_m0scan.nii.gz").string());
  perfq::Mask one(m0.geometry());
  const std::size_t centre = m0.size() / 2 + 12 + 24 * 14;
  one[centre] = 1;
  perfq::io::write_nifti((dir / "one.nii.gz").string(), one.view());
  // Multi-delay with the ATT prior: the pooled noise comes from one voxel.
  const Result r = cbf(asl, dir / "out", "--att-prior --mask " + (dir / "one.nii.gz").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto status = perfq::io::read_nifti((dir / "out" / "sub-01_fitstatus.nii.gz").string());
  const auto map = perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string());
  std::size_t outside = 0;
  for (std::size_t i = 0; i < status.size(); ++i) outside += status[i] == 1.0f;
  EXPECT_EQ(outside, status.size() - 1);
  EXPECT_NE(status[centre], 1.0f);
  EXPECT_TRUE(std::isfinite(map[centre]));
  // Regional statistics of one voxel: count 1, SD 0.
  const Result s = run("stats " + (dir / "out" / "sub-01_cbf.nii.gz").string() + " --mask " +
                       (dir / "one.nii.gz").string() + " -o " + (dir / "s.tsv").string());
  ASSERT_EQ(s.status, 0) << s.output;
  const std::string table = read_text(dir / "s.tsv");
  EXPECT_NE(table.find("\t1\t"), std::string::npos) << table;
}

// ---- files ---------------------------------------------------------------------------------

TEST(BadData, HeaderClaimingMoreDataThanTheFileHoldsIsRefused) {
  // (More variants, .nii and .nii.gz: test_nifti.cpp TruncatedFiles.)
  const fs::path dir = scratch("short-data");
  const std::vector<float> values(4 * 4 * 2, 1.0f);  // header says 4x4x4
  write_raw_nifti(dir / "short.nii", {4, 4, 4}, 16, 32, 0, 0, bytes_of(values));
  expect_input_error([&] { perfq::io::read_nifti((dir / "short.nii").string()); }, "short.nii",
                     "truncated");
  const Result r = run("stats " + (dir / "short.nii").string() + " --mask " +
                       (dir / "short.nii").string() + " -o " + (dir / "s" / "t.tsv").string());
  expect_refused(r, dir / "s", "short.nii", "truncated");
}

TEST(BadData, TruncatedNiiGzIsRefused) {
  // (Corrupt streams: test_nifti.cpp CorruptCompressedData.)
  const fs::path dir = scratch("short-gz");
  perfq::Geometry g;
  g.dims = {16, 16, 16};
  perfq::Volume<float> noise(g);
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = std::sin(0.37f * i);
  perfq::io::write_nifti((dir / "whole.nii.gz").string(), noise.view());
  const std::string whole = read_text(dir / "whole.nii.gz");
  std::ofstream(dir / "cut.nii.gz", std::ios::binary) << whole.substr(0, whole.size() / 2);
  try {
    perfq::io::read_nifti((dir / "cut.nii.gz").string());
    FAIL() << "read a truncated .nii.gz";
  } catch (const perfq::InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cut.nii.gz"), std::string::npos) << m;
    EXPECT_TRUE(m.find("truncated") != std::string::npos ||
                m.find("corrupt") != std::string::npos) << m;
  }
}

TEST(BadData, UnsupportedDataTypesAreRefused) {
  const fs::path dir = scratch("types");
  const std::string data(8 * 8 * 2 * 16, '\0');
  for (auto [code, bits, name] : {std::tuple<std::int16_t, std::int16_t, const char*>{32, 64, "complex64"},
                                  {128, 24, "rgb24"}, {1792, 128, "complex128"}}) {
    const fs::path file = dir / (std::string(name) + ".nii");
    write_raw_nifti(file, {8, 8, 2}, code, bits, 0, 0, data);
    expect_input_error([&] { perfq::io::read_nifti(file.string()); }, file.string(),
                       std::string("unsupported voxel type ") + name);
  }
}

TEST(BadData, AslAndM0OnDifferentGridOrOrientationAreRefused) {
  // (Different dimensions: test_cli.cpp RefusesM0OnAnotherGrid; here same dimensions, other
  // orientation and other voxel size.)
  for (int variant : {0, 1}) {
    const fs::path dir = scratch("m0-orientation");
    const fs::path asl = phantom(dir / "bids");
    const fs::path m0_path = perf_of(asl) / "sub-01_m0scan.nii.gz";
    auto m0 = perfq::io::read_nifti(m0_path.string());
    perfq::Geometry g = m0.geometry();
    if (variant == 0) {
      g.direction = {0, 1, 0, 1, 0, 0, 0, 0, 1};  // x and y swapped
    } else {
      g.spacing[2] *= 1.5;
    }
    perfq::io::write_nifti(m0_path.string(),
                           perfq::Volume<float>(g, 1, std::vector<float>(m0.values())).view());
    expect_refused(cbf(asl, dir / "out"), dir / "out", "sub-01_m0scan.nii.gz", "grid");
  }
}

TEST(BadData, Int16Uint8AndFloat64WithScalingAreReadExactly) {
  // (Hand-written headers in other byte orders: test_nifti.cpp Int16WithSlope..., Float64....)
  const fs::path dir = scratch("scaled");
  const std::size_t n = 4 * 4 * 2;
  std::vector<std::int16_t> i16(n);
  std::vector<std::uint8_t> u8(n);
  std::vector<double> f64(n);
  for (std::size_t i = 0; i < n; ++i) {
    i16[i] = static_cast<std::int16_t>(50 * static_cast<int>(i) - 700);
    u8[i] = static_cast<std::uint8_t>(7 * i);
    f64[i] = 0.125 * i;
  }
  write_raw_nifti(dir / "i16.nii", {4, 4, 2}, 4, 16, 0.5f, 100.0f, bytes_of(i16));
  write_raw_nifti(dir / "u8.nii", {4, 4, 2}, 2, 8, 2.0f, -3.0f, bytes_of(u8));
  write_raw_nifti(dir / "f64.nii", {4, 4, 2}, 64, 64, 4.0f, 1.0f, bytes_of(f64));
  const auto a = perfq::io::read_nifti((dir / "i16.nii").string());
  const auto b = perfq::io::read_nifti((dir / "u8.nii").string());
  const auto c = perfq::io::read_nifti((dir / "f64.nii").string());
  EXPECT_EQ(perfq::io::read_nifti_info((dir / "u8.nii").string()).stored_type, "uint8");
  for (std::size_t i = 0; i < n; ++i) {
    EXPECT_EQ(a[i], 0.5f * i16[i] + 100.0f) << i;
    EXPECT_EQ(b[i], 2.0f * u8[i] - 3.0f) << i;
    EXPECT_EQ(c[i], static_cast<float>(4.0 * f64[i] + 1.0)) << i;
  }
  // End to end: an int16 series with scaling and a float64 M0 with scaling give the CBF of
  // the same values stored as float32.
  const fs::path root = scratch("scaled-cli");
  const fs::path asl = phantom(root / "bids");
  auto series = perfq::io::read_nifti(asl.string());
  const fs::path m0_gz = perf_of(asl) / "sub-01_m0scan.nii.gz";
  const auto m0 = perfq::io::read_nifti(m0_gz.string());
  float top = 0;
  for (float v : series.values()) top = std::max(top, std::abs(v));
  float slope = 0.25f;
  while (top / slope > 30000.0f) slope *= 2.0f;
  std::vector<std::int16_t> stored(series.size());
  for (std::size_t i = 0; i < series.size(); ++i) {
    stored[i] = static_cast<std::int16_t>(std::lround((series[i] - 500.0f) / slope));
    series[i] = slope * stored[i] + 500.0f;  // exactly what the scaled file holds
  }
  perfq::io::write_nifti(asl.string(), series.view());  // the float32 reference
  ASSERT_EQ(cbf(asl, root / "float").status, 0);
  // The same dataset with int16 + scaling (ASL) and float64 + scaling (M0) files.
  const auto& sg = series.geometry();
  const std::vector<std::int16_t> d3{static_cast<std::int16_t>(sg.dims[0]),
                                     static_cast<std::int16_t>(sg.dims[1]),
                                     static_cast<std::int16_t>(sg.dims[2])};
  std::vector<std::int16_t> d4 = d3;
  d4.push_back(static_cast<std::int16_t>(series.volumes()));
  std::vector<double> m0_stored(m0.size());
  for (std::size_t i = 0; i < m0.size(); ++i) m0_stored[i] = 0.5 * m0[i];
  fs::remove(asl);
  fs::remove(m0_gz);
  const fs::path asl_nii = perf_of(asl) / "sub-01_asl.nii";
  write_raw_nifti(asl_nii, d4, 4, 16, slope, 500.0f, bytes_of(stored));
  write_raw_nifti(perf_of(asl) / "sub-01_m0scan.nii", d3, 64, 64, 2.0f, 0.0f, bytes_of(m0_stored));
  ASSERT_EQ(perfq::io::read_nifti_info(asl_nii.string()).stored_type, "int16");
  const Result r = cbf(asl_nii, root / "scaled");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto expected = perfq::io::read_nifti((root / "float" / "sub-01_cbf.nii.gz").string());
  const auto got = perfq::io::read_nifti((root / "scaled" / "sub-01_cbf.nii.gz").string());
  ASSERT_EQ(expected.size(), got.size());
  EXPECT_EQ(expected.values(), got.values());
}

TEST(BadData, LabelImageWithNonIntegerLabelsIsRefused) {
  // (Library level with the voxel named: test_nifti.cpp LabelsRejectNonIntegerNamingVoxelAndValue.)
  const fs::path dir = scratch("labels");
  perfq::Geometry g;
  g.dims = {4, 4, 2};
  perfq::Volume<float> labels(g, 1, 1.0f), map(g, 1, 50.0f);
  labels[5] = 2.5f;
  perfq::io::write_nifti((dir / "labels.nii.gz").string(), labels.view());
  perfq::io::write_nifti((dir / "map.nii.gz").string(), map.view());
  const Result s = run("stats " + (dir / "map.nii.gz").string() + " --labels " +
                       (dir / "labels.nii.gz").string() + " -o " + (dir / "s" / "t.tsv").string());
  expect_refused(s, dir / "s", "labels.nii.gz", "voxel (1, 1, 0) has value 2.5");
  const Result w = run("watershed --territories " + (dir / "labels.nii.gz").string() +
                       " --width 4 -o " + (dir / "w" / "bz.nii.gz").string());
  expect_refused(w, dir / "w", "labels.nii.gz", "2.5");
}

}  // namespace
