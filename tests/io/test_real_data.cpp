// Real scanner data (../shared/data/real/siemens-prisma, one volunteer on a Siemens Prisma 3T,
// converted by dcm2niix; skipped when absent): each series completed as `perfq check` and the
// protocol sheets say, then quantified by quantify_series, with plausible values or the
// warning its acquisition deserves.
//
// What the headers do not say, and where it comes from:
// - the order of control and label: the images (perfq check's suggestion: in each pair the
//   control is the brighter) — label first in the 2D series, control first in the 3D GRASE;
// - the multi-delay series cycle through their 6 PLDs pair by pair (the protocol's PLD list;
//   the control images' brightness, set by the background suppression's timing, repeats with
//   a period of 6 pairs);
// - the background suppression: none in the Siemens product PASL and Wang's 2D PCASL; two
//   inversion pulses ("DI", "BS On") in the others;
// - the separate M0 of the 2D PCASL: TR 2 s (protocol), written in milliseconds by dcm2niix;
// - the 3D GRASE single-delay PCASL: PLD 1.2 s (written into LabelingDuration), labeling
//   82 x 18.4 ms, TR 3.48 s per segment.
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace cli_test;  // scratch_dir, read_text, write_text

const fs::path kReal = fs::path(PERFQ_SHARED_DATA) / "real" / "siemens-prisma";

/// The converter's series `name` as the BIDS series `sub-01_acq-<acq>`: its sidecar edited, its
/// image linked, an aslcontext of `pairs` pairs (after `m0_volumes` M0 volumes, and with an
/// unpaired `extra` at the end when given).
fs::path bids_series(const fs::path& perf, const std::string& name, const std::string& acq,
                     const std::function<void(Json&)>& edit, std::size_t m0_volumes,
                     std::size_t pairs, bool label_first, const std::string& extra = "") {
  fs::create_directories(perf);
  const std::string prefix = "sub-01_acq-" + acq;
  Json j = Json::parse(read_text(kReal / (name + ".json")));
  edit(j);
  write_text(perf / (prefix + "_asl.json"), j.dump(2));
  const fs::path image = perf / (prefix + "_asl.nii.gz");
  fs::remove(image);
  fs::create_symlink(fs::absolute(kReal / (name + ".nii.gz")), image);
  std::string context = "volume_type\n";
  for (std::size_t v = 0; v < m0_volumes; ++v) context += "m0scan\n";
  for (std::size_t p = 0; p < pairs; ++p) {
    context += label_first ? "label\ncontrol\n" : "control\nlabel\n";
  }
  if (!extra.empty()) context += extra + "\n";
  write_text(perf / (prefix + "_aslcontext.tsv"), context);
  return image;
}

/// The PLD of each volume of a multi-delay series cycling through `plds` pair by pair.
Json cycled(const std::vector<double>& plds, std::size_t m0_volumes, std::size_t pairs) {
  Json out = Json::array();
  for (std::size_t v = 0; v < m0_volumes; ++v) out.push_back(0.0);
  for (std::size_t p = 0; p < pairs; ++p) {
    out.push_back(plds[p % plds.size()]);
    out.push_back(plds[p % plds.size()]);
  }
  return out;
}

struct Summary {
  double median_cbf = 0, median_att = 0, posterior_att = 0, anterior_att = 0;
};

/// Medians over the brain mask's fitted voxels, and of ATT in its posterior and anterior
/// halves (world coordinates, LPS: +y posterior).
Summary summarise(const perfq::io::SeriesMaps& m) {
  const perfq::Geometry& g = m.cbf.geometry();
  std::vector<double> y;
  std::vector<std::size_t> fitted;
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t j = 0; j < g.dims[1]; ++j) {
      for (std::size_t i = 0; i < g.dims[0]; ++i) {
        const std::size_t v = g.index(i, j, z);
        if ((*m.brain_mask)[v] == 0 || m.status[v] != 0) continue;
        fitted.push_back(v);
        y.push_back(g.origin[1] + g.direction[3] * g.spacing[0] * i +
                    g.direction[4] * g.spacing[1] * j + g.direction[5] * g.spacing[2] * z);
      }
    }
  }
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
  };
  const double middle = median(y);
  Summary s;
  std::vector<double> cbf, att, posterior, anterior;
  for (std::size_t k = 0; k < fitted.size(); ++k) {
    cbf.push_back(m.cbf[fitted[k]]);
    if (!m.att) continue;
    att.push_back((*m.att)[fitted[k]]);
    (y[k] > middle ? posterior : anterior).push_back((*m.att)[fitted[k]]);
  }
  s.median_cbf = median(cbf);
  s.median_att = median(att);
  s.posterior_att = median(posterior);
  s.anterior_att = median(anterior);
  return s;
}

bool warned(const perfq::io::SeriesMaps& m, const std::string& text) {
  return std::any_of(m.warnings.begin(), m.warnings.end(),
                     [&](const std::string& w) { return w.find(text) != std::string::npos; });
}

class RealData : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kReal)) GTEST_SKIP() << "no real data at " << kReal;
    perf_ = scratch_dir("real-data") / "sub-01" / "perf";
  }
  fs::path perf_;
};

