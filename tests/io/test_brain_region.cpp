// What quantify_series does without a mask and without an M0: the automatic brain mask
// (perfq::brain_mask) used for every check and summary and written beside the maps, relative
// CBF for M0Type Absent, and the warning for a single delay too short for an adult brain.
#include <perfq/asl_series.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace cli_test;  // scratch_dir, read_text, write_text

perfq::Phantom small_phantom(std::vector<double> delays, std::uint64_t seed = 1) {
  perfq::PhantomOptions o;
  o.dims = {30, 36, 24};
  o.repeats = 2;
  o.snr = 10;
  o.seed = seed;
  o.delays = std::move(delays);
  return perfq::make_phantom(o);
}

void edit_json(const fs::path& path, const std::function<void(Json&)>& edit) {
  Json j = Json::parse(read_text(path));
  edit(j);
  write_text(path, j.dump(2));
}

double median(std::vector<float> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

TEST(BrainMask, KeepsTheLargestPartAndFillsTheHolesOfEachSlice) {
  // A 12x12x4 image: a 6x6x4 block of 100 with a 2x2 hole (0) in its middle in every slice, a
  // separate 2x2x1 blob of 100 in a corner, background 1. Half the 98th percentile is 50.
  perfq::Geometry g;
  g.dims = {12, 12, 4};
  perfq::Volume<float> image(g, 1, 1.0f);
  auto at = [&](std::size_t x, std::size_t y, std::size_t z) -> float& {
    return image[g.index(x, y, z)];
  };
  for (std::size_t z = 0; z < 4; ++z) {
    for (std::size_t y = 3; y < 9; ++y) {
      for (std::size_t x = 3; x < 9; ++x) at(x, y, z) = 100.0f;
    }
    for (std::size_t y = 5; y < 7; ++y) {
      for (std::size_t x = 5; x < 7; ++x) at(x, y, z) = 0.0f;
    }
  }
  for (std::size_t y = 0; y < 2; ++y) {
    for (std::size_t x = 0; x < 2; ++x) at(x, y, 0) = 100.0f;
  }
  const perfq::Mask mask = perfq::brain_mask(image.view());
  std::size_t inside = 0;
  for (std::size_t i = 0; i < mask.size(); ++i) inside += mask[i];
  EXPECT_EQ(inside, 6u * 6u * 4u);         // the block with its holes filled
  EXPECT_EQ(mask[g.index(5, 5, 2)], 1);    // a hole
  EXPECT_EQ(mask[g.index(0, 0, 0)], 0);    // the blob
  EXPECT_EQ(mask[g.index(10, 10, 3)], 0);  // background
  // Nothing positive: nothing.
  const perfq::Volume<float> zero(g, 1, 0.0f);
  const perfq::Mask none = perfq::brain_mask(zero.view());
  for (std::size_t i = 0; i < none.size(); ++i) ASSERT_EQ(none[i], 0);
  EXPECT_THROW(perfq::brain_mask(perfq::Series<float>(g, 2, 1.0f).view()), perfq::InvalidArgument);
}

TEST(BrainRegion, WithoutAMaskTheBrainMaskIsComputedUsedForTheSummariesAndWritten) {
  const perfq::Phantom p = small_phantom({1.8});
  const fs::path dir = scratch_dir("brain-region");
  const std::string asl = perfq::io::write_phantom_bids(p, (dir / "bids").string());
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, {});
  ASSERT_TRUE(maps.brain_mask.has_value());
  EXPECT_EQ(maps.check_region, "automatic brain mask (of the M0 image)");
  // The phantom's M0 is bright in grey and white matter and CSF: the mask is its head.
  std::size_t both = 0, mask = 0, head = 0;
  for (std::size_t i = 0; i < p.tissue.size(); ++i) {
    const bool in_head = p.tissue[i] != perfq::kBackground;
    both += (*maps.brain_mask)[i] != 0 && in_head;
    mask += (*maps.brain_mask)[i] != 0;
    head += in_head;
  }
  EXPECT_GT(2.0 * both / (mask + head), 0.95);
  // The median is over the mask's fitted voxels, not the background's.
  std::vector<float> in_mask;
  for (std::size_t i = 0; i < maps.cbf.size(); ++i) {
    if ((*maps.brain_mask)[i] != 0 && maps.status[i] == 0) in_mask.push_back(maps.cbf[i]);
  }
  EXPECT_EQ(maps.median_cbf, median(in_mask));
  EXPECT_EQ(maps.range_check.voxels, in_mask.size());
  const Json j = Json::parse(maps.provenance_json);
  EXPECT_EQ(j["BrainRegion"]["Voxels"], mask);
  EXPECT_EQ(j["DeltaMSignCheck"]["Region"], maps.check_region);
  // Written with the maps; not with a mask given.
  const auto names = perfq::io::series_outputs(maps);
  EXPECT_TRUE(std::any_of(names.begin(), names.end(), [](const perfq::io::SeriesOutput& o) {
    return o.name == "sub-01_desc-brain_mask.nii.gz";
  }));
  const fs::path mask_path = dir / "mask.nii.gz";
  perfq::io::write_nifti(mask_path.string(), p.brain.view());
  perfq::io::SeriesRequest masked;
  masked.mask_path = mask_path.string();
  const perfq::io::SeriesMaps with_mask = perfq::io::quantify_series(asl, masked);
  EXPECT_FALSE(with_mask.brain_mask.has_value());
  EXPECT_EQ(with_mask.check_region, "mask");
}

