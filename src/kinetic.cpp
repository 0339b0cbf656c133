// Multi-delay fit: argument checks, compaction of the voxels to fit, the two executors of
// detail::fit_voxel, and assembly of the maps.
#include <perfq/errors.hpp>
#include <perfq/kinetic.hpp>

#include <perfq/detail/kinetic_fit.hpp>

#include "backend/kinetic.hpp"
#include "chunking.hpp"
#include "dispatch.hpp"
#include "grid_checks.hpp"
#include "kinetic_spatial.hpp"
#include "parallel.hpp"
#include "protocol_checks.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

PERFQ_NAMESPACE_BEGIN

const char* to_string(KineticVariant variant) noexcept {
  switch (variant) {
    case KineticVariant::Buxton:
      return "buxton";
    case KineticVariant::BuxtonFixedFlow:
      return "buxton-fixed-flow";
    case KineticVariant::WhitePaper:
      return "whitepaper";
  }
  return "unknown";
}

KineticVariant parse_kinetic_variant(const std::string& text) {
  if (text == "buxton") return KineticVariant::Buxton;
  if (text == "buxton-fixed-flow") return KineticVariant::BuxtonFixedFlow;
  if (text == "whitepaper") return KineticVariant::WhitePaper;
  throw InvalidArgument("unknown kinetic model '" + text +
                        "' (expected buxton, buxton-fixed-flow or whitepaper)");
}

const char* to_string(Dispersion dispersion) noexcept {
  switch (dispersion) {
    case Dispersion::None:
      return "none";
    case Dispersion::Gamma:
      return "gamma";
  }
  return "unknown";
}

Dispersion parse_dispersion(const std::string& text) {
  if (text == "none") return Dispersion::None;
  if (text == "gamma") return Dispersion::Gamma;
  throw InvalidArgument("unknown dispersion kernel '" + text + "' (expected none or gamma)");
}

const char* to_string(PriorNoise noise) noexcept {
  switch (noise) {
    case PriorNoise::M0Scaled:
      return "m0";
    case PriorNoise::Uniform:
      return "uniform";
  }
  return "unknown";
}

PriorNoise parse_prior_noise(const std::string& text) {
  if (text == "m0") return PriorNoise::M0Scaled;
  if (text == "uniform") return PriorNoise::Uniform;
  throw InvalidArgument("unknown prior noise model '" + text + "' (expected m0 or uniform)");
}

