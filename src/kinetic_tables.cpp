// The tables of the multi-delay fit that the host fills before the voxels' fits
// (include/perfq/detail/kinetic_tables.hpp): the search basis and the kink-free bins.
#include <perfq/detail/kinetic_tables.hpp>

#include <perfq/detail/kinetic_search.hpp>
#include <perfq/detail/kinetic_signal.hpp>

#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace detail {

template <class Real>
void fill_basis(const KineticSettings<Real>& s, int slices, Real* basis, Real* norm) {
  for (int z = 0; z < slices; ++z) {
    const Real offset = s.slice_offset != nullptr ? s.slice_offset[z] : Real(0);
    for (int j = 0; j < s.grid; ++j) {
      Real gg = 0;
      for (int k = 0; k < s.delays; ++k) {
        const Real g =
            tissue_signal<Real, Real>(s, k, offset, Real(1), Real(kReferenceFlow), grid_att(s, j));
        basis[(z * s.delays + k) * s.grid + j] = g;
        gg += s.weight[k] * g * g;
      }
      norm[z * s.grid + j] = gg;
    }
  }
}

template <class Real>
void mark_kink_free_bins(KineticSettings<Real>& s, int slices) {
  for (std::uint32_t& word : s.kink_free) word = 0;
  const double range = double(s.att_max) - double(s.att_min);
  s.kink_bin_scale = Real(kKinkBins / range);
  // Twice the reach: a voxel's bin index is rounded in Real.
  const double width = range / kKinkBins, reach = 2 * kKinkProbeReach;
  for (int b = 0; b < kKinkBins; ++b) {
    const double lo = s.att_min + b * width - reach, hi = s.att_min + (b + 1) * width + reach;
    bool free = true;
    for (int z = 0; z < slices && !s.dispersion; ++z) {
      const Real offset = s.slice_offset != nullptr ? s.slice_offset[z] : Real(0);
      Real latest = 0, second = 0;  // sample times (arrival kinks)
      for (int k = 0; k < s.delays; ++k) {
        Real kinks[2];
        kinks_of(s, k, offset, kinks);
        for (const Real kink : kinks) free = free && !(kink >= lo && kink <= hi);
        if (k == 0 || kinks[0] > latest) {
          second = k == 0 ? kinks[0] : latest, latest = kinks[0];
        } else if (k == 1 || kinks[0] > second) {
          second = kinks[0];
        }
      }
      free = free && !(second <= hi && latest >= lo);
    }
    if (free) s.kink_free[b / 32] |= std::uint32_t(1) << (b % 32);
  }
}

// The number types of KineticSettings that the header declares these for.
template void fill_basis<float>(const KineticSettings<float>&, int, float*, float*);
template void fill_basis<double>(const KineticSettings<double>&, int, double*, double*);
template void mark_kink_free_bins<float>(KineticSettings<float>&, int);
template void mark_kink_free_bins<double>(KineticSettings<double>&, int);

}  // namespace detail
PERFQ_NAMESPACE_END
