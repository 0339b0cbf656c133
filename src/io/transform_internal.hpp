// Internal to perfq::io: what a perfq::io::Transform holds (ITK transforms), for the code that
// registers images and resamples them (registration.cpp, resample.cpp).
#pragma once

#include <perfq/io/transform.hpp>

#include <itkTransform.h>

#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {

/// The parts of a transform, in the order Transform::map applies them to a point.
struct Transform::Impl {
  using Part = itk::Transform<double, 3, 3>;
  std::vector<Part::ConstPointer> parts;  ///< applied first to last; empty = identity
};

namespace detail {

/// A Transform of one ITK transform (composites are expanded into their parts).
Transform make_transform(const itk::Transform<double, 3, 3>* part);

}  // namespace detail
}  // namespace io
PERFQ_NAMESPACE_END