double chi_square_median(int dof) {
  if (dof < 1) throw InvalidArgument("chi_square_median: dof must be >= 1");
  // P(a, x), the regularised lower incomplete gamma function: the gamma kernel's window
  // (dispersion) with rate 1 and no decay.
  const double a = 0.5 * dof, log_gamma = std::lgamma(a);
  auto lower = [a, log_gamma](double x) {
    return detail::gamma_window(a, log_gamma, 1.0, 0.0, 0.0, x);
  };
  // The median of χ²_ν lies in (ν − 1, ν) for ν ≥ 1 (and above 0): bisect P(ν/2, x/2) = 1/2.
  double lo = std::max(0.0, dof - 1.0), hi = static_cast<double>(dof);
  for (int i = 0; i < 200 && hi - lo > 1e-13 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (lower(0.5 * mid) < 0.5 ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

namespace {

using Settings = detail::KineticSettings<float>;
using Result = detail::KineticVoxelResult<float>;

double per_volume(const std::vector<double>& values, std::size_t k, const char* what,
                  std::size_t volumes) {
  if (values.size() != 1 && values.size() != volumes) {
    throw InvalidArgument(std::string(what) + " has " + std::to_string(values.size()) +
                          " values; expected 1 or one per ΔM volume (" + std::to_string(volumes) +
                          ")");
  }
  return values.size() == 1 ? values[0] : values[k];
}

void require(bool ok, const std::string& message) {
  if (!ok) throw InvalidArgument(message);
}

Settings make_settings(std::size_t n, const AslProtocol& p, const ResolvedConstants& c,
                       const KineticOptions& o) {
  require(n >= 2 && n <= static_cast<std::size_t>(detail::kMaxDelays),
          "a multi-delay fit needs 2 to " + std::to_string(detail::kMaxDelays) +
              " ΔM volumes, got " + std::to_string(n));
  require(std::isfinite(o.att_min) && std::isfinite(o.att_max) && o.att_min >= 0.0 &&
              o.att_min < o.att_max,
          "the ATT range must satisfy 0 <= att_min < att_max");
  require(o.grid_points >= 3 && o.grid_points <= detail::kMaxGrid,
          "grid_points must be in [3, " + std::to_string(detail::kMaxGrid) + "]");
  require(o.max_iterations >= 1 && o.max_iterations <= 255, "max_iterations must be in [1, 255]");
  require(o.tolerance > 0.0 && o.tolerance < 1.0, "tolerance must be in (0, 1)");
  require(o.max_starts >= 1 && o.max_starts <= detail::kMaxStarts,
          "max_starts must be in [1, " + std::to_string(detail::kMaxStarts) + "]");
  require(o.att_prior_sd > 0.0 && std::isfinite(o.att_prior_sd), "att_prior_sd must be > 0");
  require(!o.att_prior_mean || std::isfinite(*o.att_prior_mean), "att_prior_mean must be finite");
  require(!o.arterial_att_prior_mean || std::isfinite(*o.arterial_att_prior_mean),
          "arterial_att_prior_mean must be finite");
  require(!o.arterial_att_prior_sd ||
              (*o.arterial_att_prior_sd > 0.0 && std::isfinite(*o.arterial_att_prior_sd)),
          "arterial_att_prior_sd must be > 0");
  require(o.fixed_flow >= 0.0 && std::isfinite(o.fixed_flow), "fixed_flow must be >= 0");
  if (o.dispersion == Dispersion::Gamma) {
    const double sharpness = o.dispersion_sharpness, peak = o.dispersion_time_to_peak;
    require(std::isfinite(sharpness) && sharpness > 0.0 && sharpness <= 100.0,
            "dispersion_sharpness must be in (0, 100] 1/s");
    require(std::isfinite(peak) && peak >= 0.0 && peak <= 5.0,
            "dispersion_time_to_peak must be in [0, 5] s");
    require(sharpness * peak <= 10.0,
            "dispersion_sharpness × dispersion_time_to_peak must be <= 10");
  }
  require(o.weights.empty() || o.weights.size() == n, "weights must be empty or one per ΔM volume");
  require(o.spatial_max_iterations >= 1 && o.spatial_max_iterations <= 1000,
          "spatial_max_iterations must be in [1, 1000]");
  require(o.spatial_tolerance > 0.0 && o.spatial_tolerance < 1.0,
          "spatial_tolerance must be in (0, 1)");

  Settings s;
  s.delays = static_cast<int>(n);
  s.pasl = p.labeling_type == LabelingType::Pasl;
  s.variant = o.variant == KineticVariant::Buxton            ? detail::kVariantBuxton
              : o.variant == KineticVariant::BuxtonFixedFlow ? detail::kVariantBuxtonFixedFlow
                                                             : detail::kVariantWhitePaper;
  s.alpha = static_cast<float>(c.effective_labeling_efficiency);
  s.lambda = static_cast<float>(c.blood_brain_partition);
  s.t1_blood = static_cast<float>(c.t1_blood);
  s.t1_tissue = static_cast<float>(c.t1_tissue);
  s.fixed_flow = static_cast<float>(o.fixed_flow);
  s.att_min = static_cast<float>(o.att_min);
  s.att_max = static_cast<float>(o.att_max);
  s.grid = o.grid_points;
  s.max_iterations = o.max_iterations;
  s.starts = o.max_starts;
  s.tolerance = static_cast<float>(o.tolerance);
  s.arterial = o.arterial;
  if (o.dispersion == Dispersion::Gamma) {
    const double shape = 1.0 + o.dispersion_sharpness * o.dispersion_time_to_peak;
    s.dispersion = true;
    s.kernel.shape = static_cast<float>(shape);
    s.kernel.rate = static_cast<float>(o.dispersion_sharpness);
    s.kernel.log_rate = static_cast<float>(std::log(o.dispersion_sharpness));
    s.kernel.log_gamma = static_cast<float>(std::lgamma(shape));
  }
  const double prior_mean = o.att_prior_mean.value_or(s.pasl ? 0.7 : 1.3);
  s.prior_mean = static_cast<float>(prior_mean);
  s.prior_sd = static_cast<float>(o.att_prior_sd);
  // BASIL's defaults: 0.3 s before the tissue's prior mean, the same spread.
  s.arterial_prior_mean = static_cast<float>(o.arterial_att_prior_mean.value_or(prior_mean - 0.3));
  s.arterial_prior_sd = static_cast<float>(o.arterial_att_prior_sd.value_or(o.att_prior_sd));
  for (std::size_t k = 0; k < n; ++k) {
    const double delay = per_volume(p.post_labeling_delay, k, "post_labeling_delay", n);
    require(std::isfinite(delay) && delay > 0.0, "delays must be > 0 s");
    double duration = 0.0;
    if (s.pasl) {
      require(p.bolus_cutoff_delay.has_value() && *p.bolus_cutoff_delay > 0.0,
              "PASL fitting needs the bolus cut-off time TI1 (BolusCutOffDelayTime) > 0");
      duration = *p.bolus_cutoff_delay;
    } else {
      duration = per_volume(p.labeling_duration, k, "labeling_duration", n);
      require(std::isfinite(duration) && duration > 0.0, "labeling durations must be > 0 s");
    }
    const double weight = o.weights.empty() ? 1.0 : o.weights[k];
    require(std::isfinite(weight) && weight > 0.0, "weights must be > 0");
    s.delay[k] = static_cast<float>(delay);
    s.duration[k] = static_cast<float>(duration);
    s.weight[k] = static_cast<float>(weight);
  }
  if (s.pasl) {  // the bolus is cut off before the last readout, or TI1 is not its duration
    const double longest = *std::max_element(s.delay, s.delay + n);
    require(*p.bolus_cutoff_delay < longest,
            "the bolus cut-off time TI1 must come before the longest inversion time TI");
  }
  s.same_duration =
      std::all_of(s.duration + 1, s.duration + n, [&](float d) { return d == s.duration[0]; });
  return s;
}

/// The search basis and per-slice offsets that KineticSettings points to (and its table of
/// the ATTs near no kink).
struct Basis {
  std::vector<float> values, norm, slice_offset;
  int slices = 1;
};

void attach_basis(Settings& s, Basis& b, const AslProtocol& p, std::size_t nz) {
  b.slices = p.readout == Readout::TwoD ? static_cast<int>(nz) : 1;
  if (p.readout == Readout::TwoD) {
    b.slice_offset.assign(p.slice_timing.begin(), p.slice_timing.end());
    s.slice_offset = b.slice_offset.data();
  }
  b.values.resize(static_cast<std::size_t>(b.slices) * s.grid * s.delays);
  b.norm.resize(static_cast<std::size_t>(b.slices) * s.grid);
  detail::fill_basis(s, b.slices, b.values.data(), b.norm.data());
  s.basis = b.values.data();
  s.basis_norm = b.norm.data();
  detail::mark_kink_free_bins(s, b.slices);
}

/// Fits every compacted voxel on `backend`; after a fallback (Auto, CUDA failed) `backend`
/// becomes Cpu, so that a second pass does not try the device again. The CPU runs in chunks
/// when a chunk size is forced: each voxel's fit is the same, so are the results.
/// `noise_scale`: each voxel's factor on the prior's noise variance (empty: 1 everywhere).
void run_fits(const Settings& s, int slices, const std::vector<float>& y,
              const std::vector<int>& slice, std::vector<Result>& results, Backend& backend,
              const Execution& execution, const std::vector<float>& noise_scale = {}) {
  const float* scale = noise_scale.empty() ? nullptr : noise_scale.data();
  const std::size_t count = slice.size();
  const std::size_t n = static_cast<std::size_t>(s.delays);
  const std::size_t max_chunk = chunking::forced_max_chunk(execution.max_chunk_voxels);
  backend = dispatch::run(
      backend, execution,
      [&] {
        backend::cuda_kinetic(s, slices, y.data(), slice.data(), scale, count, results.data(),
                              {execution.device, execution.device_bytes_limit, max_chunk});
      },
      [&] {
        for (const chunking::Range range : chunking::plan(count, max_chunk)) {
          cpu::parallel_for(range.size(), execution.threads, [&](std::size_t k) {
            const std::size_t v = range.begin + k;
            results[v] = detail::fit_voxel(s, y.data() + v * n, slice[v],
                                           scale != nullptr ? scale[v] : 1.0f);
          });
        }
      });
}

/// The noise variance of one unit-weight observation where the noise scale is 1, pooled over
/// the voxels that fitted cleanly: the median of their residual variances RSS/(n − p) (p
/// fitted parameters), each divided by its voxel's noise scale, made unbiased for Gaussian
/// noise: RSS/σ² is χ² with ν = n − p degrees of freedom, whose median is below its mean ν.
double pooled_noise_variance(const std::vector<Result>& results, const std::vector<float>& scale,
                             int n, int p) {
  std::vector<double> variances;
  for (std::size_t v = 0; v < results.size(); ++v) {
    if (results[v].status != detail::kStatusOk) continue;
    variances.push_back(results[v].rss / (n - p) / (scale.empty() ? 1.0 : scale[v]));
  }
  if (variances.empty()) return 0.0;
  auto middle = variances.begin() + variances.size() / 2;
  std::nth_element(variances.begin(), middle, variances.end());
  return *middle * (n - p) / chi_square_median(n - p);
}

}  // namespace

KineticFit fit_kinetic(View<const float> delta_m, const M0Source& m0, const AslProtocol& protocol,
                       const Physiology& physiology, const KineticOptions& options,
                       std::optional<View<const std::uint8_t>> mask, const Execution& execution) {
  require(!delta_m.empty(), "the ΔM series is empty");
  const Geometry& g = delta_m.geometry;
  const std::size_t n = delta_m.volumes;
  if (m0.image) {
    checks::one_volume_on_grid(*m0.image, g, "M0", "the ΔM series");
  } else {
    require(std::isfinite(m0.value) && m0.value > 0.0, "a single M0 value must be positive");
  }
  if (mask) checks::one_volume_on_grid(*mask, g, "the mask", "the ΔM series");
  const std::size_t slices = g.dims[2];
  if (protocol.readout == Readout::TwoD) {
    require(protocol.slice_timing.size() == slices,
            "a 2D readout needs one slice time per slice (" + std::to_string(slices) + ")");
  }
  // Times are in seconds; minutes of delay or labeling are milliseconds given for seconds.
  checks::times_in_seconds(protocol);
  ResolvedConstants constants = resolve_constants(protocol, physiology);
  if (m0.fully_relaxed) constants.m0_scale = 1.0;  // no short-TR correction of a relaxed M0
  Settings settings = make_settings(n, protocol, constants, options);
  const std::size_t parameters = options.arterial ? 3 : 2;
  require(!options.att_prior || n > parameters,
          "the ATT prior needs more delays than fitted parameters (" +
              std::to_string(parameters + 1) + " or more)");
  require(!options.spatial || n > parameters,
          "the spatial prior needs more delays than fitted parameters (" +
              std::to_string(parameters + 1) + " or more)");

  KineticFit out;
  out.constants = constants;
  out.backend = resolve_backend(execution);
  out.cbf = Volume<float>(g);
  out.att = Volume<float>(g);
  out.cbf_se = Volume<float>(g);
  out.att_se = Volume<float>(g);
  out.residual_rms = Volume<float>(g);
  out.iterations = Volume<std::uint8_t>(g);
  out.status = Volume<std::uint8_t>(g);
  if (options.arterial) {
    out.abv = Volume<float>(g);
    out.abv_se = Volume<float>(g);
    out.arterial_att = Volume<float>(g);
  }

  // M0 of voxel i (the image's, or the one value).
  auto m0_at = [&m0](std::size_t i) { return m0.image ? m0.image->data[i] : m0.value; };

  // Compact the voxels to fit; the others get their status here.
  const std::size_t voxels = g.voxel_count();
  const std::size_t slice_voxels = g.dims[0] * g.dims[1];
  // Every voxel's status, side by side; then the voxels to fit, in voxel order.
  auto classify = [&](std::size_t begin, std::size_t end, std::size_t) {
    for (std::size_t i = begin; i < end; ++i) {
      const float m = static_cast<float>(m0_at(i));
      bool finite = detail::is_finite(m);
      for (std::size_t k = 0; k < n && finite; ++k) {
        finite = detail::is_finite(delta_m.volume(k)[i]);
      }
      std::uint8_t status = detail::kStatusOk;
      if (mask && mask->data[i] == 0) {
        status = detail::kStatusOutsideMask;
      } else if (!finite) {
        status = detail::kStatusNonFiniteInput;
      } else if (!(m > 0.0f)) {
        status = detail::kStatusM0NotPositive;
      }
      out.status[i] = status;
    }
  };
  cpu::parallel_for_slices(0, voxels, slice_voxels, execution.threads, classify);
  std::vector<std::size_t> active;
  for (std::size_t i = 0; i < voxels; ++i) {
    if (out.status[i] == detail::kStatusOk) active.push_back(i);
  }
  if (options.t1_tissue_map) {
    checks::one_volume_on_grid(*options.t1_tissue_map, g, "the tissue T1 map", "the ΔM series");
  }
  // With a tissue T1 map, the voxels' groups: one tissue T1 each (the map's, to 1 ms).
  std::vector<std::vector<std::size_t>> groups;  // indices into `active`
  std::vector<double> group_t1;
  if (options.t1_tissue_map) {
    std::map<long, std::size_t> index;
    for (std::size_t v = 0; v < active.size(); ++v) {
      const float t1 = options.t1_tissue_map->data[active[v]];
      if (!(t1 > 0.0f && t1 <= 10.0f)) {
        std::ostringstream m;
        m << "the tissue T1 map must hold values in (0, 10] s where voxels are fitted; voxel "
          << active[v] << " is " << t1;
        throw InvalidArgument(m.str());
      }
      const long ms = std::max(1L, std::lround(static_cast<double>(t1) * 1000.0));
      auto [it, added] = index.emplace(ms, groups.size());
      if (added) {
        groups.emplace_back();
        group_t1.push_back(static_cast<double>(ms) / 1000.0);
      }
      groups[it->second].push_back(v);
    }
  }
  std::vector<float> y(active.size() * n);
  std::vector<int> slice(active.size(), 0);
  const double m0_scale = constants.m0_scale;
  cpu::parallel_for(active.size(), execution.threads, [&](std::size_t v) {
    const std::size_t i = active[v];
    const double m = m0_at(i) / m0_scale;
    for (std::size_t k = 0; k < n; ++k) y[v * n + k] = static_cast<float>(delta_m.volume(k)[i] / m);
    if (protocol.readout == Readout::TwoD) slice[v] = static_cast<int>(i / slice_voxels);
  });

  std::vector<Result> results(active.size());
  // Fits every voxel: at once with the settings' tissue T1, or each group of the map with
  // its own (and its own search tables).
  auto fit_groups = [&](const Settings& base, const Execution& on,
                        const std::vector<float>& noise_scale) {
    if (!options.t1_tissue_map) {
      Settings s = base;
      Basis basis;
      attach_basis(s, basis, protocol, slices);
      run_fits(s, basis.slices, y, slice, results, out.backend, on, noise_scale);
      return;
    }
    for (std::size_t k = 0; k < groups.size(); ++k) {
      const std::vector<std::size_t>& members = groups[k];
      Settings s = base;
      s.t1_tissue = static_cast<float>(group_t1[k]);
      Basis basis;
      attach_basis(s, basis, protocol, slices);
      std::vector<float> gy(members.size() * n), gscale;
      std::vector<int> gslice(members.size());
      if (!noise_scale.empty()) gscale.resize(members.size());
      for (std::size_t m = 0; m < members.size(); ++m) {
        std::copy(y.begin() + members[m] * n, y.begin() + (members[m] + 1) * n, gy.begin() + m * n);
        gslice[m] = slice[members[m]];
        if (!noise_scale.empty()) gscale[m] = noise_scale[members[m]];
      }
      std::vector<Result> gresults(members.size());
      run_fits(s, basis.slices, gy, gslice, gresults, out.backend, on, gscale);
      for (std::size_t m = 0; m < members.size(); ++m) results[members[m]] = gresults[m];
    }
  };
  fit_groups(settings, execution, {});
  std::vector<float> scale;  // each voxel's factor on the pooled noise variance (empty: 1)
  if (options.att_prior || options.spatial) {
    // MAP needs the noise level: pool it from the unregularised fit, then fit again. With
    // PriorNoise::M0Scaled the noise is homogeneous in ΔM, so in ΔM/M0 a voxel's variance is
    // (M0 ref / M0)² times that at the reference M0 (the median M0 of the fitted voxels).
    if (options.prior_noise == PriorNoise::M0Scaled) {
      std::vector<float> m0s(active.size());
      for (std::size_t v = 0; v < active.size(); ++v) {
        m0s[v] = static_cast<float>(m0_at(active[v]));
      }
      if (!m0s.empty()) {
        std::vector<float> sorted = m0s;
        auto middle = sorted.begin() + sorted.size() / 2;
        std::nth_element(sorted.begin(), middle, sorted.end());
        out.noise_reference_m0 = *middle;
      }
      if (m0.image) {
        scale.resize(active.size());
        for (std::size_t v = 0; v < active.size(); ++v) {
          const double ratio = out.noise_reference_m0 / m0s[v];
          scale[v] = static_cast<float>(ratio * ratio);
        }
      }
    }
    out.noise_variance =
        pooled_noise_variance(results, scale, static_cast<int>(n), options.arterial ? 3 : 2);
    settings.noise_variance = static_cast<float>(out.noise_variance);
  }
  if (options.att_prior) {
    out.att_prior_mean = settings.prior_mean;
    if (options.arterial) {
      out.arterial_att_prior_mean = settings.arterial_prior_mean;
      out.arterial_att_prior_sd = settings.arterial_prior_sd;
    }
    settings.prior = true;
    // The second pass runs where the first did (no second fallback after a failed device).
    Execution second = execution;
    if (out.backend == Backend::Cpu) second.backend = Backend::Cpu;
    fit_groups(settings, second, scale);
  }
  if (options.spatial) {
    // On the CPU whatever the backend: the settings of each tissue T1 group, with their
    // kink tables (the polishing's), for each voxel.
    std::vector<Settings> group_settings(options.t1_tissue_map ? groups.size() : 1, settings);
    std::vector<Basis> bases(group_settings.size());
    std::vector<const Settings*> voxel_settings(active.size(), group_settings.data());
    for (std::size_t k = 0; k < group_settings.size(); ++k) {
      if (options.t1_tissue_map) {
        group_settings[k].t1_tissue = static_cast<float>(group_t1[k]);
        for (std::size_t v : groups[k]) voxel_settings[v] = &group_settings[k];
      }
      attach_basis(group_settings[k], bases[k], protocol, slices);
    }
    spatial::Problem problem;
    problem.dims = {g.dims[0], g.dims[1], g.dims[2]};
    problem.active = &active;
    problem.settings = &voxel_settings;
    problem.y = y.data();
    problem.delays = n;
    problem.slice = slice.data();
    problem.noise_scale = scale.empty() ? nullptr : scale.data();
    const spatial::Outcome o = spatial::refine(problem, options, results, execution.threads);
    out.spatial_precision_cbf = o.precision_cbf;
    out.spatial_precision_att = o.precision_att;
    out.spatial_iterations = o.iterations;
    out.spatial_converged = o.converged;
  }

  double weight_sum = 0.0;
  for (std::size_t k = 0; k < n; ++k) weight_sum += settings.weight[k];
  cpu::parallel_for(active.size(), execution.threads, [&](std::size_t v) {
    const std::size_t i = active[v];
    const Result& r = results[v];
    out.status[i] = r.status;
    if (r.status == detail::kStatusNonFiniteResult) return;
    const double m = m0_at(i) / m0_scale;
    out.cbf[i] = static_cast<float>(6000.0 * r.flow);
    out.cbf_se[i] = static_cast<float>(6000.0 * r.flow_se);
    out.att[i] = r.att;
    out.att_se[i] = r.att_se;
    out.residual_rms[i] = static_cast<float>(std::sqrt(r.rss / weight_sum) * m);
    out.iterations[i] = static_cast<std::uint8_t>(std::min(r.iterations, 255));
    if (options.arterial) {
      out.abv[i] = 100.0f * r.abv;
      out.abv_se[i] = 100.0f * r.abv_se;
      out.arterial_att[i] = r.arterial_att;
    }
  });
  return out;
}

PERFQ_NAMESPACE_END
