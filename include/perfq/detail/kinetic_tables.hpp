/// @file
/// @brief The tables of the multi-delay fit that the host fills once per fit, before any
/// voxel: the search basis and the bins of the ATT range near no kink (KineticSettings::basis,
/// KineticSettings::kink_free). Host code, defined in src/kinetic_tables.cpp for float and
/// double; exported from the library (PERFQ_API) because the tests and the GPU kernel's
/// benchmark build these tables for detail::fit_voxel too.
#pragma once

#include <perfq/export.hpp>
#include <perfq/version.hpp>

#include <perfq/detail/kinetic_settings.hpp>

PERFQ_NAMESPACE_BEGIN
namespace detail {

/// Fills the search basis for `slices` slices (see KineticSettings::basis): `basis` holds
/// slices × delays × grid values, `norm` slices × grid.
template <class Real>
PERFQ_API void fill_basis(const KineticSettings<Real>& s, int slices, Real* basis, Real* norm);

/// Fills KineticSettings::kink_free and kink_bin_scale for `slices` slices (after att_min,
/// att_max, the timing and slice_offset are set). A bin is not free when a kink lies within
/// reach of it, or when it meets a plateau: the ATTs at which one delay's bolus alone has
/// arrived (from the second latest sample time to the latest).
template <class Real>
PERFQ_API void mark_kink_free_bins(KineticSettings<Real>& s, int slices);

}  // namespace detail
PERFQ_NAMESPACE_END
