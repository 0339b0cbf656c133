// The building blocks on arrays: each takes Fortran-ordered arrays on one grid (given as
// dims, spacing, origin and direction), runs the library's call with the GIL released and
// returns its maps as arrays that own their memory.
#include <perfq/cbf.hpp>
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/quality.hpp>
#include <perfq/stats.hpp>
#include <perfq/watershed.hpp>

#include "arrays.hpp"
#include "blocks.hpp"

#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace perfq_python {
namespace {

using Dims = std::array<std::size_t, 3>;
using Triple = std::array<double, 3>;
using Direction = std::array<double, 9>;

/// The M0: an image on the grid, or one value for every voxel (fully relaxed).
perfq::M0Source m0_source(const std::optional<InArray<float>>& image, double value,
                          const perfq::Geometry& g) {
  if (image) {
    const perfq::View<const float> m0 = view_of(*image, g, "m0");
    if (m0.volumes != 1) throw perfq::InvalidArgument("m0: expected one 3D image");
    return perfq::M0Source::from_image(m0);
  }
  if (!(value > 0.0)) throw perfq::InvalidArgument("m0: give an image or a positive value");
  return perfq::M0Source::relaxed_value(value);
}

/// What quantify_cbf and fit_kinetic take: the images on their grid, the protocol from a BIDS
/// sidecar's JSON, the request that perfq cbf's options (constants, fit settings) make and
/// the physiology it gives, and where to run.
struct Quantification {
  perfq::View<const float> delta_m;
  perfq::M0Source m0;
  std::optional<perfq::View<const std::uint8_t>> mask;
  perfq::AslProtocol protocol;
  perfq::io::SeriesRequest request;
  perfq::Physiology physiology;
  perfq::Execution execution;
};

Quantification quantification(const InArray<float>& delta_m,
                              const std::optional<InArray<float>>& m0_image, double m0_value,
                              const std::optional<InArray<std::uint8_t>>& mask, const Dims& dims,
                              const Triple& spacing, const Triple& origin,
                              const Direction& direction, const std::string& sidecar_json,
                              const std::string& source, const std::vector<std::string>& options,
                              const std::string& backend, int device, int threads) {
  const perfq::Geometry g = make_geometry(dims, spacing, origin, direction);
  perfq::AslProtocol protocol = perfq::io::parse_asl_sidecar(sidecar_json, source);
  perfq::io::SeriesRequest request = perfq::io::parse_series_options(options);
  const perfq::Physiology physiology = perfq::io::series_physiology(protocol, request, source);
  return Quantification{view_of(delta_m, g, "delta_m"),
                        m0_source(m0_image, m0_value, g),
                        optional_view(mask, g, "mask"),
                        std::move(protocol),
                        std::move(request),
                        physiology,
                        execution(backend, device, threads)};
}

/// Single-delay CBF (`kinetic` false) or the multi-delay fit: its maps by name.
nb::dict quantify(bool kinetic, const InArray<float>& delta_m,
                  const std::optional<InArray<float>>& m0_image, double m0_value,
                  const std::optional<InArray<std::uint8_t>>& mask, const Dims& dims,
                  const Triple& spacing, const Triple& origin, const Direction& direction,
                  const std::string& sidecar_json, const std::string& source,
                  const std::vector<std::string>& options, const std::string& backend, int device,
                  int threads) {
  const Quantification q =
      quantification(delta_m, m0_image, m0_value, mask, dims, spacing, origin, direction,
                     sidecar_json, source, options, backend, device, threads);
  nb::dict out;
  if (!kinetic) {
    perfq::CbfMaps maps;
    {
      nb::gil_scoped_release unlocked;
      maps = perfq::quantify_cbf(q.delta_m, q.m0, q.protocol, q.physiology, q.mask, q.execution);
    }
    out["cbf"] = array_owning(std::move(maps.cbf));
    out["status"] = array_owning(std::move(maps.status));
    out["backend"] = perfq::to_string(maps.backend);
    return out;
  }
  perfq::KineticFit fit;
  {
    nb::gil_scoped_release unlocked;
    fit = perfq::fit_kinetic(q.delta_m, q.m0, q.protocol, q.physiology, q.request.kinetic, q.mask,
                             q.execution);
  }
  out["cbf"] = array_owning(std::move(fit.cbf));
  out["att"] = array_owning(std::move(fit.att));
  out["cbf_se"] = array_owning(std::move(fit.cbf_se));
  out["att_se"] = array_owning(std::move(fit.att_se));
  out["residual_rms"] = array_owning(std::move(fit.residual_rms));
  out["iterations"] = array_owning(std::move(fit.iterations));
  out["status"] = array_owning(std::move(fit.status));
  if (q.request.kinetic.arterial) {
    out["abv"] = array_owning(std::move(fit.abv));
    out["abv_se"] = array_owning(std::move(fit.abv_se));
    out["arterial_att"] = array_owning(std::move(fit.arterial_att));
  }
  out["backend"] = perfq::to_string(fit.backend);
  return out;
}

nb::object distance(const InArray<std::uint8_t>& mask, const Dims& dims, const Triple& spacing,
                    const Triple& origin, const Direction& direction, bool signed_distance,
                    bool use_spacing, const std::string& backend, int device, int threads) {
  const perfq::Geometry g = make_geometry(dims, spacing, origin, direction);
  const perfq::View<const std::uint8_t> m = view_of(mask, g, "mask");
  perfq::DistanceOptions o;
  o.signed_distance = signed_distance;
  o.use_spacing = use_spacing;
  perfq::Volume<float> map;
  {
    nb::gil_scoped_release unlocked;
    map = perfq::distance_map(m, o, execution(backend, device, threads));
  }
  return array_owning(std::move(map));
}

nb::dict zones(const InArray<std::int32_t>& territories,
               const std::optional<InArray<std::uint8_t>>& brain, double width_mm, const Dims& dims,
               const Triple& spacing, const Triple& origin, const Direction& direction,
               const std::string& backend, int device, int threads) {
  const perfq::Geometry g = make_geometry(dims, spacing, origin, direction);
  const perfq::View<const std::int32_t> t = view_of(territories, g, "territories");
  const auto b = optional_view(brain, g, "brain");
  perfq::BorderZones z;
  {
    nb::gil_scoped_release unlocked;
    z = perfq::border_zones(t, b, width_mm, execution(backend, device, threads));
  }
  nb::dict out;
  out["mask"] = array_owning(std::move(z.mask));
  out["pairs"] = array_owning(std::move(z.pairs));
  out["territories"] = z.territories;
  return out;
}

nb::list stats(const InArray<float>& map, const InArray<std::int32_t>& labels,
               const std::optional<InArray<std::uint8_t>>& mask,
               const std::vector<double>& percentiles, bool include_background, const Dims& dims,
               const Triple& spacing, const Triple& origin, const Direction& direction,
               const std::string& backend, int device, int threads) {
  const perfq::Geometry g = make_geometry(dims, spacing, origin, direction);
  const perfq::View<const float> v = view_of(map, g, "map");
  const perfq::View<const std::int32_t> l = view_of(labels, g, "labels");
  perfq::StatsOptions o;
  o.mask = optional_view(mask, g, "mask");
  o.percentiles = percentiles;
  o.include_background = include_background;
  perfq::RegionTable table;
  {
    nb::gil_scoped_release unlocked;
    table = perfq::region_stats(v, l, o, execution(backend, device, threads));
  }
  nb::list rows;
  for (const perfq::RegionStats& r : table.regions) {
    nb::dict row;
    row["label"] = r.label;
    row["voxels"] = r.voxels;
    row["count"] = r.count;
    row["nonfinite"] = r.nonfinite;
    row["volume_ml"] = r.volume_ml;
    row["mean"] = r.mean;
    row["sd"] = r.sd;
    row["median"] = r.median;
    row["min"] = r.min;
    row["max"] = r.max;
    row["cov"] = r.cov_defined ? nb::cast(r.cov) : nb::none();
    row["scov"] = r.cov_defined ? nb::cast(r.scov) : nb::none();
    nb::dict p;
    for (std::size_t k = 0; k < table.percentiles.size() && k < r.percentiles.size(); ++k) {
      p[nb::cast(table.percentiles[k])] = r.percentiles[k];
    }
    row["percentiles"] = p;
    rows.append(row);
  }
  return rows;
}

nb::list quality(const InArray<float>& cbf, const std::optional<InArray<float>>& gm,
                 const std::optional<InArray<float>>& wm, const std::optional<InArray<float>>& csf,
                 const std::optional<InArray<std::uint8_t>>& brain,
                 const std::optional<InArray<std::uint8_t>>& status, double tissue_threshold,
                 double fwhm_mm, bool relative, const Dims& dims, const Triple& spacing,
                 const Triple& origin, const Direction& direction) {
  const perfq::Geometry g = make_geometry(dims, spacing, origin, direction);
  const perfq::View<const float> v = view_of(cbf, g, "cbf");
  perfq::TissueMaps tissue;
  tissue.gm = optional_view(gm, g, "gm");
  tissue.wm = optional_view(wm, g, "wm");
  tissue.csf = optional_view(csf, g, "csf");
  perfq::QualityOptions o;
  o.brain = optional_view(brain, g, "brain");
  o.status = optional_view(status, g, "status");
  o.tissue_threshold = tissue_threshold;
  o.qei_smoothing_fwhm_mm = fwhm_mm;
  o.relative = relative;
  perfq::QualityReport report;
  {
    nb::gil_scoped_release unlocked;
    report = perfq::quality_indices(v, tissue, o);
  }
  nb::list out;
  for (const perfq::QualityIndex& q : report.indices) {
    out.append(nb::make_tuple(q.name, q.defined ? nb::cast(q.value) : nb::none(), q.units,
                              q.description, q.why_not));
  }
  return out;
}

}  // namespace

