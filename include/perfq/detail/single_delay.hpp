/// @file
/// @brief The per-voxel single-delay quantification, shared by the CPU and CUDA backends.
#pragma once

#include <perfq/version.hpp>

#include <perfq/detail/macros.hpp>
#include <perfq/detail/status.hpp>

#include <cstddef>
#include <cstdint>

PERFQ_NAMESPACE_BEGIN
namespace detail {


/// False for NaN and ±Inf. No subtraction and no short-circuit, so it stays branch-free.
PERFQ_HD inline bool is_finite(float v) { return (v <= 3.402823466e+38f) & (v >= -3.402823466e+38f); }

/// The outcome of one voxel: CBF (0 unless status is Ok) and its status.
struct VoxelResult {
  float cbf;
  std::uint8_t status;
};

/// The arithmetic of one voxel: `factor × ΔM / M0` with its validity checks, where `factor`
/// holds 6000 λ e^(delay/T1b) / (2 α …) / m0_scale for the voxel's slice. Branch-free (the
/// quotient is computed always and kept only where valid), so CPU loops over it vectorise.
PERFQ_HD inline VoxelResult single_delay_voxel(float delta_m, float m0, float factor,
                                               bool inside) {
  const float value = factor * delta_m / m0;
  // Every test is evaluated unconditionally (no short-circuit), then combined.
  const bool finite_input = is_finite(m0) & is_finite(delta_m);
  const bool positive_m0 = m0 > 0.0f;
  const bool finite_value = is_finite(value);
  const std::uint8_t s = !inside         ? kStatusOutsideMask
                         : !finite_input ? kStatusNonFiniteInput
                         : !positive_m0  ? kStatusM0NotPositive
                         : !finite_value ? kStatusNonFiniteResult
                                         : kStatusOk;
  return VoxelResult{s == kStatusOk ? value : 0.0f, s};
}

/// The buffers of a single-delay quantification (host or device pointers).
struct SingleDelayVoxel {
  const float* delta_m = nullptr;
  const float* m0 = nullptr;  ///< voxelwise M0, or nullptr to use m0_value
  float m0_value = 0.0f;
  const std::uint8_t* mask = nullptr;  ///< nullptr: every voxel
  const float* slice_factor = nullptr;  ///< one per slice z
  std::size_t slice_voxels = 0;         ///< nx × ny
  float* cbf = nullptr;
  std::uint8_t* status = nullptr;
};

/// The one per-voxel body of single-delay quantification, which both executors run: voxels
/// [begin, end) of the buffers, all with the slice factor `factor` (the CPU runs it over a
/// run of one slice, the GPU over one voxel per thread). HasMask and HasM0Image say which
/// inputs there are, so that the CPU loop has no test inside and vectorises.
template <bool HasMask, bool HasM0Image>
PERFQ_HD inline void single_delay_run(const float* PERFQ_RESTRICT delta_m,
                                      const float* PERFQ_RESTRICT m0, float m0_value,
                                      const std::uint8_t* PERFQ_RESTRICT mask, float factor,
                                      float* PERFQ_RESTRICT cbf,
                                      std::uint8_t* PERFQ_RESTRICT status, std::size_t begin,
                                      std::size_t end) {
  for (std::size_t i = begin; i < end; ++i) {
    const VoxelResult r = single_delay_voxel(delta_m[i], HasM0Image ? m0[i] : m0_value, factor,
                                             !HasMask || mask[i] != 0);
    cbf[i] = r.cbf;
    status[i] = r.status;
  }
}

/// single_delay_run over voxels [begin, end) of `v`'s buffers, for the inputs `v` has.
PERFQ_HD inline void single_delay_run(const SingleDelayVoxel& v, float factor, std::size_t begin,
                                      std::size_t end) {
  if (v.mask != nullptr) {
    if (v.m0 != nullptr) {
      single_delay_run<true, true>(v.delta_m, v.m0, v.m0_value, v.mask, factor, v.cbf, v.status,
                                   begin, end);
    } else {
      single_delay_run<true, false>(v.delta_m, v.m0, v.m0_value, v.mask, factor, v.cbf, v.status,
                                    begin, end);
    }
  } else if (v.m0 != nullptr) {
    single_delay_run<false, true>(v.delta_m, v.m0, v.m0_value, v.mask, factor, v.cbf, v.status,
                                  begin, end);
  } else {
    single_delay_run<false, false>(v.delta_m, v.m0, v.m0_value, v.mask, factor, v.cbf, v.status,
                                   begin, end);
  }
}

}  // namespace detail
PERFQ_NAMESPACE_END
