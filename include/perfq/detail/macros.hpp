/// @file
/// @brief Macros shared by code that compiles for host and device.
#pragma once

#if defined(__CUDACC__)
/// Marks a function callable from host and device code alike.
#define PERFQ_HD __host__ __device__
/// Kernels get hidden visibility so that two libraries embedding perfq never call each
/// other's kernels (see RAFT issue 1722).
#define PERFQ_KERNEL __global__ __attribute__((visibility("hidden")))
#else
#define PERFQ_HD
#endif
