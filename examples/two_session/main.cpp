// A two-session analysis in the shape of a treatment trial such as ROCHIMS (bosentan vs
// placebo in multiple sclerosis): CBF at baseline and at follow-up, and the paired change in
// the centrum semiovale normal-appearing white matter (NAWM), in the border zones, and in a
// reference region.
//
//   perfq_two_session [--effect PERCENT] [--tsv FILE] [--check]
//
// The data are perfq's phantom with white-matter lesions, scanned twice (independent noise).
// At follow-up the white matter's perfusion is raised by --effect percent (default 8) — what
// a treatment that restores white-matter flow would do — and grey matter is unchanged. The
// analysis then recovers the change region by region; --check makes the program fail when
// the recovered change in centrum semiovale NAWM misses the simulated one by more than 2
// percentage points, or grey matter moves by more than 2 %.
#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/distance.hpp>
#include <perfq/phantom.hpp>
#include <perfq/stats.hpp>
#include <perfq/watershed.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace {

perfq::PhantomOptions session_options(std::uint64_t seed) {
  perfq::PhantomOptions o;
  o.seed = seed;
  o.snr = 4.0;        // per control–label pair in grey matter
  o.repeats = 10;     // pairs averaged at the one PLD (1.8 s)
  o.lesions = 14;
  return o;
}

/// Follow-up signal: ΔM of white-matter voxels multiplied by `factor` in every pair (the label
/// image moves, the control stays), so their CBF changes by the same factor.
void scale_white_matter_perfusion(perfq::Phantom& p, double factor) {
  const std::size_t n = p.asl.voxel_count();
  for (std::size_t v = 0; v < p.context.size(); ++v) {
    if (p.context[v] != perfq::VolumeType::Label) continue;
    const float* control = p.asl.data() + (v - 1) * n;  // the phantom writes control first
    float* label = p.asl.data() + v * n;
    for (std::size_t i = 0; i < n; ++i) {
      if (p.tissue[i] == perfq::kWhiteMatter) {
        label[i] = static_cast<float>(control[i] - factor * (control[i] - label[i]));
      }
    }
  }
}

perfq::Volume<float> quantify(const perfq::Phantom& p) {
  const auto prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  return perfq::quantify_cbf(prepared.delta_m, perfq::M0Source::from_image(p.m0), p.protocol,
                             p.physiology, p.brain.view())
      .cbf;
}

/// Centrum semiovale: white matter above the lateral ventricles' highest slice.
perfq::Mask centrum_semiovale(const perfq::Phantom& p) {
  const auto& g = p.tissue.geometry();
  std::size_t top = 0;
  for (std::size_t i = 0; i < p.ventricles.size(); ++i) {
    if (p.ventricles[i]) top = std::max(top, i / (g.dims[0] * g.dims[1]));
  }
  perfq::Mask cs(g);
  for (std::size_t i = 0; i < cs.size(); ++i) {
    cs[i] = p.tissue[i] == perfq::kWhiteMatter && i / (g.dims[0] * g.dims[1]) > top;
  }
  return cs;
}

perfq::Mask intersect(const perfq::Mask& a, const perfq::Mask& b) {
  return perfq::combine_masks(a.view(), b.view(), perfq::Combination::Intersection);
}

perfq::Mask minus(const perfq::Mask& a, const perfq::Mask& b) {
  perfq::Mask out(a.geometry());
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = a[i] && !b[i];
  return out;
}

struct Region {
  std::string name;
  perfq::Mask mask;
  double expected_percent;
};

}  // namespace

