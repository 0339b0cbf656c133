// Private: the one check, at every entry point that takes several images, that an image is
// one volume on the grid of the others (the same dimensions, voxel size, origin and
// orientation), with one wording.
#pragma once

#include <perfq/errors.hpp>
#include <perfq/image.hpp>

#include <cstddef>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace checks {

/// Throws InvalidArgument "<what> must be one volume on the grid of <of>" unless the image
/// (its geometry, volume count and emptiness) is one volume with the grid `grid`.
inline void one_volume_on_grid(const Geometry& image, std::size_t volumes, bool empty,
                               const Geometry& grid, const std::string& what,
                               const std::string& of) {
  if (empty || volumes != 1 || !grid.same_grid(image)) {
    std::string found;
    if (empty) {
      found = "it is empty";
    } else if (volumes != 1) {
      found = "it has " + std::to_string(volumes) + " volumes";
    } else {
      found = "its grid differs (dimensions, voxel size, origin or orientation)";
    }
    throw InvalidArgument(what + " must be one volume on the grid of " + of + "; " + found);
  }
}

/// The same for a view.
template <class T>
void one_volume_on_grid(View<const T> image, const Geometry& grid, const std::string& what,
                        const std::string& of) {
  one_volume_on_grid(image.geometry, image.volumes, image.empty(), grid, what, of);
}

}  // namespace checks
PERFQ_NAMESPACE_END
