// Transforms and resampling (perfq/io/transform.hpp, perfq/io/resample.hpp) as the library
// has them: points and matrices in LPS; the Python layer (perfq/_transforms.py) speaks RAS.
#include <perfq/errors.hpp>
#include <perfq/io/anatomy.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/registration.hpp>
#include <perfq/io/resample.hpp>
#include <perfq/io/transform.hpp>

#include "arrays.hpp"
#include "blocks.hpp"

#include <nanobind/stl/array.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace perfq_python {
namespace {

using perfq::io::Transform;
using Dims = std::array<std::size_t, 3>;
using Triple = std::array<double, 3>;
using Direction = std::array<double, 9>;
using Points =
    nb::ndarray<const double, nb::numpy, nb::shape<-1, 3>, nb::c_contig, nb::device::cpu>;

nb::object map_points(const Transform& t, const Points& points) {
  const std::size_t n = points.shape(0);
  auto* out = new std::vector<double>(3 * n);
  nb::capsule owner(out, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  const double* in = points.data();
  {
    nb::gil_scoped_release unlocked;
    for (std::size_t i = 0; i < n; ++i) {
      const Triple q = t.map({in[3 * i], in[3 * i + 1], in[3 * i + 2]});
      for (int a = 0; a < 3; ++a) (*out)[3 * i + a] = q[a];
    }
  }
  const std::size_t shape[2] = {n, 3};
  return nb::cast(nb::ndarray<nb::numpy, double>(out->data(), 2, shape, owner));
}

perfq::io::ResampleOptions options(std::size_t footprint, int threads) {
  perfq::io::ResampleOptions o;
  o.footprint = footprint;
  o.threads = threads;
  return o;
}

}  // namespace

void bind_transforms(nb::module_& m) {
  nb::class_<Transform>(m, "Transform",
                        "A spatial transform (perfq::io::Transform): map takes target points to "
                        "source points, LPS mm.")
      .def("map", &map_points, nb::arg("points"), "Maps an (N, 3) array of LPS points.")
      .def_prop_ro("linear", &Transform::linear)
      .def("matrix", &Transform::matrix, "The 4 x 4 LPS matrix (16 values, row-major).")
      .def("inverse", &Transform::inverse)
      .def("parts", &Transform::parts);
  m.def("read_transform", &perfq::io::read_transform, nb::arg("path"));
  m.def("compose_transforms", &perfq::io::compose, nb::arg("steps"));
  m.def("affine_transform", &Transform::affine, nb::arg("matrix"), nb::arg("offset"));
  m.def(
      "resample",
      [](const InArray<float>& image, const Dims& dims, const Triple& spacing, const Triple& origin,
         const Direction& direction, const Dims& target_dims, const Triple& target_spacing,
         const Triple& target_origin, const Direction& target_direction, const Transform& transform,
         bool nearest, std::size_t footprint, float outside, int threads) {
        const perfq::View<const float> v =
            view_of(image, make_geometry(dims, spacing, origin, direction), "image");
        const perfq::Geometry target =
            make_geometry(target_dims, target_spacing, target_origin, target_direction);
        perfq::io::ResampleOptions o = options(footprint, threads);
        o.interpolation =
            nearest ? perfq::io::Interpolation::Nearest : perfq::io::Interpolation::Linear;
        o.outside = outside;
        perfq::Image<float> out;
        {
          nb::gil_scoped_release unlocked;
          out = perfq::io::resample(v, target, transform, o);
        }
        return array_owning(std::move(out));
      },
      nb::arg("image"), nb::arg("dims"), nb::arg("spacing"), nb::arg("origin"),
      nb::arg("direction"), nb::arg("target_dims"), nb::arg("target_spacing"),
      nb::arg("target_origin"), nb::arg("target_direction"), nb::arg("transform"),
      nb::arg("nearest"), nb::arg("footprint"), nb::arg("outside"), nb::arg("threads"));
  m.def(
      "resample_labels",
      [](const InArray<std::int32_t>& labels, const Dims& dims, const Triple& spacing,
         const Triple& origin, const Direction& direction, const Dims& target_dims,
         const Triple& target_spacing, const Triple& target_origin,
         const Direction& target_direction, const Transform& transform, bool nearest,
         std::size_t footprint, int threads) {
        const perfq::View<const std::int32_t> v =
            view_of(labels, make_geometry(dims, spacing, origin, direction), "labels");
        const perfq::Geometry target =
            make_geometry(target_dims, target_spacing, target_origin, target_direction);
        perfq::Image<std::int32_t> out;
        {
          nb::gil_scoped_release unlocked;
          out = perfq::io::resample_labels(
              v, target, transform,
              nearest ? perfq::io::LabelRule::Nearest : perfq::io::LabelRule::Majority,
              options(footprint, threads));
        }
        return array_owning(std::move(out));
      },
      nb::arg("labels"), nb::arg("dims"), nb::arg("spacing"), nb::arg("origin"),
      nb::arg("direction"), nb::arg("target_dims"), nb::arg("target_spacing"),
      nb::arg("target_origin"), nb::arg("target_direction"), nb::arg("transform"),
      nb::arg("nearest"), nb::arg("footprint"), nb::arg("threads"));
  m.def(
      "register_rigid",
      [](const InArray<float>& moving, const Dims& dims, const Triple& spacing,
         const Triple& origin, const Direction& direction, const InArray<float>& fixed,
         const Dims& fixed_dims, const Triple& fixed_spacing, const Triple& fixed_origin,
         const Direction& fixed_direction, const std::optional<InArray<std::uint8_t>>& moving_mask,
         const std::optional<InArray<std::uint8_t>>& fixed_mask, const std::string& start,
         int threads) {
        const perfq::Geometry mg = make_geometry(dims, spacing, origin, direction);
        const perfq::Geometry fg = make_geometry(fixed_dims, fixed_spacing, fixed_origin,
                                                 fixed_direction);
        const perfq::View<const float> m = view_of(moving, mg, "moving");
        const perfq::View<const float> f = view_of(fixed, fg, "fixed");
        std::optional<perfq::Mask> mm, fm;
        perfq::io::RegistrationOptions o;
        o.threads = threads;
        if (start == "identity") {
          o.start = perfq::io::RegistrationStart::Identity;
        } else if (start == "moments") {
          o.start = perfq::io::RegistrationStart::Moments;
        } else if (start == "geometry") {
          o.start = perfq::io::RegistrationStart::Geometry;
        } else {
          throw perfq::InvalidArgument("start: expected identity, moments or geometry, got '" +
                                       start + "'");
        }
        if (moving_mask) {
          const auto v = view_of(*moving_mask, mg, "moving_mask");
          mm.emplace(mg, 1, std::vector<std::uint8_t>(v.data, v.data + v.size()));
          o.moving_mask = &*mm;
        }
        if (fixed_mask) {
          const auto v = view_of(*fixed_mask, fg, "fixed_mask");
          fm.emplace(fg, 1, std::vector<std::uint8_t>(v.data, v.data + v.size()));
          o.fixed_mask = &*fm;
        }
        perfq::io::RegistrationResult r;
        {
          nb::gil_scoped_release unlocked;
          r = perfq::io::register_rigid(m, f, o);
        }
        nb::dict out;
        out["transform"] = r.transform;
        out["angles"] = r.angles;
        out["translation"] = r.translation;
        out["center"] = r.center;
        out["initial_metric"] = r.initial_metric;
        out["final_metric"] = r.final_metric;
        out["iterations"] = r.iterations;
        out["stop_condition"] = r.stop_condition;
        out["sampled_image"] = r.sampled_image;
        out["samples"] = r.samples;
        return out;
      },
      nb::arg("moving"), nb::arg("dims"), nb::arg("spacing"), nb::arg("origin"),
      nb::arg("direction"), nb::arg("fixed"), nb::arg("fixed_dims"), nb::arg("fixed_spacing"),
      nb::arg("fixed_origin"), nb::arg("fixed_direction"), nb::arg("moving_mask").none(),
      nb::arg("fixed_mask").none(), nb::arg("start"), nb::arg("threads"));
  m.def(
      "find_anat_derivatives",
      [](const std::string& root, const std::string& subject, const std::string& session) {
        const perfq::io::AnatDerivatives a =
            perfq::io::find_anat_derivatives(root, subject, session);
        nb::dict out;
        out["folder"] = a.folder;
        out["prefix"] = a.prefix;
        out["t1w"] = a.t1w;
        out["brain_mask"] = a.brain_mask;
        out["gm"] = a.gm;
        out["wm"] = a.wm;
        out["csf"] = a.csf;
        out["dseg"] = a.dseg;
        out["from_template"] = a.from_template;
        return out;
      },
      nb::arg("root"), nb::arg("subject"), nb::arg("session"));
  m.def("find_m0scan", &perfq::io::find_m0scan, nb::arg("asl_path"));
  m.def(
      "resample_mask",
      [](const InArray<std::uint8_t>& mask, const Dims& dims, const Triple& spacing,
         const Triple& origin, const Direction& direction, const Dims& target_dims,
         const Triple& target_spacing, const Triple& target_origin,
         const Direction& target_direction, const Transform& transform, double min_fraction,
         std::size_t footprint, int threads) {
        const perfq::View<const std::uint8_t> v =
            view_of(mask, make_geometry(dims, spacing, origin, direction), "mask");
        const perfq::Geometry target =
            make_geometry(target_dims, target_spacing, target_origin, target_direction);
        perfq::Mask out;
        {
          nb::gil_scoped_release unlocked;
          out = perfq::io::resample_mask(v, target, transform, min_fraction,
                                         options(footprint, threads));
        }
        return array_owning(std::move(out));
      },
      nb::arg("mask"), nb::arg("dims"), nb::arg("spacing"), nb::arg("origin"), nb::arg("direction"),
      nb::arg("target_dims"), nb::arg("target_spacing"), nb::arg("target_origin"),
      nb::arg("target_direction"), nb::arg("transform"), nb::arg("min_fraction"),
      nb::arg("footprint"), nb::arg("threads"));
}

}  // namespace perfq_python
