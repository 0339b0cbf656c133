// Spatial transforms (include/perfq/io/transform.hpp): ITK's transform classes and its
// transform-file readers and writers, behind perfq::io::Transform.
#include <perfq/errors.hpp>
#include <perfq/io/transform.hpp>

#include "transform_internal.hpp"
#include "write_util.hpp"

#include <itkAffineTransform.h>
#include <itkCompositeTransform.h>
#include <itkEuler3DTransform.h>
#include <itkHDF5TransformIOFactory.h>
#include <itkIdentityTransform.h>
#include <itkMatlabTransformIOFactory.h>
#include <itkTransformFactoryBase.h>
#include <itkTransformFileReader.h>
#include <itkTransformFileWriter.h>
#include <itkTxtTransformIOFactory.h>

#include <cmath>
#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

namespace fs = std::filesystem;
using Part = Transform::Impl::Part;

/// ITK finds transform types and file formats through factories; perfq does not use ITK's
/// generated registration (ITK_USE_FILE), so it registers the ones it reads, once.
void register_factories() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::TransformFactoryBase::RegisterDefaultTransforms();
    itk::TxtTransformIOFactory::RegisterOneFactory();
    itk::MatlabTransformIOFactory::RegisterOneFactory();
    itk::HDF5TransformIOFactory::RegisterOneFactory();
  });
}

/// The extension that selects ITK's transform format, or empty when it is not one.
std::string transform_extension(const std::string& path) {
  const std::string ext = fs::path(path).extension().string();
  for (const char* known : {".txt", ".tfm", ".mat", ".h5", ".hdf5"}) {
    if (ext == known) return ext;
  }
  return {};
}

/// Appends the parts of `t` in the order they act on a point; composites are expanded (ITK's
/// composite applies the transform added last first, i.e. its queue from back to front).
void append_parts(const itk::TransformBaseTemplate<double>* t, const std::string& path,
                  std::vector<Part::ConstPointer>& parts) {
  using Composite = itk::CompositeTransform<double, 3>;
  if (const auto* composite = dynamic_cast<const Composite*>(t)) {
    for (std::size_t i = composite->GetNumberOfTransforms(); i-- > 0;) {
      append_parts(composite->GetNthTransformConstPointer(i), path, parts);
    }
    return;
  }
  const auto* part = dynamic_cast<const Part*>(t);
  if (part == nullptr) {
    const std::string type = t == nullptr ? "nothing" : t->GetTransformTypeAsString();
    throw InputError(path, "", "holds a " + type + "; expected a 3D transform of doubles");
  }
  parts.emplace_back(part);
}

std::array<double, 3> apply(const std::vector<Part::ConstPointer>& parts,
                            const std::array<double, 3>& point) {
  Part::InputPointType p;
  for (int i = 0; i < 3; ++i) p[i] = point[i];
  for (const auto& part : parts) p = part->TransformPoint(p);
  return {p[0], p[1], p[2]};
}

Transform from_parts(std::vector<Part::ConstPointer> parts) {
  auto impl = std::make_shared<Transform::Impl>();
  impl->parts = std::move(parts);
  return Transform(std::move(impl));
}

}  // namespace

namespace detail {

Transform make_transform(const itk::Transform<double, 3, 3>* part) {
  std::vector<Part::ConstPointer> parts;
  append_parts(part, "", parts);
  return from_parts(std::move(parts));
}

}  // namespace detail

Transform::Transform() : impl_(std::make_shared<Impl>()) {}

Transform::Transform(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {
  if (!impl_) impl_ = std::make_shared<Impl>();
}

Transform Transform::rigid(const std::array<double, 3>& angles,
                           const std::array<double, 3>& translation,
                           const std::array<double, 3>& center) {
  for (int i = 0; i < 3; ++i) {
    if (!std::isfinite(angles[i]) || !std::isfinite(translation[i]) || !std::isfinite(center[i])) {
      throw InvalidArgument("rigid transform: angles, translation and centre must be finite");
    }
  }
  auto t = itk::Euler3DTransform<double>::New();
  itk::Euler3DTransform<double>::InputPointType c;
  itk::Euler3DTransform<double>::OutputVectorType v;
  for (int i = 0; i < 3; ++i) {
    c[i] = center[i];
    v[i] = translation[i];
  }
  t->SetCenter(c);
  t->SetRotation(angles[0], angles[1], angles[2]);
  t->SetTranslation(v);
  return from_parts({Part::ConstPointer(t.GetPointer())});
}

Transform Transform::affine(const std::array<double, 9>& matrix,
                            const std::array<double, 3>& offset) {
  auto t = itk::AffineTransform<double, 3>::New();
  itk::AffineTransform<double, 3>::MatrixType m;
  itk::AffineTransform<double, 3>::OutputVectorType b;
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      if (!std::isfinite(matrix[3 * r + c])) {
        throw InvalidArgument("affine transform: the matrix must be finite");
      }
      m(r, c) = matrix[3 * r + c];
    }
    if (!std::isfinite(offset[r])) throw InvalidArgument("affine transform: offset must be finite");
    b[r] = offset[r];
  }
  t->SetMatrix(m);
  t->SetOffset(b);
  return from_parts({Part::ConstPointer(t.GetPointer())});
}

std::array<double, 3> Transform::map(const std::array<double, 3>& point) const {
  return apply(impl_->parts, point);
}

bool Transform::linear() const noexcept {
  for (const auto& part : impl_->parts) {
    if (part->GetTransformCategory() != Part::TransformCategoryEnum::Linear) return false;
  }
  return true;
}

