// Runs one computation on the backend resolve_backend chose, with the fallback policy of
// Backend::Auto: when the CUDA path fails (out of device memory, a lost device, a failed
// launch: each a BackendError), an Auto request is redone on the CPU and the caller is told
// through Execution::on_fallback; an explicit Cuda request gets the BackendError.
//
// Test hook: with the environment variable PERFQ_TEST_FAIL_CUDA set (non-empty, not "0"),
// every Auto request behaves as though CUDA had been chosen and had failed, so that the
// fallback decision runs on machines without a GPU (tests/core/test_reliability.cpp, Fallback.*; tests/cli/test_outputs_cli.cpp).
#pragma once

#include <perfq/errors.hpp>
#include <perfq/execution.hpp>

#include <cstdlib>
#include <cstring>
#include <string>

namespace perfq {
namespace dispatch {

/// Whether the PERFQ_TEST_FAIL_CUDA hook is on.
inline bool simulated_cuda_failure() {
  const char* text = std::getenv("PERFQ_TEST_FAIL_CUDA");
  return text != nullptr && *text != '\0' && std::strcmp(text, "0") != 0;
}

/// The note for a fallback from CUDA to the CPU after `failure`.
inline std::string fallback_note(const std::string& failure) {
  return "CUDA backend failed (" + failure + "); falling back to CPU";
}

/// Runs `on_cuda()` when `resolved` is Cuda, else `on_cpu()`; returns the backend that
/// produced the result. `resolved` is resolve_backend(execution). On a BackendError from
/// `on_cuda`: rethrown for an explicit Cuda request; for Auto, `on_cpu()` runs instead and
/// execution.on_fallback (when set) receives fallback_note(...). `on_cpu` must overwrite
/// everything `on_cuda` may have half written.
template <class OnCuda, class OnCpu>
Backend run(Backend resolved, const Execution& execution, OnCuda&& on_cuda, OnCpu&& on_cpu) {
  const bool simulate = execution.backend == Backend::Auto && simulated_cuda_failure();
  if (resolved != Backend::Cuda && !simulate) {
    on_cpu();
    return Backend::Cpu;
  }
  try {
    if (simulate) {
      throw BackendError("simulated CUDA failure (PERFQ_TEST_FAIL_CUDA): out of device memory");
    }
    on_cuda();
    return Backend::Cuda;
  } catch (const BackendError& e) {
    if (execution.backend != Backend::Auto) throw;
    if (execution.on_fallback) execution.on_fallback(fallback_note(e.what()));
  }
  on_cpu();
  return Backend::Cpu;
}

}  // namespace dispatch
}  // namespace perfq
