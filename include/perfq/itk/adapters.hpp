/// @file
/// @brief Bridges between `itk::Image` and perfq images, without copying voxels.
///
/// Header-only and outside the core API: include it only in code that already uses ITK, and
/// link the CMake target `perfq::itk` (perfq plus ITKCommon; `find_package(perfq CONFIG
/// COMPONENTS itk)` for an installed perfq). The core headers never mention ITK.
///
/// Geometry: perfq and ITK share one convention (LPS, voxel index (i, j, k) at
/// `origin + direction · diag(spacing) · (i, j, k)`, x fastest in memory), so the bridge copies
/// origin, spacing and direction as they are. A 4D `itk::Image` is a series: its fourth axis is
/// perfq's volume index, and only the spatial 3 × 3 block of its direction matrix is used.
///
/// Three ways across:
/// - view(): a perfq View of an ITK image's buffer (no copy; the ITK image must outlive it);
/// - wrap(): an ITK image over perfq memory (no copy; the perfq memory must outlive it);
/// - adopt(): an ITK image that takes over a perfq Image's buffer (no copy; owns it);
/// - to_itk(): an ITK image with a copy of a view.
#pragma once

#include <perfq/errors.hpp>
#include <perfq/image.hpp>

#include <itkImage.h>
#include <itkImportImageContainer.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

PERFQ_NAMESPACE_BEGIN
/// @brief perfq ⇄ ITK bridges and ITK pipeline filters (header-only; needs ITK).
namespace itk_bridge {

/// @brief The perfq Geometry of an ITK image's largest possible region (its first three axes).
/// The origin is the physical point of the region's first index, so images whose region does
/// not start at index 0 map correctly.
template <unsigned D>
Geometry geometry_of(const ::itk::ImageBase<D>& image) {
  static_assert(D == 3 || D == 4, "perfq images are 3D volumes or 4D series");
  const auto region = image.GetLargestPossibleRegion();
  Geometry g;
  typename ::itk::ImageBase<D>::PointType first;
  image.TransformIndexToPhysicalPoint(region.GetIndex(), first);
  for (unsigned a = 0; a < 3; ++a) {
    g.dims[a] = static_cast<std::size_t>(region.GetSize(a));
    g.spacing[a] = image.GetSpacing()[a];
    g.origin[a] = first[a];
    for (unsigned c = 0; c < 3; ++c) g.direction[3 * a + c] = image.GetDirection()[a][c];
  }
  return g;
}

/// @brief Sets an ITK image's regions, spacing, origin and direction from a perfq grid (and, for
/// a 4D image, `volumes` along the fourth axis, spacing 1). Does not allocate.
template <class TImage>
void apply_geometry(const Geometry& geometry, std::size_t volumes, TImage& image) {
  constexpr unsigned D = TImage::ImageDimension;
  static_assert(D == 3 || D == 4, "perfq images are 3D volumes or 4D series");
  if (D == 3 && volumes != 1) {
    throw InvalidArgument("itk_bridge: a perfq series of " + std::to_string(volumes) +
                          " volumes needs a 4D itk::Image");
  }
  typename TImage::SizeType size;
  typename TImage::SpacingType spacing;
  typename TImage::PointType origin;
  typename TImage::DirectionType direction;
  direction.SetIdentity();
  for (unsigned a = 0; a < 3; ++a) {
    size[a] = static_cast<::itk::SizeValueType>(geometry.dims[a]);
    spacing[a] = geometry.spacing[a];
    origin[a] = geometry.origin[a];
    for (unsigned c = 0; c < 3; ++c) direction[a][c] = geometry.direction[3 * a + c];
  }
  if constexpr (D == 4) {
    size[3] = static_cast<::itk::SizeValueType>(volumes);
    spacing[3] = 1.0;
    origin[3] = 0.0;
  }
  typename TImage::RegionType region;
  region.SetSize(size);  // index 0
  image.SetRegions(region);
  image.SetSpacing(spacing);
  image.SetOrigin(origin);
  image.SetDirection(direction);
}

namespace detail {
template <class TImage>
void require_whole_buffer(const TImage* image, const char* what) {
  if (image == nullptr) throw InvalidArgument(std::string("itk_bridge::") + what + ": null image");
  if (image->GetBufferPointer() == nullptr ||
      image->GetBufferedRegion() != image->GetLargestPossibleRegion()) {
    throw InvalidArgument(std::string("itk_bridge::") + what +
                          ": the image's buffer does not hold its largest possible region "
                          "(call Update() on the whole image, not a streamed piece)");
  }
}
}  // namespace detail

/// @brief A read-only perfq view of an ITK image's voxels (no copy). The image must stay alive
/// and unchanged in size while the view is used.
/// @throws InvalidArgument for a null image or one whose buffer does not hold its largest
///         possible region (e.g. a streamed piece)
template <class T, unsigned D>
View<const T> view(const ::itk::Image<T, D>* image) {
  detail::require_whole_buffer(image, "view");
  const std::size_t volumes = D == 4 ? image->GetLargestPossibleRegion().GetSize(D - 1) : 1;
  return View<const T>{image->GetBufferPointer(), geometry_of<D>(*image), volumes};
}

/// @brief A writable perfq view of an ITK image's voxels (no copy); as view().
template <class T, unsigned D>
View<T> mutable_view(::itk::Image<T, D>* image) {
  detail::require_whole_buffer(image, "mutable_view");
  const std::size_t volumes = D == 4 ? image->GetLargestPossibleRegion().GetSize(D - 1) : 1;
  return View<T>{image->GetBufferPointer(), geometry_of<D>(*image), volumes};
}

/// @brief An ITK image over perfq memory (no copy, not owned): the memory must outlive the
/// ITK image and every pipeline that reads it.
/// @tparam D 3 for a volume, 4 for a series
template <unsigned D = 3, class T>
typename ::itk::Image<T, D>::Pointer wrap(View<T> view) {
  static_assert(!std::is_const<T>::value,
                "itk::Image needs writable memory: wrap a View<T>, or copy with to_itk()");
  if (view.data == nullptr) throw InvalidArgument("itk_bridge::wrap: empty view");
  auto image = ::itk::Image<T, D>::New();
  apply_geometry(view.geometry, view.volumes, *image);
  image->GetPixelContainer()->SetImportPointer(view.data, view.size(), false);
  return image;
}

/// @brief An ITK pixel container that owns a std::vector: how adopt() hands a perfq buffer to
/// ITK without copying it.
template <class T>
class VectorPixelContainer : public ::itk::ImportImageContainer<::itk::SizeValueType, T> {
 public:
  /// @cond ITK_BOILERPLATE
  using Self = VectorPixelContainer;
  using Superclass = ::itk::ImportImageContainer<::itk::SizeValueType, T>;
  using Pointer = ::itk::SmartPointer<Self>;
  using ConstPointer = ::itk::SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(VectorPixelContainer, ImportImageContainer);
  /// @endcond

