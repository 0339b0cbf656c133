/// @file
/// @brief The search of the multi-delay fit and the fit of one voxel (fit_voxel_n): over a
/// grid of arrival times with the amplitudes solved exactly on the precomputed basis (with the
/// arterial component: over its arrival too), a parabola through the best grid point and its
/// neighbours for the start, then the polishing (kinetic_polish.hpp); the arterial component
/// is kept only where the Bayesian information criterion favours it.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/kinetic_pcasl_fast.hpp>
#include <perfq/detail/kinetic_polish.hpp>
#include <perfq/detail/kinetic_settings.hpp>
#include <perfq/detail/kinetic_signal.hpp>
#include <perfq/detail/macros.hpp>
#include <perfq/detail/status.hpp>

#include <cmath>
#include <cstddef>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// ATT of search grid point j.
template <class Real>
PERFQ_HD inline Real grid_att(const KineticSettings<Real>& s, int j) {
  return s.att_min + (s.att_max - s.att_min) * Real(j) / Real(s.grid - 1);
}

/// The fit of one voxel (fit_voxel, kinetic_fit.hpp) for N delays known at compile time
/// (N = 0: s.delays, at run time).
template <int N, class Real>
PERFQ_HD inline KineticVoxelResult<Real> fit_voxel_n(const KineticSettings<Real>& s, const Real* y,
                                                     int slice, Real noise_scale) {
  constexpr int kCapacity = delay_capacity<N>();
  const int n = N > 0 ? N : s.delays;
  const Real offset = s.slice_offset != nullptr ? s.slice_offset[slice] : Real(0);
  Real yy = 0, wy[kCapacity];
  for (int k = 0; k < n; ++k) wy[k] = s.weight[k] * y[k], yy += wy[k] * y[k];
  const Real noise_variance = s.noise_variance * noise_scale;
  const Real prior_scale = s.prior ? noise_variance / (s.prior_sd * s.prior_sd) : Real(0);
  const Real* basis = s.basis + static_cast<std::size_t>(slice) * s.grid * n;
  const Real* norm = s.basis_norm + static_cast<std::size_t>(slice) * s.grid;

  // 1. Separable search: at each grid ATT the amplitudes are a weighted linear least-squares
  // solution on the precomputed basis, and the cost what is left.
  // Tissue only: cost(j) = yy − gy²/gg. With the arterial component, every arterial arrival
  // i ≤ j (its signal is a box in time: the cost is flat between sample times, so a grid
  // finds it) with a 2×2 solve for (flow, aBV).
  bool with_arterial = false;  // grid_cost includes the arterial basis below
  Real arterial[kCapacity], aa = 0, ay = 0;
  auto set_arterial = [&](int i) {
    aa = ay = 0;
    for (int k = 0; k < n; ++k) {
      arterial[k] = arterial_signal(s, k, offset, grid_att(s, i));
      aa += s.weight[k] * arterial[k] * arterial[k];
      ay += s.weight[k] * arterial[k] * y[k];
    }
    return aa > Real(0);  // false: the box misses every sample
  };
  auto grid_cost = [&](int j, Real* flow = nullptr) {
    Real gy = 0, ga = 0;
    const Real* g = basis + j;
    for (int k = 0; k < n; ++k) gy += wy[k] * g[k * s.grid];
    const Real amplitude = norm[j] > Real(0) ? gy / norm[j] : Real(0);
    if (flow != nullptr) *flow = amplitude;
    Real cost = yy - amplitude * gy;
    if (with_arterial) {
      for (int k = 0; k < n; ++k) ga += s.weight[k] * g[k * s.grid] * arterial[k];
      const Real det = norm[j] * aa - ga * ga;
      if (det > Real(1e-12) * norm[j] * aa) {
        const Real f = (aa * gy - ga * ay) / det, b = (norm[j] * ay - ga * gy) / det;
        cost = yy - f * gy - b * ay;
      }
    }
    const Real d = grid_att(s, j) - s.prior_mean;
    return cost + prior_scale * d * d;
  };
  // A parabola through grid point `best` and its neighbours refines the ATT; the amplitudes
  // at the refined ATT start the polishing (T1app at the reference flow, as in the basis).
  // Tissue only, the flow amplitude of the three grid points is interpolated alike.
  // `known`: the costs and flows around an interior `best`, kept by the search (or nullptr).
  // `refine` false: from grid point `best` itself (the further starts of multi_start).
  auto finish = [&](int best, int arterial_index, const Real(*known)[3], bool refine = true) {
    const int centre = best == 0 ? 1 : (best == s.grid - 1 ? s.grid - 2 : best);
    Real costs[3] = {}, flows[3] = {};
    for (int i = 0; i < 3 && refine; ++i) {
      if (known != nullptr) {
        costs[i] = known[0][i], flows[i] = known[1][i];
      } else {
        costs[i] = grid_cost(centre - 1 + i, &flows[i]);
      }
    }
    if (!refine) grid_cost(best, &flows[best - centre + 1]);
    const Real step = (s.att_max - s.att_min) / Real(s.grid - 1);
    const Real curvature = costs[0] - Real(2) * costs[1] + costs[2];
    Real att0 = grid_att(s, best);
    Real flow0 = flows[best - centre + 1];
    if (refine && curvature > Real(0)) {
      Real shift = Real(0.5) * (costs[0] - costs[2]) / curvature;  // in steps from the centre
      shift = shift < Real(-1) ? Real(-1) : (shift > Real(1) ? Real(1) : shift);
      att0 = grid_att(s, centre) + shift * step;
      flow0 = flows[1] + Real(0.5) * shift * (flows[2] - flows[0]) +
              Real(0.5) * shift * shift * (flows[0] - Real(2) * flows[1] + flows[2]);
    }
    if (!with_arterial) {
      const Real start[2] = {flow0, att0};
      return polish<Real, 2, N>(s, y, offset, start, Real(0), noise_variance);
    }
    Real gy = 0, gg = 0, ga = 0;
    Real model[kCapacity], d_flow[kCapacity], d_att[kCapacity];
    const bool generic = s.pasl || s.dispersion;
    if (!generic) {
      pcasl_model<Real, N>(s, PcaslConstants<Real>(s), offset, Real(kReferenceFlow), att0, model,
                           d_flow, d_att);
    }
    for (int k = 0; k < n; ++k) {
      const Real g =
          generic ? tissue_signal<Real, Real>(s, k, offset, Real(1), Real(kReferenceFlow), att0)
                  : model[k] / Real(kReferenceFlow);
      gy += s.weight[k] * g * y[k];
      gg += s.weight[k] * g * g;
      ga += s.weight[k] * g * arterial[k];
    }
    const Real det = gg * aa - ga * ga;
    Real start[3] = {gg > Real(0) ? gy / gg : Real(0), att0, Real(0)};
    if (det > Real(1e-12) * gg * aa) {
      start[0] = (aa * gy - ga * ay) / det;
      start[2] = (gg * ay - ga * gy) / det;
    }
    return polish<Real, 3, N>(s, y, offset, start, grid_att(s, arterial_index), noise_variance);
  };

  // Tissue only: grid_cost over blocks of grid points at once (the basis holds each delay's
  // grid points contiguously), the first lowest cost wins. `count` grid points from j0; with
  // count = kBlock (a constant) the host compiler vectorises over the block, hence the
  // division by a norm made nonzero rather than a branch around it.
  constexpr int kBlock = 8;
  auto search_block = [&](int j0, int count, Real(&flows)[kBlock], Real(&costs)[kBlock]) {
    Real gy[kBlock] = {};
    for (int k = 0; k < n; ++k) {
      const Real* g = basis + k * s.grid + j0;
      const Real w = wy[k];
      PERFQ_SIMD
      for (int i = 0; i < count; ++i) gy[i] += w * g[i];
    }
    PERFQ_SIMD
    for (int i = 0; i < count; ++i) {
      const Real gg = norm[j0 + i];
      const bool positive = gg > Real(0);
      const Real quotient = gy[i] / (positive ? gg : Real(1));
      flows[i] = positive ? quotient : Real(0);
      costs[i] = yy - flows[i] * gy[i];
    }
  };
  // 2. Further starts (s.starts > 1). The cost has several local minima in ATT: the model's
  // kinks (where a delay's bolus begins or ends arriving) split it into smooth pieces, with a
  // minimum in each piece often, on a kink often, and the grid (and the parabola through its
  // best point) can leave the polishing in the basin of a higher one. Regions of the grid:
  // runs of grid points from j0 on, split at each kink and at each local maximum of the grid
  // cost. The lowest point of each region but the one of the solution `kept` is a candidate
  // when its grid cost is at most kMultiStartCostFactor × the cost of `kept`; the polishing
  // runs again from the lowest s.starts − 1 candidates (grid point itself, no parabola), and
  // the lowest cost wins (a later start only by more than kMultiStartTie, relative: the first
  // keeps ties). `arterial_index`: as in finish (−1: tissue only).
  auto multi_start = [&](KineticVoxelResult<Real> kept, int j0, int arterial_index) {
    if (s.starts <= 1) return kept;
    // The cost that the polishing minimised (the prior's term included); a non-finite fit
    // never wins.
    auto posterior = [&](const KineticVoxelResult<Real>& r) {
      const Real d = r.att - s.prior_mean;
      return r.status == kStatusNonFiniteResult ? Real(-1) : r.rss + prior_scale * d * d;
    };
    // The kinks in ascending order: the scan below walks them as the ATT grows.
    Real kinks[2 * delay_capacity<N>()];
    const int kink_count = s.dispersion ? 0 : 2 * n;
    for (int k = 0; k < kink_count / 2; ++k) kinks_of(s, k, offset, kinks + 2 * k);
    for (int k = 1; k < kink_count; ++k) {
      const Real K = kinks[k];
      int i = k;
      for (; i > 0 && kinks[i - 1] > K; --i) kinks[i] = kinks[i - 1];
      kinks[i] = K;
    }
    auto piece = [&](Real att) {  // the smooth piece of the cost that `att` lies in
      int below = 0;
      while (below < kink_count && kinks[below] < att) ++below;
      return below;
    };
    Real kept_cost = posterior(kept);
    if (kept_cost < Real(0)) kept_cost = Real(3.4e38);  // any finite fit replaces it
    const Real limit = kept_cost * Real(kMultiStartCostFactor);
    const int home = piece(kept.att);
    const Real step = (s.att_max - s.att_min) / Real(s.grid - 1);
    const Real position = (kept.att - s.att_min) / step + Real(0.5);
    const int nearest = position > Real(0) ? static_cast<int>(position) : 0;
    // The candidates, lowest grid cost first (ties: the lower ATT).
    const int wanted = s.starts - 1 < kMaxStarts - 1 ? s.starts - 1 : kMaxStarts - 1;
    int candidate[kMaxStarts - 1] = {};
    Real candidate_cost[kMaxStarts - 1] = {};
    int count = 0;
    auto consider = [&](int j, Real cost) {
      if (!(cost <= limit)) return;
      int at = count < wanted ? count : wanted;
      while (at > 0 && cost < candidate_cost[at - 1]) --at;
      if (at == wanted) return;
      for (int i = (count < wanted ? count : wanted - 1); i > at; --i) {
        candidate[i] = candidate[i - 1], candidate_cost[i] = candidate_cost[i - 1];
      }
      candidate[at] = j, candidate_cost[at] = cost;
      count += count < wanted ? 1 : 0;
    };
    // The grid costs in blocks (tissue only: as the search computes them), the prior's term
    // added; the kinks passed counted as the ATT grows.
    int first = j0, lowest = j0, previous_piece = 0, passed = 0;
    Real lowest_cost = 0, previous_cost = 0;
    bool rising = false;
    for (int b0 = j0; b0 < s.grid; b0 += kBlock) {
      const int m = s.grid - b0 < kBlock ? s.grid - b0 : kBlock;
      Real flows[kBlock], costs[kBlock];
      if (with_arterial) {
        for (int i = 0; i < m; ++i) costs[i] = grid_cost(b0 + i);
      } else {
        if (m == kBlock) {
          search_block(b0, kBlock, flows, costs);
        } else {
          search_block(b0, m, flows, costs);
        }
        for (int i = 0; i < m && s.prior; ++i) {
          const Real d = grid_att(s, b0 + i) - s.prior_mean;
          costs[i] += prior_scale * d * d;
        }
      }
      for (int i = 0; i < m; ++i) {
        const int j = b0 + i;
        const Real cost = costs[i], att = grid_att(s, j);
        while (passed < kink_count && kinks[passed] < att) ++passed;
        if (j == j0) {
          lowest_cost = previous_cost = cost, previous_piece = passed;
          continue;
        }
        // A region ends at a kink, and after a local maximum of the grid cost.
        if (passed != previous_piece || (rising && cost < previous_cost)) {
          const bool home_region = previous_piece == home && first <= nearest && nearest < j;
          if (!home_region) consider(lowest, lowest_cost);
          first = lowest = j, lowest_cost = cost, rising = false;
        } else {
          rising = cost > previous_cost;
          if (cost < lowest_cost) lowest = j, lowest_cost = cost;
        }
        previous_cost = cost, previous_piece = passed;
      }
    }
    if (!(previous_piece == home && first <= nearest)) consider(lowest, lowest_cost);
    for (int c = 0; c < count; ++c) {
      const KineticVoxelResult<Real> other = finish(candidate[c], arterial_index, nullptr, false);
      const Real other_cost = posterior(other);
      if (other_cost >= Real(0) && other_cost < kept_cost * Real(1 - kMultiStartTie)) {
        kept = other, kept_cost = other_cost;
      }
    }
    return kept;
  };

  int best = 0;
  Real best_cost = 0;
  Real around[2][3] = {}, previous[2] = {};  // costs and flows at best − 1, best, best + 1
  bool want_next = false;
  for (int j0 = 0; j0 < s.grid; j0 += kBlock) {
    const int m = s.grid - j0 < kBlock ? s.grid - j0 : kBlock;
    Real flows[kBlock], costs[kBlock];
    if (m == kBlock) {
      search_block(j0, kBlock, flows, costs);
    } else {
      search_block(j0, m, flows, costs);
    }
    if (s.prior) {
      for (int i = 0; i < m; ++i) {
        const Real d = grid_att(s, j0 + i) - s.prior_mean;
        costs[i] += prior_scale * d * d;
      }
    }
    // The block's first cost below the best so far, if any (no branch per grid point).
    int lowest = -1;
    Real lowest_cost = best_cost;
    for (int i = 0; i < m; ++i) {
      const bool lower = j0 + i == 0 || costs[i] < lowest_cost;
      lowest_cost = lower ? costs[i] : lowest_cost;
      lowest = lower ? i : lowest;
    }
    // Keeps the neighbours' cost and flow for finish().
    if (want_next) around[0][2] = costs[0], around[1][2] = flows[0], want_next = false;
    if (lowest >= 0) {
      best = j0 + lowest, best_cost = lowest_cost;
      around[0][0] = lowest > 0 ? costs[lowest - 1] : previous[0];
      around[1][0] = lowest > 0 ? flows[lowest - 1] : previous[1];
      around[0][1] = costs[lowest], around[1][1] = flows[lowest];
      if (lowest + 1 < m) {
        around[0][2] = costs[lowest + 1], around[1][2] = flows[lowest + 1];
      } else {
        want_next = true;
      }
    }
    previous[0] = costs[m - 1], previous[1] = flows[m - 1];
  }
  const bool interior = best > 0 && best < s.grid - 1;
  const KineticVoxelResult<Real> tissue =
      multi_start(finish(best, -1, interior ? around : nullptr), 0, -1);
  if (!s.arterial) return tissue;

  // With the arterial component: every arterial arrival i and tissue ATT j ≥ i. The box
  // signal leaves the cost flat between sample times (aBV trades off against e^(−Δt_a/T1b)):
  // without a prior rounding decides between the arrivals of a flat stretch, with one the
  // arrival nearest the prior mean wins.
  const Real arterial_prior_scale =
      s.prior ? noise_variance / (s.arterial_prior_sd * s.arterial_prior_sd) : Real(0);
  int best_arterial = -1;
  for (int i = 0; i < s.grid; ++i) {
    with_arterial = set_arterial(i);
    if (!with_arterial) continue;
    const Real da = grid_att(s, i) - s.arterial_prior_mean;
    const Real arterial_penalty = arterial_prior_scale * da * da;
    for (int j = i; j < s.grid; ++j) {  // the arteries fill before the tissue
      const Real cost = grid_cost(j) + arterial_penalty;
      if (best_arterial < 0 || cost < best_cost) best_cost = cost, best = j, best_arterial = i;
    }
  }
  if (best_arterial < 0) return tissue;  // no arterial arrival reaches a sample
  with_arterial = set_arterial(best_arterial);
  const KineticVoxelResult<Real> both =
      multi_start(finish(best, best_arterial, nullptr), best_arterial, best_arterial);
  // Keep the arterial component only when it explains the data clearly better: the Bayesian
  // information criterion, charging its two extra parameters (aBV and its arrival).
  using std::log;
  const Real gain = Real(n) * log(tissue.rss / both.rss);
  if (both.status != kStatusNonFiniteResult && gain > Real(2) * log(Real(n))) return both;
  return tissue;
}

}  // namespace detail
PERFQ_NAMESPACE_END