int main(int argc, char** argv) {
  double effect = 8.0;
  std::string tsv_path;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--effect" && i + 1 < argc) {
      effect = std::stod(argv[++i]);
    } else if (a == "--tsv" && i + 1 < argc) {
      tsv_path = argv[++i];
    } else if (a == "--check") {
      check = true;
    } else {
      std::fprintf(stderr, "usage: perfq_two_session [--effect PERCENT] [--tsv FILE] [--check]\n");
      return 2;
    }
  }
  try {
    // ---- two sessions: same subject (anatomy, lesions), independent noise ----
    auto baseline = perfq::make_phantom(session_options(1));
    auto followup = perfq::make_phantom(session_options(2));
    followup.lesions = baseline.lesions;  // lesion marks are drawn per seed; the subject is one
    scale_white_matter_perfusion(followup, 1.0 + effect / 100.0);
    const auto cbf_baseline = quantify(baseline);
    const auto cbf_followup = quantify(followup);

    // ---- regions ----
    perfq::Mask wm(baseline.tissue.geometry()), gm(baseline.tissue.geometry());
    for (std::size_t i = 0; i < wm.size(); ++i) {
      wm[i] = baseline.tissue[i] == perfq::kWhiteMatter;
      gm[i] = baseline.tissue[i] == perfq::kGreyMatter;
    }
    // NAWM: white matter farther than 3 mm from every lesion.
    const auto nawm = perfq::normal_appearing_white_matter(wm.view(), baseline.lesions.view(), 3.0);
    // Border zones between the ACA, MCA and PCA territories, 10 mm wide.
    const auto zones = perfq::border_zones(baseline.territories.view(), baseline.brain.view(), 10.0);
    const auto cs_nawm = intersect(centrum_semiovale(baseline), nawm);
    std::vector<Region> regions;
    regions.push_back({"centrum semiovale NAWM", cs_nawm, effect});
    regions.push_back({"NAWM in border zones", intersect(nawm, zones.mask), effect});
    regions.push_back({"NAWM outside border zones", minus(nawm, zones.mask), effect});
    regions.push_back({"grey matter in border zones", intersect(gm, zones.mask), 0.0});
    regions.push_back({"grey matter (reference)", gm, 0.0});

    // ---- paired change per region ----
    perfq::StatsOptions options;
    options.baseline = cbf_baseline.view();
    std::string tsv =
        "region\tvoxels\tvolume_ml\tbaseline_mean\tfollowup_mean\tchange_mean\tchange_sd\t"
        "change_percent\tsimulated_percent\n";
    std::printf("%-28s %7s %9s %9s %8s %8s %8s %9s\n", "region", "voxels", "baseline",
                "follow-up", "ΔCBF", "SD(Δ)", "Δ %", "simulated");
    bool ok = true;
    for (const auto& r : regions) {
      const auto table = perfq::region_stats(cbf_followup.view(), r.mask.view(), options);
      const auto& s = table.regions.at(0);
      const auto& c = s.change;
      std::printf("%-28s %7zu %9.2f %9.2f %+8.2f %8.2f %+7.2f%% %+8.1f%%\n", r.name.c_str(),
                  c.count, c.baseline_mean, c.followup_mean, c.mean, c.sd, c.percent,
                  r.expected_percent);
      char line[512];
      std::snprintf(line, sizeof line, "%s\t%zu\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.1f\n",
                    r.name.c_str(), c.count, s.volume_ml, c.baseline_mean, c.followup_mean,
                    c.mean, c.sd, c.percent, r.expected_percent);
      tsv += line;
      if (r.name == "centrum semiovale NAWM" || r.name == "grey matter (reference)") {
        ok = ok && c.defined && std::abs(c.percent - r.expected_percent) <= 2.0;
      }
    }
    const auto enrichment = perfq::lesion_watershed_enrichment(baseline.lesions.view(),
                                                               zones.mask.view(), wm.view());
    std::printf("lesions: %.1f ml, %.0f %% in border zones (%.0f %% of WM is border zone): "
                "enrichment %.2f\n",
                enrichment.lesion_volume_ml, 100 * enrichment.lesion_fraction,
                100 * enrichment.watershed_fraction, enrichment.enrichment);
    if (!tsv_path.empty()) {
      std::ofstream(tsv_path) << tsv;
      std::printf("wrote %s\n", tsv_path.c_str());
    }
    if (check && !ok) {
      std::fprintf(stderr, "check failed: the recovered change misses the simulated one\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
