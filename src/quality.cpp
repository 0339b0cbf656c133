// Quality indices of a CBF map (include/perfq/quality.hpp; definitions in docs/quality.md).
#include <perfq/detail/status.hpp>
#include <perfq/errors.hpp>
#include <perfq/quality.hpp>

#include "grid_checks.hpp"
#include "parallel.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
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

/// Summarises `x`, whose order it changes (the median by selection).
Summary summarise(std::vector<float>& x) {
  Summary s;
  s.n = x.size();
  if (s.n == 0) return s;
  double sum = 0.0;
  for (const float v : x) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  double squares = 0.0;
  for (const float v : x) squares += (v - s.mean) * (v - s.mean);
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

QualityReport finish(Indices& q, const QualityOptions& options) {
  QualityReport report;
  report.indices = q.take();
  report.tissue_threshold = options.tissue_threshold;
  report.qei_smoothing_fwhm_mm = options.qei_smoothing_fwhm_mm;
  report.relative = options.relative;
  return report;
}

/// A tissue map checked: one volume on the CBF map's grid, finite, in [0, 1] within 0.01
/// (resampling overshoots a little; such values are used as they are).
void check_tissue(const std::optional<View<const float>>& map, const Geometry& grid,
                  const char* what) {
  if (!map) return;
  checks::one_volume_on_grid(*map, grid, std::string("quality_indices: the ") + what + " map",
                             "the CBF map");
  const std::size_t n = map->voxel_count();
  // A branch-free scan first (NaN fails both comparisons); the culprit looked for after.
  bool bad = false;
  for (std::size_t i = 0; i < n; ++i) {
    const float p = map->data[i];
    bad |= !(p >= -0.01f) | !(p <= 1.01f);
  }
  if (!bad) return;
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

/// Adds `w × (a[x] + b[x])` (or `w × a[x]` when `b` is null) to `dst[x]`, x < n.
void add_taps(float* dst, const float* a, const float* b, float w, std::size_t n) {
  if (b != nullptr) {
    for (std::size_t x = 0; x < n; ++x) dst[x] += w * (a[x] + b[x]);
  } else {
    for (std::size_t x = 0; x < n; ++x) dst[x] += w * a[x];
  }
}

/// A symmetric Gaussian kernel's half: k[0] the centre, k[j] the weight at ±j voxels.
struct HalfKernel {
  std::vector<float> k{1.0f};
  std::size_t radius() const { return k.size() - 1; }
};

/// The CBF smoothed within the region, as smooth_m0 defines it (a Gaussian of `fwhm_mm`
/// FWHM cut at min(⌈3σ⌉, the grid's extent − 1) voxels per axis, normalised over the region:
/// smooth(x·R) / smooth(R)), in float. Returns the region's voxels only, in ascending index
/// order.
///
/// Streaming over the region's bounding box: each slice is smoothed along x and y into a
/// ring of the last 2r + 1 slices, from which each output slice is the z-weighted sum, so the
/// working memory is that ring (a few MB) rather than whole-volume copies. The slices are cut
/// into runs spread over `threads` (each run recomputing the r slices before it); results do
/// not depend on the number of threads.
std::vector<float> smooth_in_region(const float* values, const std::uint8_t* region,
                                    const Geometry& g, double fwhm_mm, int threads) {
  // The region's bounding box.
  std::array<std::size_t, 3> lo{g.dims[0], g.dims[1], g.dims[2]}, hi{0, 0, 0};
  std::vector<std::size_t> per_slice(g.dims[2], 0);  // region voxels per slice
  bool any = false;
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t y = 0; y < g.dims[1]; ++y) {
      const std::size_t row = g.index(0, y, z);
      for (std::size_t x = 0; x < g.dims[0]; ++x) {
        if (!region[row + x]) continue;
        any = true;
        ++per_slice[z];
        lo = {std::min(lo[0], x), std::min(lo[1], y), std::min(lo[2], z)};
        hi = {std::max(hi[0], x), std::max(hi[1], y), std::max(hi[2], z)};
      }
    }
  }
  std::vector<float> out;
  if (!any) return out;
  const double sigma_mm = fwhm_mm / (2.0 * std::sqrt(2.0 * std::log(2.0)));
  std::array<HalfKernel, 3> kernel;
  std::array<std::size_t, 3> first{}, size{};
  for (int a = 0; a < 3; ++a) {
    if (sigma_mm > 0.0) {
      const double sigma = sigma_mm / g.spacing[a];
      const double reach = std::min(std::ceil(3.0 * sigma), static_cast<double>(g.dims[a] - 1));
      kernel[a].k.resize(static_cast<std::size_t>(reach) + 1);
      for (std::size_t j = 0; j < kernel[a].k.size(); ++j) {
        const double d = static_cast<double>(j);
        kernel[a].k[j] = static_cast<float>(std::exp(-0.5 * d * d / (sigma * sigma)));
      }
    }
    const std::size_t r = kernel[a].radius();
    first[a] = lo[a] > r ? lo[a] - r : 0;
    size[a] = std::min(g.dims[a] - 1, hi[a] + r) - first[a] + 1;
  }
  const std::size_t nx = size[0], ny = size[1], nz = size[2], plane = nx * ny;
  const std::size_t rx = kernel[0].radius(), ry = kernel[1].radius(), rz = kernel[2].radius();
  // Where each slice's region voxels start in `out`.
  std::vector<std::size_t> offset(nz + 1, 0);
  for (std::size_t z = 0; z < nz; ++z) offset[z + 1] = offset[z] + per_slice[first[2] + z];
  out.resize(offset[nz]);

  // Slice z of the box smoothed along x and y, value × weight then weight, into `dst`
  // (2 × plane floats); `line` and `rows` are scratch.
  auto smooth_plane = [&](std::size_t z, float* dst, std::vector<float>& line,
                          std::vector<float>& rows) {
    const std::vector<float>& kx = kernel[0].k;
    for (std::size_t y = 0; y < ny; ++y) {
      const std::size_t src = g.index(first[0], first[1] + y, first[2] + z);
      float* padded = line.data();  // [rx zeros | value row | rx zeros | weight row ...]
      float* vals = padded + rx;
      float* wts = padded + 3 * rx + nx;
      for (std::size_t x = 0; x < nx; ++x) {
        const bool use = region[src + x] != 0;
        vals[x] = use ? values[src + x] : 0.0f;
        wts[x] = use ? 1.0f : 0.0f;
      }
      for (int array = 0; array < 2; ++array) {
        const float* centre = array == 0 ? vals : wts;
        float* row = rows.data() + array * plane + y * nx;
        for (std::size_t x = 0; x < nx; ++x) row[x] = kx[0] * centre[x];
        for (std::size_t j = 1; j <= rx; ++j) add_taps(row, centre - j, centre + j, kx[j], nx);
      }
    }
    const std::vector<float>& ky = kernel[1].k;
    for (int array = 0; array < 2; ++array) {
      const float* in = rows.data() + array * plane;
      for (std::size_t y = 0; y < ny; ++y) {
        float* d = dst + array * plane + y * nx;
        const float* centre = in + y * nx;
        for (std::size_t x = 0; x < nx; ++x) d[x] = ky[0] * centre[x];
        for (std::size_t j = 1; j <= ry; ++j) {
          const float* before = y >= j ? centre - j * nx : nullptr;
          const float* after = y + j < ny ? centre + j * nx : nullptr;
          if (before == nullptr && after == nullptr) continue;
          add_taps(d, before != nullptr ? before : after, before != nullptr ? after : nullptr,
                   ky[j], nx);
        }
      }
    }
  };

  // Runs of output slices, one per thread-sized share.
  const std::size_t runs =
      std::min<std::size_t>(nz, static_cast<std::size_t>(cpu::team_size(threads)));
  const std::size_t ring = 2 * rz + 1;
  cpu::parallel_for(runs, threads, [&](std::size_t run) {
    const std::size_t z0 = nz * run / runs, z1 = nz * (run + 1) / runs;
    std::vector<float> buffer(ring * 2 * plane), line(2 * (nx + 2 * rx)), rows(2 * plane),
        sum(2 * plane);
    auto slot = [&](std::size_t z) { return buffer.data() + (z % ring) * 2 * plane; };
    const std::size_t from = z0 > rz ? z0 - rz : 0;
    std::size_t made = from;  // slices [from, made) are in the ring
    for (std::size_t z = z0; z < z1; ++z) {
      const std::size_t need = std::min(nz, z + rz + 1);
      for (; made < need; ++made) smooth_plane(made, slot(made), line, rows);
      const std::vector<float>& kz = kernel[2].k;
      const float* centre = slot(z);
      for (std::size_t x = 0; x < 2 * plane; ++x) sum[x] = kz[0] * centre[x];
      for (std::size_t j = 1; j <= rz; ++j) {
        const float* before = z >= j ? slot(z - j) : nullptr;
        const float* after = z + j < nz ? slot(z + j) : nullptr;
        if (before == nullptr && after == nullptr) continue;
        add_taps(sum.data(), before != nullptr ? before : after,
                 before != nullptr ? after : nullptr, kz[j], 2 * plane);
      }
      std::size_t at = offset[z];
      for (std::size_t y = 0; y < ny; ++y) {
        const std::size_t src = g.index(first[0], first[1] + y, first[2] + z);
        for (std::size_t x = 0; x < nx; ++x) {
          if (!region[src + x]) continue;
          // The weight is > 0: the voxel's own weight is in it.
          out[at++] = sum[y * nx + x] / sum[plane + y * nx + x];
        }
      }
    }
  });
  return out;
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
  const std::uint8_t* status = options.status ? options.status->data : nullptr;
  const std::uint8_t* given_brain = options.brain ? options.brain->data : nullptr;
  const float* gm_map = tissue.gm ? tissue.gm->data : nullptr;
  const float* wm_map = tissue.wm ? tissue.wm->data : nullptr;
  const float thr = static_cast<float>(threshold);
  std::vector<std::uint8_t> brain(n);
  std::vector<float> brain_values, gm_values, wm_values;
  std::vector<std::size_t> brain_voxels;  // the brain's voxel indices, ascending
  for (std::size_t i = 0; i < n; ++i) {
    const float value = cbf.data[i];
    const bool counted = std::isfinite(value) && (status == nullptr || has_value(status[i]));
    brain[i] = counted && (given_brain == nullptr || given_brain[i] != 0);
    if (!counted) continue;
    if (brain[i]) {
      brain_values.push_back(value);
      brain_voxels.push_back(i);
    }
    if (gm_map != nullptr && gm_map[i] > thr) gm_values.push_back(value);
    if (wm_map != nullptr && wm_map[i] > thr) wm_values.push_back(value);
  }
  auto share = [](const std::vector<float>& x, auto test) {
    std::size_t k = 0;
    for (const float v : x) k += test(v) ? 1 : 0;
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
          share(brain_values, [](float v) { return v < 0; }), b.n ? "" : no_brain);

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
          share(gm_values, [](float v) { return v < 0; }), gm.n ? "" : no_gm);
  const char* above_names[] = {"gm_above_100_fraction", "gm_above_150_fraction",
                               "gm_above_200_fraction"};
  const char* above_descriptions[] = {"share of GM voxels with CBF > 100 mL/100g/min",
                                      "share of GM voxels with CBF > 150 mL/100g/min",
                                      "share of GM voxels with CBF > 200 mL/100g/min"};
  const double above_limits[] = {100.0, 150.0, 200.0};
  for (int k = 0; k < 3; ++k) {
    const double limit = above_limits[k];
    q.maybe(above_names[k], "fraction", above_descriptions[k],
            share(gm_values, [limit](float v) { return v > limit; }), !gm.n ? no_gm : relative);
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
  if (!qei_why.empty()) {
    q.unset(qei_r, "", r_about, qei_why);
    q.unset(qei_v, kCbfUnits, v_about, qei_why);
    q.unset(qei_n, "fraction", n_about, qei_why);
    q.unset("qei", "", qei_about, qei_why);
  } else {
    const std::vector<float> smooth = smooth_in_region(
        cbf.data, brain.data(), grid, options.qei_smoothing_fwhm_mm, options.threads);
    // One pass over the brain. Sums of the smoothed CBF are taken about the brain's mean CBF
    // (K), so that variances from sums of squares lose nothing to cancellation.
    const double shift = b.mean;
    const float* maps[3] = {tissue.gm->data, tissue.wm->data, tissue.csf->data};
    std::size_t classes_n[3] = {0, 0, 0}, negative = 0;
    double classes_sum[3] = {0, 0, 0}, classes_sq[3] = {0, 0, 0};
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (std::size_t v = 0; v < brain_voxels.size(); ++v) {
      const std::size_t i = brain_voxels[v];
      const double d = static_cast<double>(smooth[v]) - shift;
      const double y = 2.5 * maps[0][i] + maps[1][i];
      sx += d;
      sy += y;
      sxx += d * d;
      syy += y * y;
      sxy += d * y;
      for (int k = 0; k < 3; ++k) {
        if (maps[k][i] > threshold) {
          ++classes_n[k];
          classes_sum[k] += d;
          classes_sq[k] += d * d;
        }
      }
      if (maps[0][i] > threshold && smooth[v] < 0.0f) ++negative;
    }
    if (classes_n[0] == 0) {
      const std::string why = "no GM voxel with a CBF value in the brain";
      q.unset(qei_r, "", r_about, why);
      q.unset(qei_v, kCbfUnits, v_about, why);
      q.unset(qei_n, "fraction", n_about, why);
      q.unset("qei", "", qei_about, why);
      return finish(q, options);
    }
    // r over the brain: centred sums from the raw ones.
    const std::size_t m = brain_voxels.size();
    const double md = sx / static_cast<double>(m), my = sy / static_cast<double>(m);
    const double cxx = std::max(0.0, sxx - sx * md), cyy = std::max(0.0, syy - sy * my);
    const double cxy = sxy - sx * my;
    std::string r_why;
    // The smoothed CBF counts as constant up to the float rounding of the smoothing.
    if (m < 2) {
      r_why = "fewer than 2 brain voxels";
    } else if (!(std::sqrt(cxx / static_cast<double>(m)) > 1e-6 * std::abs(md + shift))) {
      r_why = "the smoothed CBF is constant over the brain";
    } else if (!(cyy > 0)) {
      r_why = "the pseudo-CBF 2.5 x GM + WM is constant over the brain";
    }
    const double r = r_why.empty() ? std::max(0.0, cxy / std::sqrt(cxx * cyy)) : 0.0;
    // V: the pooled variance over the classes with voxels, over |mean GM|.
    std::size_t total = 0, groups = 0;
    double pooled = 0.0;
    for (int k = 0; k < 3; ++k) {
      if (classes_n[k] == 0) continue;
      total += classes_n[k];
      ++groups;
      // (n_k − 1) × the class's sample variance.
      pooled += std::max(
          0.0, classes_sq[k] - classes_sum[k] * classes_sum[k] / static_cast<double>(classes_n[k]));
    }
    const double gm_mean = classes_sum[0] / static_cast<double>(classes_n[0]) + shift;
    std::string v_why;
    if (total <= groups) {
      v_why = "too few tissue voxels for a pooled variance";
    } else if (!(std::abs(gm_mean) > 0)) {
      v_why = "mean smoothed GM CBF is 0";
    }
    const double v =
        v_why.empty() ? pooled / static_cast<double>(total - groups) / std::abs(gm_mean) : 0.0;
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

  return finish(q, options);
}

PERFQ_NAMESPACE_END