TEST_F(RealData, SingleDelaySeriesQuantifyWithPlausibleValuesOrTheirAcquisitionsWarning) {
  // 3D GRASE PCASL (PLD 1.2 s): the median over the brain mask (grey matter's CBF is above
  // it) within 30–90 ml/100 g/min. Its last control has no label: left out with a note.
  const fs::path grase = bids_series(
      perf_, "15_pcasl_3d_15", "pcasl3d",
      [](Json& j) {
        j["PostLabelingDelay"] = 1.2;
        j["LabelingDuration"] = 82 * 0.0184;
        j["RepetitionTimePreparation"] = 3.48;
        j["M0Type"] = "Included";
        j["BackgroundSuppression"] = true;
        j["BackgroundSuppressionNumberPulses"] = 2;
      },
      1, 8, false, "control");
  const perfq::io::SeriesMaps m = perfq::io::quantify_series(grase.string(), {});
  const Summary s = summarise(m);
  EXPECT_GT(s.median_cbf, 30.0);
  EXPECT_LT(s.median_cbf, 90.0);
  EXPECT_TRUE(m.range_check.plausible);
  EXPECT_NE(m.notes.back().find("volume 17 (control) has no partner"), std::string::npos);

  // Product PASL (TI 2.0 s, TI1 0.8 s): quantifies, within the range check's bounds; its
  // brain median (17 ml/100 g/min) is low for an adult, as the images' ΔM (0.14 % of M0 over
  // the head) says.
  const fs::path pasl = bids_series(
      perf_, "3_pasl_2d_3", "pasl2d",
      [](Json& j) {
        j["PostLabelingDelay"] = 2.0;
        j["BolusCutOffFlag"] = true;
        j["BolusCutOffTechnique"] = "Q2TIPS";
        j["BolusCutOffDelayTime"] = 0.8;
        j["M0Type"] = "Included";
        j["RepetitionTimePreparation"] = 3.1;
        j["BackgroundSuppression"] = false;
        j.erase("InversionTime");
        j.erase("BolusDuration");
      },
      1, 42, true);
  const perfq::io::SeriesMaps pasl_maps = perfq::io::quantify_series(pasl.string(), {});
  EXPECT_TRUE(pasl_maps.range_check.checked);
  EXPECT_TRUE(pasl_maps.range_check.plausible);

  // 2D PCASL with a PLD of 0.2 s (the protocol's) and a separate M0: the label is still in
  // the arteries; quantified with the warning that says so.
  const fs::path short_pld = bids_series(
      perf_, "9_pcasl_2d_9", "pcasl2d",
      [](Json& j) {
        j["M0Type"] = "Separate";
        j["RepetitionTimePreparation"] = 2.54;
        j["BackgroundSuppression"] = false;
      },
      0, 51, true);
  Json m0 = Json::parse(read_text(kReal / "10_pcasl_2d_m0_10.json"));
  m0.erase("M0Type");
  m0["RepetitionTimePreparation"] = 2.0;
  write_text(perf_ / "sub-01_acq-pcasl2d_m0scan.json", m0.dump(2));
  fs::create_symlink(fs::absolute(kReal / "10_pcasl_2d_m0_10.nii.gz"),
                     perf_ / "sub-01_acq-pcasl2d_m0scan.nii.gz");
  const perfq::io::SeriesMaps pcasl = perfq::io::quantify_series(short_pld.string(), {});
  EXPECT_TRUE(warned(pcasl, "PostLabelingDelay: the PLD 0.2 s is shorter than 1 s"));
}

TEST_F(RealData, MultiDelaySeriesGiveArrivalTimesLongerAtTheBackOfTheBrain) {
  const std::vector<double> plds{0.25, 0.5, 0.75, 1.0, 1.25, 1.5};
  // 2D EPI, M0 in volume 0, labeling 1.4 s (TagDuration).
  const fs::path epi = bids_series(
      perf_, "11_to_ep2d_PCASL_11", "multipld2d",
      [&](Json& j) {
        j["PostLabelingDelay"] = cycled(plds, 1, 48);
        j["LabelingDuration"] = 1.4;
        j["RepetitionTimePreparation"] = 4.1;
        j["BackgroundSuppression"] = true;
        j["BackgroundSuppressionNumberPulses"] = 2;
        for (const char* k : {"InversionTime", "BolusDuration", "TagDuration"}) j.erase(k);
      },
      1, 48, true);
  perfq::io::SeriesRequest prior;
  prior.kinetic.att_prior = true;
  const perfq::io::SeriesMaps m = perfq::io::quantify_series(epi.string(), prior);
  const Summary s = summarise(m);
  EXPECT_GT(s.median_cbf, 30.0);
  EXPECT_LT(s.median_cbf, 90.0);
  EXPECT_GT(s.median_att, 0.7);
  EXPECT_LT(s.median_att, 1.8);
  EXPECT_GT(s.posterior_att, s.anterior_att + 0.05);

  // 3D GRASE, no M0 (M0Type Absent): ATT, and CBF relative to the brain's median.
  const fs::path grase = bids_series(
      perf_, "20_jw_tgse_PCASL_singleShot_6PLDs_8Averages_20", "multipld3d",
      [&](Json& j) {
        j["PostLabelingDelay"] = cycled(plds, 0, 48);
        j["LabelingDuration"] = 1.4;
        j["M0Type"] = "Absent";
        j["RepetitionTimePreparation"] = 3.71;
        j["BackgroundSuppression"] = true;
        j["BackgroundSuppressionNumberPulses"] = 2;
        j.erase("InitialPostLabelDelay");
      },
      0, 48, true);
  const perfq::io::SeriesMaps relative = perfq::io::quantify_series(grase.string(), {});
  ASSERT_TRUE(relative.relative_cbf);
  const Summary r = summarise(relative);
  EXPECT_NEAR(r.median_cbf, 1.0, 1e-6);
  EXPECT_GT(r.median_att, 0.7);
  EXPECT_LT(r.median_att, 1.8);
  EXPECT_GT(r.posterior_att, r.anterior_att + 0.05);
}

}  // namespace
