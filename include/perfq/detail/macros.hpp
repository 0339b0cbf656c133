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

/// Asks the host compiler to vectorise the loop that follows (OpenMP SIMD, when OpenMP is on).
#if defined(_OPENMP) && !defined(__CUDACC__)
#define PERFQ_SIMD _Pragma("omp simd")
#else
#define PERFQ_SIMD
#endif

/// No-alias pointer qualifier for host and device compilers.
#define PERFQ_RESTRICT __restrict__
