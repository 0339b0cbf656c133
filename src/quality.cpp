// Quality indices of a CBF map (include/perfq/quality.hpp; definitions in docs/quality.md).
#include <perfq/calibration.hpp>
#include <perfq/detail/status.hpp>
#include <perfq/errors.hpp>
#include <perfq/quality.hpp>

#include "grid_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

namespace {

/// Whether a status code says the voxel has a CBF value: fitted, or fitted with a caveat.
bool has_value(std::uint8_t status) {
  return status == detail::kStatusOk || status == detail::kStatusMaxIterations ||
         status == detail::kStatusSingular || status == detail::kStatusAtBound;
}

/// Mean, SD (n − 1) and median of a sample; `n == 0` leaves them 0.
struct Summary {
  std::size_t n = 0;
  double mean = 0.0;
  double sd = 0.0;
  double median = 0.0;
};

Summary summarise(std::vector<double> x) {
  Summary s;
  s.n = x.size();
  if (s.n == 0) return s;
  double sum = 0.0;
  for (const double v : x) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  double squares = 0.0;
  for (const double v : x) squares += (v - s.mean) * (v - s.mean);
  s.sd = s.n > 1 ? std::sqrt(squares / static_cast<double>(s.n - 1)) : 0.0;
  // numpy's median: the middle value, or the mean of the two middle values.
  const std::size_t half = s.n / 2;
  std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(half), x.end());
  const double upper = x[half];
  if (s.n % 2 == 1) {
    s.median = upper;
  } else {
    const double lower =
        *std::max_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(half));
    s.median = 0.5 * (lower + upper);
  }
  return s;
}

/// The report's indices, filled in order: each is added once, defined or not.
class Indices {
 public:
  void set(const char* name, const char* units, const char* description, double value) {
    out_.push_back({name, true, value, units, description, {}});
  }
  void unset(const char* name, const char* units, const char* description,
             const std::string& why_not) {
    out_.push_back({name, false, 0.0, units, description, why_not});
  }
  /// Sets the index when `why_not` is empty, else leaves it undefined for that reason.
  void maybe(const char* name, const char* units, const char* description, double value,
             const std::string& why_not) {
    if (why_not.empty() && std::isfinite(value)) {
      set(name, units, description, value);
    } else {
      unset(name, units, description, why_not.empty() ? "not finite" : why_not);
    }
  }
  std::vector<QualityIndex> take() { return std::move(out_); }

 private:
  std::vector<QualityIndex> out_;
};

const char* const kCbfUnits = "mL/100g/min";

/// A tissue map checked: one volume on the CBF map's grid, finite, in [0, 1] within 0.01
/// (resampling overshoots a little; the value is clamped).
void check_tissue(const std::optional<View<const float>>& map, const Geometry& grid,
                  const char* what) {
  if (!map) return;
  checks::one_volume_on_grid(*map, grid, std::string("quality_indices: the ") + what + " map",
                             "the CBF map");
  const std::size_t n = map->voxel_count();
  for (std::size_t i = 0; i < n; ++i) {
    const float p = map->data[i];
    if (!(std::isfinite(p) && p >= -0.01f && p <= 1.01f)) {
      std::ostringstream m;
      m << "quality_indices: the " << what << " map must hold probabilities in [0, 1]; voxel " << i
        << " is " << p;
      throw InvalidArgument(m.str());
    }
  }
}

}  // namespace

const QualityIndex& QualityReport::at(const std::string& name) const {
  for (const QualityIndex& q : indices) {
    if (q.name == name) return q;
  }
  throw InvalidArgument("QualityReport: no index named '" + name + "'");
}

std::vector<std::string> quality_index_names() {
  // The names in the order quality_indices() reports them: from an empty report's run.
  std::vector<std::string> names;
  const float zero = 0.0f;
  const View<const float> one{&zero, Geometry{}, 1};
  for (const QualityIndex& q : quality_indices(one).indices) names.push_back(q.name);
  return names;
}