std::array<double, 16> Transform::matrix() const {
  if (!linear()) {
    throw InvalidArgument("transform is not linear (it holds a " + parts().back() +
                          "): it has no matrix");
  }
  // A linear map is known from the images of the origin and the three unit vectors.
  const std::array<double, 3> b = map({0.0, 0.0, 0.0});
  std::array<double, 16> m{};
  for (int c = 0; c < 3; ++c) {
    std::array<double, 3> e{0.0, 0.0, 0.0};
    e[c] = 1.0;
    const std::array<double, 3> image = map(e);
    for (int r = 0; r < 3; ++r) m[4 * r + c] = image[r] - b[r];
  }
  for (int r = 0; r < 3; ++r) m[4 * r + 3] = b[r];
  m[15] = 1.0;
  return m;
}

Transform Transform::inverse() const {
  std::vector<Part::ConstPointer> parts;
  for (std::size_t i = impl_->parts.size(); i-- > 0;) {
    const Part& part = *impl_->parts[i];
    if (part.GetTransformCategory() != Part::TransformCategoryEnum::Linear) {
      throw InvalidArgument("a " + part.GetTransformTypeAsString() +
                            " has no exact inverse here; use the transform file of the "
                            "opposite direction");
    }
    auto inverse = part.GetInverseTransform();
    if (!inverse) {
      throw InvalidArgument("the " + part.GetTransformTypeAsString() +
                            " is singular: it has no inverse");
    }
    // Some of ITK's linear transforms (Euler3D among them) invert into their base class,
    // which ITK's transform files cannot hold: the same matrix and offset as an affine.
    using MatrixOffset = itk::MatrixOffsetTransformBase<double, 3, 3>;
    if (std::string(inverse->GetNameOfClass()) == "MatrixOffsetTransformBase") {
      const auto* m = dynamic_cast<const MatrixOffset*>(inverse.GetPointer());
      if (m == nullptr) throw InvalidArgument("transform has no 3D inverse");
      auto affine = itk::AffineTransform<double, 3>::New();
      affine->SetMatrix(m->GetMatrix());
      affine->SetOffset(m->GetOffset());
      inverse = affine.GetPointer();
    }
    auto* as_part = dynamic_cast<Part*>(inverse.GetPointer());
    if (as_part == nullptr) throw InvalidArgument("transform has no 3D inverse");
    parts.emplace_back(as_part);
  }
  return from_parts(std::move(parts));
}

std::vector<std::string> Transform::parts() const {
  std::vector<std::string> names;
  for (const auto& part : impl_->parts) names.push_back(part->GetTransformTypeAsString());
  return names;
}

Transform compose(const std::vector<Transform>& steps) {
  std::vector<Part::ConstPointer> parts;
  for (std::size_t i = steps.size(); i-- > 0;) {
    const auto& step_parts = steps[i].impl()->parts;
    parts.insert(parts.end(), step_parts.begin(), step_parts.end());
  }
  return from_parts(std::move(parts));
}

Transform read_transform(const std::string& path) {
  register_factories();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw InputError(path, "", fs::exists(path, ec) ? "is not a file" : "does not exist");
  }
  if (transform_extension(path).empty()) {
    throw InputError(path, "",
                     "is not a transform file by its name (expected .txt, .tfm, .mat or .h5, as "
                     "ITK, ANTs and fMRIPrep write them)");
  }
  auto reader = itk::TransformFileReaderTemplate<double>::New();
  reader->SetFileName(path);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    std::string why = detail::itk_message(e);
    // ITK lists every transform type it knows after this one: name the type alone.
    const std::string unknown = "Could not create an instance of ";
    const std::size_t at = why.find(unknown);
    if (at != std::string::npos) {
      const std::size_t end = why.find(' ', at + unknown.size());
      throw InputError(
          path, "",
          "holds a transform type perfq cannot read: " +
              why.substr(at + unknown.size(),
                         end == std::string::npos ? std::string::npos : end - at - unknown.size()));
    }
    throw InputError(path, "", "cannot be read as an ITK transform: " + why);
  }
  const auto* list = reader->GetTransformList();
  if (list == nullptr || list->empty()) throw InputError(path, "", "holds no transform");
  if (list->size() != 1) {
    throw InputError(path, "",
                     "holds " + std::to_string(list->size()) +
                         " separate transforms; expected one (or one composite transform)");
  }
  std::vector<Part::ConstPointer> parts;
  append_parts(list->front().GetPointer(), path, parts);
  return from_parts(std::move(parts));
}

void write_transform(const std::string& path, const Transform& transform) {
  register_factories();
  const std::string ext = transform_extension(path);
  if (ext.empty()) {
    throw InvalidArgument(path + ": a transform is written as .txt, .tfm, .mat or .h5");
  }
  detail::require_folder(path);
  const auto& parts = transform.impl()->parts;
  itk::TransformBaseTemplate<double>::ConstPointer whole;
  if (parts.empty()) {
    whole = itk::IdentityTransform<double, 3>::New().GetPointer();
  } else if (parts.size() == 1) {
    whole = parts.front().GetPointer();
  } else {
    // The composite applies the transform added last first.
    auto composite = itk::CompositeTransform<double, 3>::New();
    for (std::size_t i = parts.size(); i-- > 0;) {
      composite->AddTransform(const_cast<Part*>(parts[i].GetPointer()));
    }
    whole = composite.GetPointer();
  }
  const fs::path temp = detail::temporary_name(fs::path(path), ext);
  auto writer = itk::TransformFileWriterTemplate<double>::New();
  writer->SetFileName(temp.string());
  writer->SetInput(whole);
  try {
    writer->Update();
  } catch (const itk::ExceptionObject& e) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error(path + ": cannot write: " + detail::itk_message(e));
  }
  detail::commit(temp, path);
}

}  // namespace io
PERFQ_NAMESPACE_END
