// SCORE and SCRUB on the CBF images of one delay's repeats (docs/outliers.md has the rules and
// their references; include/perfq/asl_series.hpp the options).
#include "outliers.hpp"

#include <perfq/errors.hpp>

#include "parallel.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

PERFQ_NAMESPACE_BEGIN
namespace outliers {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

RobustSpread robust_spread(const std::vector<double>& values) {
  RobustSpread r;
  r.centre = median(values);
  r.deviation.reserve(values.size());
  for (const double v : values) r.deviation.push_back(std::abs(v - r.centre));
  r.sigma = 1.4826 * median(r.deviation);
  return r;
}

namespace {

/// Σ (x − mean)² of the map `mean_of(u)` over the class `positions` (two passes).
template <class F>
double sum_of_squares(const std::vector<std::size_t>& positions, const F& mean_of) {
  if (positions.empty()) return 0.0;
  double sum = 0.0;
  for (std::size_t u : positions) sum += mean_of(u);
  const double centre = sum / static_cast<double>(positions.size());
  double squares = 0.0;
  for (std::size_t u : positions) {
    const double d = mean_of(u) - centre;
    squares += d * d;
  }
  return squares;
}

/// The variance of a mean map pooled within GM, WM and CSF: the sum over the three classes of
/// the squared deviations from the class's mean.
template <class F>
double pooled_variance(const RepeatCbf& cbf, const F& mean_of) {
  return sum_of_squares(cbf.gm, mean_of) + sum_of_squares(cbf.wm, mean_of) +
         sum_of_squares(cbf.csf, mean_of);
}

std::string format(double value, int digits = 3) {
  std::ostringstream s;
  s.precision(digits);
  s << value;
  return s.str();
}

/// The regularised lower incomplete gamma function P(a, x): its series below a + 1, its
/// continued fraction (modified Lentz) above.
double gamma_p(double a, double x) {
  if (!(x > 0.0)) return 0.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-16) break;
    }
    return std::min(1.0, sum * std::exp(log_prefix));
  }
  constexpr double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double step = d * c;
    h *= step;
    if (std::abs(step - 1.0) < 1e-16) break;
  }
  return std::max(0.0, 1.0 - std::exp(log_prefix) * h);
}

}  // namespace

