// Internal to perfq's C ABI, shared by libperfq (src/c_api/) and libperfq_io
// (src/io/c_api_io.cpp): the execution handle and the guard that turns exceptions into a
// status and the calling thread's message (perfq_last_error).
#pragma once

#include <perfq/perfq.h>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>

#include <new>
#include <stdexcept>
#include <utility>

struct perfq_execution {
  perfq::Execution value;
};

namespace perfq_c_api {

/// Records `message` as the calling thread's last error, prefixed with `function`; never
/// throws. Exported by libperfq, which holds the message, for libperfq_io's entry points.
PERFQ_API void set_last_error(const char* function, const char* message) noexcept;

inline perfq_status fail(perfq_status status, const char* function, const char* message) noexcept {
  set_last_error(function, message);
  return status;
}

/// Runs `body` (returning void) and maps every exception to a status and a message.
template <class Body>
perfq_status guarded(const char* function, Body&& body) noexcept {
  try {
    body();
    return PERFQ_OK;
  } catch (const perfq::InvalidArgument& e) {
    return fail(PERFQ_ERROR_INVALID_ARGUMENT, function, e.what());
  } catch (const perfq::InputError& e) {
    return fail(PERFQ_ERROR_INPUT, function, e.what());
  } catch (const perfq::BackendError& e) {
    return fail(PERFQ_ERROR_BACKEND, function, e.what());
  } catch (const perfq::Error& e) {  // not the above: a file that could not be written
    return fail(PERFQ_ERROR_IO, function, e.what());
  } catch (const std::bad_alloc&) {
    return fail(PERFQ_ERROR_OUT_OF_MEMORY, function, "out of memory");
  } catch (const std::length_error& e) {
    return fail(PERFQ_ERROR_OUT_OF_MEMORY, function, e.what());
  } catch (const std::exception& e) {
    return fail(PERFQ_ERROR_INTERNAL, function, e.what());
  } catch (...) {
    return fail(PERFQ_ERROR_INTERNAL, function, "unknown exception");
  }
}

/// The one body of the accessors: `read(*handle)`, or `fallback` (NULL, 0, "") with the
/// calling thread's message set, naming `function`, for a NULL handle.
template <class Handle, class Read>
auto read_handle(const Handle* handle, const char* function,
                 decltype(std::declval<Read&>()(std::declval<const Handle&>())) fallback,
                 Read read) noexcept {
  if (handle == nullptr) {
    set_last_error(function, "handle: null pointer");
    return fallback;
  }
  return read(*handle);
}

/// The settings of an execution handle (NULL: the defaults).
inline perfq::Execution execution_for(const perfq_execution* execution) {
  return execution != nullptr ? execution->value : perfq::Execution{};
}

}  // namespace perfq_c_api
