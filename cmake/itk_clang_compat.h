// Force-included before the ITK headers when clang builds perfq::io (CMakeLists.txt).
//
// Debian 12 generated ITK 5.2's itk_compiler_detection.h for GCC only: under clang it stops
// with "#error Unsupported compiler". This reads that header once as GCC 12 would (clang
// implements the GNU dialect it describes), then restores clang's own macros.
#pragma once
#if defined(__clang__) && !defined(ITK_COMPILER_DETECTION_H)
#pragma push_macro("__clang__")
#pragma push_macro("__GNUC__")
#pragma push_macro("__GNUC_MINOR__")
#pragma push_macro("__GNUC_PATCHLEVEL__")
#undef __clang__
#undef __GNUC__
#undef __GNUC_MINOR__
#undef __GNUC_PATCHLEVEL__
#define __GNUC__ 12
#define __GNUC_MINOR__ 2
#define __GNUC_PATCHLEVEL__ 0
#include <itk_compiler_detection.h>
#pragma pop_macro("__GNUC_PATCHLEVEL__")
#pragma pop_macro("__GNUC_MINOR__")
#pragma pop_macro("__GNUC__")
#pragma pop_macro("__clang__")
#endif
