// Private to the Python extension: the building blocks on arrays (blocks.cpp).
#pragma once

#include <nanobind/nanobind.h>

namespace perfq_python {

/// Binds quantify (single-delay CBF and the multi-delay fit), distance_map, border_zones and
/// region_stats.
void bind_blocks(nanobind::module_& m);

/// Binds Transform, read_transform, compose_transforms, affine_transform and resampling
/// (transforms.cpp).
void bind_transforms(nanobind::module_& m);

}  // namespace perfq_python
