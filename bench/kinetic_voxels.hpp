// The voxels of the multi-delay benchmarks (bench_kinetic.cpp, bench_kinetic_cuda.cu): PCASL,
// Buxton model (T1app from the voxel's own flow), α 0.85, λ 0.9, T1 blood 1.65 s, T1 tissue
// 1.3 s, τ 1.8 s, n PLDs evenly over 0.25–2.0 s; CBF uniform in 10–100 ml/100 g/min, ATT
// uniform in 0.5–2.5 s, Gaussian noise of SD one tenth of the largest ΔM/M0 of a CBF-60,
// ATT-1.2 s voxel (SNR 10).
#pragma once

#include <perfq/detail/kinetic_fit.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace bench_kinetic {

/// PLD k of n, s (4 → 0.25, 0.83, 1.42, 2.0).
inline double delay(int k, int n) { return 0.25 + 1.75 * k / (n - 1); }

/// The benchmarks' model settings for n delays (ATT search 0–3 s, KineticOptions' defaults;
/// no search basis attached).
template <class Real>
perfq::detail::KineticSettings<Real> pcasl_settings(int n) {
  perfq::detail::KineticSettings<Real> s;
  s.delays = n;
  s.variant = perfq::detail::kVariantBuxton;
  s.alpha = Real(0.85), s.lambda = Real(0.9), s.t1_blood = Real(1.65), s.t1_tissue = Real(1.3);
  s.att_min = Real(0), s.att_max = Real(3);
  for (int k = 0; k < n; ++k) {
    s.delay[k] = static_cast<Real>(delay(k, n));
    s.duration[k] = Real(1.8);
    s.weight[k] = Real(1);
  }
  s.same_duration = true;
  return s;
}

/// Draws `count` voxels from `seed`: their true CBF and ATT are appended to `cbf` and `att`,
/// and `write(v, k, value)` receives `scale` × (ΔM/M0 + noise) of voxel v at delay k.
template <class Write>
void draw_voxels(int n, std::size_t count, std::uint64_t seed, double scale,
                 std::vector<double>& cbf, std::vector<double>& att, Write write) {
  const auto s = pcasl_settings<double>(n);
  double peak = 0;
  for (int k = 0; k < n; ++k) {
    peak = std::max(peak, perfq::detail::tissue_signal<double, double>(s, k, 0.0, 0.01, 0.01, 1.2));
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> cbf_of(10, 100), att_of(0.5, 2.5);
  std::normal_distribution<double> noise(0.0, scale * peak / 10.0);
  for (std::size_t v = 0; v < count; ++v) {
    cbf.push_back(cbf_of(rng));
    att.push_back(att_of(rng));
    const double f = cbf.back() / 6000.0;
    for (int k = 0; k < n; ++k) {
      const double m = perfq::detail::tissue_signal<double, double>(s, k, 0.0, f, f, att.back());
      write(v, k, scale * m + noise(rng));
    }
  }
}

}  // namespace bench_kinetic