  /// @brief Takes the vector; the container then points at its elements.
  void adopt(std::vector<T>&& values) {
    values_ = std::move(values);
    this->SetImportPointer(values_.data(), values_.size(), false);
  }

 protected:
  /// @cond ITK_BOILERPLATE
  VectorPixelContainer() = default;
  ~VectorPixelContainer() override = default;
  /// @endcond

 private:
  std::vector<T> values_;
};

/// @brief An ITK image that takes over the buffer of a perfq image (no copy); `image` is left
/// empty.
/// @tparam D 3 for a volume, 4 for a series
template <unsigned D = 3, class T>
typename ::itk::Image<T, D>::Pointer adopt(Image<T>&& image) {
  auto out = ::itk::Image<T, D>::New();
  apply_geometry(image.geometry(), image.volumes(), *out);
  auto container = VectorPixelContainer<T>::New();
  container->adopt(std::move(image.values()));
  image = Image<T>();
  out->SetPixelContainer(container);
  return out;
}

/// @brief An ITK image holding a copy of a view.
/// @tparam D 3 for a volume, 4 for a series
template <unsigned D = 3, class T>
typename ::itk::Image<std::remove_const_t<T>, D>::Pointer to_itk(View<T> view) {
  using Value = std::remove_const_t<T>;
  if (view.data == nullptr) throw InvalidArgument("itk_bridge::to_itk: empty view");
  auto image = ::itk::Image<Value, D>::New();
  apply_geometry(view.geometry, view.volumes, *image);
  image->Allocate();
  std::copy(view.data, view.data + view.size(), image->GetBufferPointer());
  return image;
}

}  // namespace itk_bridge
PERFQ_NAMESPACE_END