void bind_blocks(nb::module_& m) {
  m.def("quantify", &quantify, nb::arg("kinetic"), nb::arg("delta_m"), nb::arg("m0_image").none(),
        nb::arg("m0_value"), nb::arg("mask").none(), nb::arg("dims"), nb::arg("spacing"),
        nb::arg("origin"), nb::arg("direction"), nb::arg("sidecar_json"), nb::arg("source"),
        nb::arg("options"), nb::arg("backend"), nb::arg("device"), nb::arg("threads"),
        "Single-delay CBF (kinetic False) or the multi-delay fit of arrays on one grid.");
  m.def("distance_map", &distance, nb::arg("mask"), nb::arg("dims"), nb::arg("spacing"),
        nb::arg("origin"), nb::arg("direction"), nb::arg("signed_distance"), nb::arg("use_spacing"),
        nb::arg("backend"), nb::arg("device"), nb::arg("threads"));
  m.def("border_zones", &zones, nb::arg("territories"), nb::arg("brain").none(),
        nb::arg("width_mm"), nb::arg("dims"), nb::arg("spacing"), nb::arg("origin"),
        nb::arg("direction"), nb::arg("backend"), nb::arg("device"), nb::arg("threads"));
  m.def("quality_indices", &quality, nb::arg("cbf"), nb::arg("gm").none(), nb::arg("wm").none(),
        nb::arg("csf").none(), nb::arg("brain").none(), nb::arg("status").none(),
        nb::arg("tissue_threshold"), nb::arg("fwhm_mm"), nb::arg("relative"), nb::arg("dims"),
        nb::arg("spacing"), nb::arg("origin"), nb::arg("direction"),
        "The quality indices of a CBF map: (name, value or None, units, description, why not).");
  m.def("region_stats", &stats, nb::arg("map"), nb::arg("labels"), nb::arg("mask").none(),
        nb::arg("percentiles"), nb::arg("include_background"), nb::arg("dims"), nb::arg("spacing"),
        nb::arg("origin"), nb::arg("direction"), nb::arg("backend"), nb::arg("device"),
        nb::arg("threads"));
}

}  // namespace perfq_python
