// A check of a registration by eye (perfq register --figure): a checkerboard of the fixed
// image and the moving image resampled through the transform, on an axial, a coronal and a
// sagittal plane through the moving image's centre.
#pragma once

#include "report_figures.hpp"

#include <perfq/image.hpp>
#include <perfq/io/transform.hpp>

#include <optional>
#include <string>

namespace perfq_cli {

/// The three planes side by side (1 mm pixels, 200 mm across; radiological: the patient's
/// right on the left, anterior and superior at the top), alternating 10 mm squares of the
/// fixed image (grey) and the moving image resampled onto it by `transform` (warm tint), each
/// scaled to its own 99th percentile. Edges continue across the squares' borders where the
/// registration is right.
/// The image perfq register registers: volume `which` of `image`, or the mean of all its
/// volumes (non-finite values counted as 0). Throws InputError naming `path` for a volume
/// that is not there.
perfq::Volume<float> registration_volume(const perfq::Image<float>& image,
                                         std::optional<long> which, const std::string& path);

report::Canvas registration_checkerboard(perfq::View<const float> moving,
                                         perfq::View<const float> fixed,
                                         const perfq::io::Transform& transform);

}  // namespace perfq_cli