QualityReport quality_indices(View<const float> cbf, const TissueMaps& tissue,
                              const QualityOptions& options) {
  if (cbf.empty() || cbf.volumes != 1) {
    throw InvalidArgument("quality_indices: the CBF map must be one volume");
  }
  if (!(options.tissue_threshold > 0.0 && options.tissue_threshold < 1.0)) {
    throw InvalidArgument("quality_indices: the tissue threshold must be in (0, 1)");
  }
  if (!(std::isfinite(options.qei_smoothing_fwhm_mm) && options.qei_smoothing_fwhm_mm >= 0.0)) {
    throw InvalidArgument("quality_indices: the QEI's smoothing FWHM must be finite and >= 0 mm");
  }
  const Geometry& grid = cbf.geometry;
  if (options.brain) {
    checks::one_volume_on_grid(*options.brain, grid, "quality_indices: the brain mask",
                               "the CBF map");
  }
  if (options.status) {
    checks::one_volume_on_grid(*options.status, grid, "quality_indices: the status map",
                               "the CBF map");
  }
  check_tissue(tissue.gm, grid, "GM");
  check_tissue(tissue.wm, grid, "WM");
  check_tissue(tissue.csf, grid, "CSF");

  const std::size_t n = cbf.voxel_count();
  const double threshold = options.tissue_threshold;
  // Counted voxels (a finite CBF with a value's status), and of them the brain's.
  std::vector<std::uint8_t> counted(n), brain(n);
  for (std::size_t i = 0; i < n; ++i) {
    counted[i] =
        std::isfinite(cbf.data[i]) && (!options.status || has_value(options.status->data[i]));
    brain[i] = counted[i] && (!options.brain || options.brain->data[i] != 0);
  }
  auto in_class = [&](const std::optional<View<const float>>& map, std::size_t i) {
    return map && counted[i] && map->data[i] > threshold;
  };

  std::vector<double> brain_values, gm_values, wm_values;
  for (std::size_t i = 0; i < n; ++i) {
    if (brain[i]) brain_values.push_back(cbf.data[i]);
    if (in_class(tissue.gm, i)) gm_values.push_back(cbf.data[i]);
    if (in_class(tissue.wm, i)) wm_values.push_back(cbf.data[i]);
  }
  auto share = [](const std::vector<double>& x, auto test) {
    std::size_t k = 0;
    for (const double v : x) k += test(v) ? 1 : 0;
    return x.empty() ? 0.0 : static_cast<double>(k) / static_cast<double>(x.size());
  };
  const Summary b = summarise(brain_values), gm = summarise(gm_values), wm = summarise(wm_values);
  const std::string no_gm = tissue.gm ? "no GM voxel with a CBF value" : "no GM probability map";
  const std::string no_wm = tissue.wm ? "no WM voxel with a CBF value" : "no WM probability map";
  const std::string no_brain = "no brain voxel with a CBF value";
  const std::string relative = options.relative ? "relative CBF: no absolute scale" : "";

  Indices q;
  q.set("brain_voxels", "voxels", "brain voxels with a CBF value", static_cast<double>(b.n));
  q.maybe("brain_mean_cbf", kCbfUnits, "mean CBF over the brain", b.mean, b.n ? "" : no_brain);
  q.maybe("brain_median_cbf", kCbfUnits, "median CBF over the brain", b.median,
          b.n ? "" : no_brain);
  q.maybe("brain_scov", "%", "spatial CoV of CBF over the brain: 100 x SD / mean",
          b.mean > 0 ? 100.0 * b.sd / b.mean : 0.0,
          b.n < 2      ? "fewer than 2 brain voxels"
          : b.mean > 0 ? ""
                       : "mean brain CBF not positive");
  q.maybe("brain_negative_fraction", "fraction", "share of brain voxels with CBF < 0",
          share(brain_values, [](double v) { return v < 0; }), b.n ? "" : no_brain);

  q.set("gm_voxels", "voxels", "GM voxels (probability above the threshold) with a CBF value",
        static_cast<double>(gm.n));
  q.set("wm_voxels", "voxels", "WM voxels (probability above the threshold) with a CBF value",
        static_cast<double>(wm.n));
  q.maybe("gm_mean_cbf", kCbfUnits, "mean CBF in GM", gm.mean, gm.n ? "" : no_gm);
  q.maybe("gm_median_cbf", kCbfUnits, "median CBF in GM", gm.median, gm.n ? "" : no_gm);
  q.maybe("wm_mean_cbf", kCbfUnits, "mean CBF in WM", wm.mean, wm.n ? "" : no_wm);
  q.maybe("wm_median_cbf", kCbfUnits, "median CBF in WM", wm.median, wm.n ? "" : no_wm);
  q.maybe("gm_wm_ratio", "", "mean GM CBF / mean WM CBF", wm.mean > 0 ? gm.mean / wm.mean : 0.0,
          !gm.n         ? no_gm
          : !wm.n       ? no_wm
          : wm.mean > 0 ? ""
                        : "mean WM CBF not positive");
  q.maybe("gm_scov", "%",
          "spatial CoV of CBF in GM: 100 x SD / mean (Mutsaerts et al. 2017, JCBFM 37:3184)",
          gm.mean > 0 ? 100.0 * gm.sd / gm.mean : 0.0,
          !gm.n         ? no_gm
          : gm.n < 2    ? "fewer than 2 GM voxels"
          : gm.mean > 0 ? ""
                        : "mean GM CBF not positive");
  q.maybe("gm_negative_fraction", "fraction", "share of GM voxels with CBF < 0",
          share(gm_values, [](double v) { return v < 0; }), gm.n ? "" : no_gm);
  const char* above_names[] = {"gm_above_100_fraction", "gm_above_150_fraction",
                               "gm_above_200_fraction"};
  const char* above_descriptions[] = {"share of GM voxels with CBF > 100 mL/100g/min",
                                      "share of GM voxels with CBF > 150 mL/100g/min",
                                      "share of GM voxels with CBF > 200 mL/100g/min"};
  const double above_limits[] = {100.0, 150.0, 200.0};
  for (int k = 0; k < 3; ++k) {
    const double limit = above_limits[k];
    q.maybe(above_names[k], "fraction", above_descriptions[k],
            share(gm_values, [limit](double v) { return v > limit; }), !gm.n ? no_gm : relative);
  }

  // The QEI, from the CBF smoothed within the brain (normalised: the background's zeros do
  // not darken the brain's edge).
  const char* const qei_r = "qei_structural_similarity";
  const char* const qei_v = "qei_spatial_variability";
  const char* const qei_n = "qei_negative_gm_fraction";
  const char* const r_about =
      "QEI component: Pearson correlation (floored at 0) of the smoothed CBF with the "
      "pseudo-CBF 2.5 x GM + WM over the brain";
  const char* const v_about =
      "QEI component: variance of the smoothed CBF pooled over GM, WM and CSF, divided by "
      "|mean smoothed GM CBF|";
  const char* const n_about = "QEI component: share of GM voxels with smoothed CBF < 0";
  const char* const qei_about =
      "quality evaluation index (Dolui et al. 2024, JMRI doi:10.1002/jmri.29308): geometric "
      "mean of exp(-0.054 V^0.9272), exp(-2.8478 N^0.5196) and 1 - exp(-3.0126 r^2.4419); 1 "
      "is best";
  std::string qei_why;
  if (!tissue.gm || !tissue.wm || !tissue.csf) {
    qei_why = "needs GM, WM and CSF probability maps";
  } else if (!relative.empty()) {
    qei_why = "relative CBF: the QEI is calibrated in mL/100g/min";
  }
  std::vector<double> smooth;
  std::size_t classes_n[3] = {0, 0, 0};
  double classes_sum[3] = {0, 0, 0}, classes_sq[3] = {0, 0, 0};
  if (qei_why.empty()) {
    std::vector<float> clean(n, 0.0f);
    for (std::size_t i = 0; i < n; ++i) clean[i] = brain[i] ? cbf.data[i] : 0.0f;
    View<const float> clean_view{clean.data(), grid, 1};
    View<const std::uint8_t> region{brain.data(), grid, 1};
    const Volume<float> s = smooth_m0(clean_view, options.qei_smoothing_fwhm_mm, region);
    smooth.assign(s.data(), s.data() + n);
    const View<const float>* maps[3] = {&*tissue.gm, &*tissue.wm, &*tissue.csf};
    for (int k = 0; k < 3; ++k) {
      for (std::size_t i = 0; i < n; ++i) {
        if (brain[i] && maps[k]->data[i] > threshold) {
          ++classes_n[k];
          classes_sum[k] += smooth[i];
        }
      }
      const double mean = classes_n[k] ? classes_sum[k] / static_cast<double>(classes_n[k]) : 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (brain[i] && maps[k]->data[i] > threshold) {
          classes_sq[k] += (smooth[i] - mean) * (smooth[i] - mean);
        }
      }
    }
    if (classes_n[0] == 0) qei_why = "no GM voxel with a CBF value in the brain";
  }
  if (!qei_why.empty()) {
    q.unset(qei_r, "", r_about, qei_why);
    q.unset(qei_v, kCbfUnits, v_about, qei_why);
    q.unset(qei_n, "fraction", n_about, qei_why);
    q.unset("qei", "", qei_about, qei_why);
  } else {
    // r over the brain.
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    std::size_t m = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (!brain[i]) continue;
      const double x = smooth[i];
      const double y = 2.5 * tissue.gm->data[i] + tissue.wm->data[i];
      sx += x;
      sy += y;
      ++m;
    }
    const double mx = sx / static_cast<double>(m), my = sy / static_cast<double>(m);
    for (std::size_t i = 0; i < n; ++i) {
      if (!brain[i]) continue;
      const double x = smooth[i] - mx;
      const double y = 2.5 * tissue.gm->data[i] + tissue.wm->data[i] - my;
      sxx += x * x;
      syy += y * y;
      sxy += x * y;
    }
    std::string r_why;
    if (m < 2)
      r_why = "fewer than 2 brain voxels";
    else if (!(sxx > 0))
      r_why = "the smoothed CBF is constant over the brain";
    else if (!(syy > 0))
      r_why = "the pseudo-CBF 2.5 x GM + WM is constant over the brain";
    const double r = r_why.empty() ? std::max(0.0, sxy / std::sqrt(sxx * syy)) : 0.0;
    // V: the pooled variance over the classes with voxels, over |mean GM|.
    std::size_t total = 0, groups = 0;
    double pooled = 0.0;
    for (int k = 0; k < 3; ++k) {
      if (classes_n[k] == 0) continue;
      total += classes_n[k];
      ++groups;
      pooled += classes_sq[k];  // (n_k − 1) × the class's sample variance
    }
    const double gm_mean = classes_sum[0] / static_cast<double>(classes_n[0]);
    std::string v_why;
    if (total <= groups)
      v_why = "too few tissue voxels for a pooled variance";
    else if (!(std::abs(gm_mean) > 0))
      v_why = "mean smoothed GM CBF is 0";
    const double v =
        v_why.empty() ? pooled / static_cast<double>(total - groups) / std::abs(gm_mean) : 0.0;
    std::size_t negative = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (brain[i] && tissue.gm->data[i] > threshold && smooth[i] < 0) ++negative;
    }
    const double neg = static_cast<double>(negative) / static_cast<double>(classes_n[0]);
    q.maybe(qei_r, "", r_about, r, r_why);
    q.maybe(qei_v, kCbfUnits, v_about, v, v_why);
    q.set(qei_n, "fraction", n_about, neg);
    const std::string why = !r_why.empty() ? r_why : v_why;
    const double qei = std::cbrt(std::exp(-0.054 * std::pow(v, 0.9272)) *
                                 std::exp(-2.8478 * std::pow(neg, 0.5196)) *
                                 (1.0 - std::exp(-3.0126 * std::pow(r, 2.4419))));
    q.maybe("qei", "", qei_about, qei, why);
  }

  QualityReport report;
  report.indices = q.take();
  report.tissue_threshold = threshold;
  report.qei_smoothing_fwhm_mm = options.qei_smoothing_fwhm_mm;
  return report;
}

PERFQ_NAMESPACE_END
