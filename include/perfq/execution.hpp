/// @file
/// @brief Where computations run: backend choice and CUDA device discovery.
#pragma once

#include <perfq/version.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief Compute backend. `Auto` picks CUDA when a device is present, else the CPU.
enum class Backend { Auto, Cpu, Cuda };

/// @brief Execution settings shared by every computation.
struct Execution {
  Backend backend = Backend::Auto;  ///< which backend to use
  /// CPU threads; 0 = OpenMP's default (OMP_NUM_THREADS). A run uses at most as many as
  /// there are processors available to the process, and no more than its cgroup lets it
  /// start (pids.max); results do not depend on the number.
  int threads = 0;
  int device = 0;                   ///< CUDA device ordinal
  std::size_t device_bytes_limit = 0;  ///< cap on device memory used; 0 = free memory
  /// Most voxels one chunk holds; 0 = as many as device memory allows. When 0, the
  /// environment variable PERFQ_MAX_CHUNK_VOXELS (a positive integer) is used instead. A
  /// forced size also makes the CPU backend run in chunks of that size; results are bitwise
  /// identical whatever the chunk size (single-delay CBF and the multi-delay fit are chunked;
  /// masks and statistics need the whole grid at once).
  std::size_t max_chunk_voxels = 0;
  /// Called with a message when a computation with `backend == Auto` fell back from CUDA to
  /// the CPU (device out of memory, lost device, failed launch); the result then reports
  /// Backend::Cpu. Unset: the fallback is silent apart from that.
  std::function<void(const std::string& message)> on_fallback;
};

/// @brief Whether this build of perfq contains the CUDA backend.
PERFQ_API bool cuda_compiled() noexcept;
/// @brief Whether the CUDA backend can run: compiled in and at least one usable device.
/// Any CUDA runtime error during discovery (e.g. no driver) counts as "no device".
PERFQ_API bool cuda_available() noexcept;
/// @brief Number of usable CUDA devices (0 when none or when CUDA is not compiled in).
PERFQ_API int cuda_device_count() noexcept;
/// @brief Names of the usable CUDA devices, in ordinal order.
PERFQ_API std::vector<std::string> cuda_device_names();
/// @brief Why CUDA is unavailable (empty when it is available).
PERFQ_API std::string cuda_unavailable_reason();

/// @brief Resolves `Auto` to a concrete backend.
/// @throws BackendError when `Cuda` is requested but cannot run, or `device` is out of range.
PERFQ_API Backend resolve_backend(const Execution& execution);

/// @brief "auto", "cpu" or "cuda".
PERFQ_API const char* to_string(Backend backend) noexcept;
/// @brief Parses "auto", "cpu" or "cuda".
/// @throws InvalidArgument for any other text.
PERFQ_API Backend parse_backend(const std::string& text);

PERFQ_NAMESPACE_END