double chi_square_quantile(double dof, double p) {
  if (!(dof > 0.0) || !(p > 0.0 && p < 1.0)) {
    throw InvalidArgument("chi_square_quantile: expected dof > 0 and p in (0, 1)");
  }
  auto cdf = [dof](double x) { return gamma_p(0.5 * dof, 0.5 * x); };
  double low = 0.0, high = std::max(1.0, dof);
  while (cdf(high) < p) high *= 2.0;
  for (int i = 0; i < 200 && high - low > 1e-14 * high; ++i) {
    const double mid = 0.5 * (low + high);
    (cdf(mid) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

ScoreResult score(const RepeatCbf& cbf, double threshold) {
  const std::size_t n = cbf.repeats, m = cbf.voxels.size();
  ScoreResult out;
  out.reason.assign(n, std::string());
  std::vector<bool> dropped(n, false);

  // 1. Repeats whose mean GM CBF is far from the others' (a global signal change: motion, a
  // failed label).
  std::vector<double> gm_mean(n, 0.0);
  for (std::size_t r = 0; r < n; ++r) {
    const float* c = cbf.of(r);
    double sum = 0.0;
    for (std::size_t u : cbf.gm) sum += c[u];
    gm_mean[r] = sum / static_cast<double>(cbf.gm.size());
  }
  const RobustSpread spread = robust_spread(gm_mean);
  const double centre = spread.centre, sigma = spread.sigma;
  if (sigma > 0.0) {
    for (std::size_t r = 0; r < n; ++r) {
      const double z = spread.deviation[r] / sigma;
      if (z > threshold) {
        dropped[r] = true;
        out.reason[r] = "SCORE: mean GM CBF " + format(gm_mean[r]) + " is " + format(z) +
                        " robust SDs from the median " + format(centre) + " (limit " +
                        format(threshold) + ")";
      }
    }
  }

  // 2. One at a time, the repeat whose removal lowers the pooled within-tissue variance of the
  // mean map most, while that variance falls.
  std::vector<double> sum(m, 0.0);
  std::size_t kept = 0;
  for (std::size_t r = 0; r < n; ++r) {
    if (dropped[r]) continue;
    ++kept;
    const float* c = cbf.of(r);
    for (std::size_t u = 0; u < m; ++u) sum[u] += c[u];
  }
  double variance = pooled_variance(
      cbf, [&, k = static_cast<double>(kept)](std::size_t u) { return sum[u] / k; });
  std::vector<double> without(n);
  while (kept > 2) {
    const double k1 = static_cast<double>(kept - 1);
    cpu::parallel_for(n, 0, [&](std::size_t r) {
      if (dropped[r]) {
        without[r] = std::numeric_limits<double>::infinity();
        return;
      }
      const float* c = cbf.of(r);
      without[r] = pooled_variance(cbf, [&](std::size_t u) { return (sum[u] - c[u]) / k1; });
    });
    const std::size_t best = static_cast<std::size_t>(
        std::min_element(without.begin(), without.end()) - without.begin());
    if (!(without[best] < variance)) break;
    dropped[best] = true;
    out.reason[best] =
        "SCORE: removing it lowered the pooled GM/WM/CSF variance of the mean "
        "CBF map by " +
        format(100.0 * (variance - without[best]) / variance) + " %";
    const float* c = cbf.of(best);
    for (std::size_t u = 0; u < m; ++u) sum[u] -= c[u];
    variance = without[best];
    --kept;
  }
  for (std::size_t r = 0; r < n; ++r) {
    if (!dropped[r]) out.kept.push_back(r);
  }
  out.pooled_variance = variance;
  return out;
}

ScrubResult scrub(const RepeatCbf& cbf, const std::vector<std::size_t>& kept) {
  const std::size_t m = cbf.voxels.size(), n = kept.size();
  const double dof = static_cast<double>(n) - 1.0;
  ScrubResult out;
  out.cbf.assign(m, 0.0);
  out.prior.assign(m, 0.0);
  if (n < 2) throw InvalidArgument("SCRUB needs at least 2 repeats");

  // The mean and the (unbiased) variance of each voxel over the kept repeats.
  std::vector<double> variance(m);
  cpu::parallel_for(m, 0, [&](std::size_t u) {
    double sum = 0.0;
    for (std::size_t r : kept) sum += cbf.of(r)[u];
    const double mean = sum / static_cast<double>(n);
    double squares = 0.0;
    for (std::size_t r : kept) {
      const double d = cbf.of(r)[u] - mean;
      squares += d * d;
    }
    out.cbf[u] = mean;
    variance[u] = squares / dof;
  });

  // Grey matter's noise variance: the median of its voxels' variances, scaled to the mean of
  // a χ²(n−1)/(n−1) variable ((n−1)/median χ²(n−1)).
  std::vector<double> gm_variance;
  gm_variance.reserve(cbf.gm.size());
  for (std::size_t u : cbf.gm) gm_variance.push_back(variance[u]);
  const double sigma2 = median(gm_variance) * dof / chi_square_quantile(dof, 0.5);
  // A voxel whose variance exceeds the 99.99th percentile of χ²(n−1)/(n−1) times grey
  // matter's gets a prior weight growing with the excess (linearly up to 10 t, then
  // quadratically, continuous at 10 t).
  const double t = chi_square_quantile(dof, 0.9999) / dof;
  out.variance_threshold = t;
  if (sigma2 > 0.0 && std::isfinite(sigma2)) {
    for (std::size_t u = 0; u < m; ++u) {
      const double rho = variance[u] / sigma2;
      double mu = 0.0;
      if (rho >= 10.0 * t) {
        mu = rho * rho / (20.0 * t) + 4.0 * t;
      } else if (rho > t) {
        mu = rho - t;
      }
      out.prior[u] = std::min(mu, 1e12);  // beyond, the prior alone decides (no overflow)
      out.robust_voxels += mu > 0.0;
    }
  }

  // The structural prior a·P(GM) + b·P(WM): least squares on the mean map over the GM and WM
  // classes' voxels of ordinary variance (all of them when these cannot determine it).
  auto fit = [&](bool ordinary_only) {
    double gg = 0, gw = 0, ww = 0, gy = 0, wy = 0;
    auto add = [&](std::size_t u) {
      if (ordinary_only && out.prior[u] > 0.0) return;
      const double g = cbf.p_gm[u], w = cbf.p_wm[u], y = out.cbf[u];
      gg += g * g, gw += g * w, ww += w * w, gy += g * y, wy += w * y;
    };
    for (std::size_t u : cbf.gm) add(u);
    for (std::size_t u : cbf.wm) add(u);
    const double det = gg * ww - gw * gw;
    if (!(det > 1e-9 * gg * ww)) return false;
    out.gm_coefficient = (gy * ww - wy * gw) / det;
    out.wm_coefficient = (wy * gg - gy * gw) / det;
    return true;
  };
  if (!fit(true) && !fit(false)) {
    throw InvalidArgument(
        "SCRUB: the GM and WM probabilities cannot separate the two tissues (collinear over "
        "the voxels of the GM and WM classes)");
  }

  // Per voxel of raised variance: an M-estimate (Tukey's bisquare, tuning constant 4.685) with
  // the prior as μ pseudo-observations, by iteratively reweighted least squares. The
  // residuals are adjusted for the leverage 1/n of the mean and shrunk by 1 − e^(−μ/10), so
  // that a voxel barely above the threshold is barely reweighted.
  constexpr double kTuning = 4.685;
  constexpr int kIterations = 10;
  const double leverage = std::min(0.9999, 1.0 / static_cast<double>(n));
  const double adjust = 1.0 / std::sqrt(1.0 - leverage);
  const double tolerance = std::sqrt(std::numeric_limits<double>::epsilon());
  cpu::parallel_for(m, 0, [&](std::size_t u) {
    const double mu = out.prior[u];
    if (!(mu > 0.0)) return;
    const double prior = out.gm_coefficient * cbf.p_gm[u] + out.wm_coefficient * cbf.p_wm[u];
    const double shrink = 1.0 - std::exp(-mu / 10.0);
    double sum = 0.0;
    for (std::size_t r : kept) sum += cbf.of(r)[u];
    double b = (sum + mu * prior) / (static_cast<double>(n) + mu);
    for (int iteration = 0; iteration < kIterations; ++iteration) {
      double squares = 0.0;
      for (std::size_t r : kept) {
        const double residual = (cbf.of(r)[u] - b) * adjust;
        squares += residual * residual;
      }
      const double s = std::sqrt(squares / static_cast<double>(n));
      if (!(s > 0.0)) break;
      double weighted = 0.0, weights = 0.0;
      for (std::size_t r : kept) {
        const double y = cbf.of(r)[u];
        const double x = (y - b) * adjust * shrink / (kTuning * s);
        const double w = std::abs(x) < 1.0 ? (1.0 - x * x) * (1.0 - x * x) : 0.0;
        weighted += w * y;
        weights += w;
      }
      const double next = (weighted + mu * prior) / (weights + mu);
      const bool converged =
          std::abs(next - b) <= tolerance * std::max(std::abs(next), std::abs(b));
      b = next;
      if (converged) break;
    }
    out.cbf[u] = std::isfinite(b) ? b : prior;
  });
  return out;
}

}  // namespace outliers
PERFQ_NAMESPACE_END