TEST(BrainRegion, WithoutAnM0ImageTheMeanControlImageGivesTheMask) {
  const perfq::Phantom p = small_phantom({1.8});
  const fs::path dir = scratch_dir("brain-region-control");
  const std::string asl = perfq::io::write_phantom_bids(p, (dir / "bids").string());
  const fs::path perf = fs::path(asl).parent_path();
  edit_json(perf / "sub-01_asl.json", [](Json& j) {
    j["M0Type"] = "Estimate";
    j["M0Estimate"] = 1000.0;
  });
  fs::remove(perf / "sub-01_m0scan.nii.gz");
  fs::remove(perf / "sub-01_m0scan.json");
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, {});
  EXPECT_EQ(maps.check_region, "automatic brain mask (of the mean control image)");
  ASSERT_TRUE(maps.brain_mask.has_value());
  std::size_t both = 0, brain = 0;
  for (std::size_t i = 0; i < p.brain.size(); ++i) {
    both += (*maps.brain_mask)[i] != 0 && p.brain[i] != 0;
    brain += p.brain[i] != 0;
  }
  EXPECT_GE(both, brain * 95 / 100);
  EXPECT_TRUE(maps.range_check.checked);  // the range check runs with a single M0 value too
}

TEST(RelativeCbf, AnAbsentM0GivesAttAndCbfRelativeToTheBrainsMedian) {
  const perfq::Phantom p = small_phantom({0.5, 1.0, 1.5, 2.0, 2.5});
  const fs::path dir = scratch_dir("relative-cbf");
  const std::string asl = perfq::io::write_phantom_bids(p, (dir / "bids").string());
  // The same series with its M0 (the reference), in the model relative CBF uses.
  perfq::io::SeriesRequest fixed_flow;
  fixed_flow.kinetic.variant = perfq::KineticVariant::BuxtonFixedFlow;
  const perfq::io::SeriesMaps absolute = perfq::io::quantify_series(asl, fixed_flow);

  const fs::path perf = fs::path(asl).parent_path();
  const perfq::Image<float> m0 = perfq::io::read_nifti((perf / "sub-01_m0scan.nii.gz").string());
  edit_json(perf / "sub-01_asl.json", [](Json& j) { j["M0Type"] = "Absent"; });
  fs::remove(perf / "sub-01_m0scan.nii.gz");
  fs::remove(perf / "sub-01_m0scan.json");
  const perfq::io::SeriesMaps relative = perfq::io::quantify_series(asl, {});
  ASSERT_TRUE(relative.relative_cbf);
  EXPECT_EQ(relative.check_region, "automatic brain mask (of the mean control image)");
  EXPECT_NEAR(relative.median_cbf, 1.0, 1e-6);
  EXPECT_FALSE(relative.range_check.checked);
  EXPECT_NE(relative.notes.back().find("buxton-fixed-flow"), std::string::npos);
  // Relative CBF is ΔM-based: relative / (absolute × M0) is one constant (to 1e-4) over the
  // fitted voxels,
  // and ATT (free of the M0's scale) is the same.
  std::vector<double> ratio;
  std::size_t same_att = 0, both = 0;
  for (std::size_t i = 0; i < m0.voxel_count(); ++i) {
    if (relative.status[i] != 0 || absolute.status[i] != 0 || !(absolute.cbf[i] > 5.0f)) continue;
    ++both;
    ratio.push_back(relative.cbf[i] / (absolute.cbf[i] * m0[i]));
    same_att += std::abs((*relative.att)[i] - (*absolute.att)[i]) < 1e-3f;
  }
  ASSERT_GT(both, 1000u);
  const double typical = median(std::vector<float>(ratio.begin(), ratio.end()));
  const auto off = std::count_if(ratio.begin(), ratio.end(),
                                 [&](double x) { return std::abs(x / typical - 1.0) > 1e-4; });
  // All but the odd voxel whose polishing stops elsewhere on a flat cost (1 of 6338 here).
  EXPECT_LE(static_cast<std::size_t>(off), ratio.size() / 1000);
  EXPECT_GE(same_att, both * 99 / 100);
  // Named as such.
  const Json j = Json::parse(relative.provenance_json);
  EXPECT_EQ(j["Units"], "relative (1 = the median CBF of the brain region)");
  std::vector<std::string> names;
  for (const auto& o : perfq::io::series_outputs(relative)) names.push_back(o.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "sub-01_desc-relative_cbf.nii.gz"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "sub-01_desc-relative_cbf_se.nii.gz"),
            names.end());
  EXPECT_EQ(std::find(names.begin(), names.end(), "sub-01_cbf.nii.gz"), names.end());
  // An M0 value still gives absolute CBF.
  perfq::io::SeriesRequest valued;
  valued.m0_value = 1000.0;
  EXPECT_FALSE(perfq::io::quantify_series(asl, valued).relative_cbf);
}

TEST(ShortDelay, ASingleDelayTooShortForAnAdultBrainGivesAWarning) {
  auto warnings_for = [](double pld, const std::string& name) {
    const fs::path dir = scratch_dir("short-delay-" + name);
    const std::string asl =
        perfq::io::write_phantom_bids(small_phantom({pld}), (dir / "bids").string());
    return perfq::io::quantify_series(asl, {}).warnings;
  };
  auto about_the_delay = [](const std::vector<std::string>& warnings) {
    return std::count_if(warnings.begin(), warnings.end(), [](const std::string& w) {
      return w.find("sub-01_asl.json: PostLabelingDelay: the PLD 0.4 s is shorter than 1 s") !=
             std::string::npos;
    });
  };
  EXPECT_EQ(about_the_delay(warnings_for(0.4, "short")), 1);
  EXPECT_TRUE(warnings_for(1.8, "long").empty());
}

}  // namespace
