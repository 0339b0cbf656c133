/// @file
/// @brief Symbol visibility. perfq is built with hidden visibility by default; only
/// entities marked PERFQ_API (core) or PERFQ_IO_API (I/O library) are exported.
#pragma once

#if defined(PERFQ_STATIC_DEFINE)
#define PERFQ_API
#define PERFQ_IO_API
#elif defined(_WIN32)
#ifdef perfq_EXPORTS
#define PERFQ_API __declspec(dllexport)
#else
#define PERFQ_API __declspec(dllimport)
#endif
#ifdef perfq_io_EXPORTS
#define PERFQ_IO_API __declspec(dllexport)
#else
#define PERFQ_IO_API __declspec(dllimport)
#endif
#else
/// Marks a symbol of perfq::perfq as exported (the library hides everything else).
#define PERFQ_API __attribute__((visibility("default")))
/// Marks a symbol of perfq::io as exported.
#define PERFQ_IO_API __attribute__((visibility("default")))
#endif

/// Marks an entity as deprecated, with `message` saying what to use instead: a warning where
/// it is used, for at least one minor version before it is removed (C++14 attribute; the GNU
/// attribute in C; nothing elsewhere).
#if defined(__cplusplus) && __cplusplus >= 201402L
#define PERFQ_DEPRECATED(message) [[deprecated(message)]]
#elif defined(__GNUC__)
#define PERFQ_DEPRECATED(message) __attribute__((deprecated(message)))
#else
#define PERFQ_DEPRECATED(message)
#endif
