// perfq._perfq: the extension module under the Python package perfq (python/perfq/). It
// binds the library's calls as they are; names, defaults, option handling and nibabel
// interop live in the Python layer. Every computation releases the GIL.
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/series_config.hpp>
#include <perfq/phantom.hpp>
#include <perfq/version.hpp>

#include "arrays.hpp"
#include "blocks.hpp"

#include <nanobind/nanobind.h>
#include <nanobind/stl/array.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace nb = nanobind;
using namespace perfq_python;

namespace {

/// perfq's exceptions as the Python classes of perfq/_errors.py (InputError keeps the file
/// and the field).
void translate(const std::exception_ptr& p, void*) {
  auto raise = [](const char* name, const std::exception& e) -> nb::object {
    nb::object type = nb::module_::import_("perfq._errors").attr(name);
    nb::object error = type(e.what());
    PyErr_SetObject(type.ptr(), error.ptr());
    return error;
  };
  try {
    std::rethrow_exception(p);
  } catch (const perfq::InputError& e) {
    nb::object type = nb::module_::import_("perfq._errors").attr("InputError");
    nb::object error = type(e.what(), e.file(), e.field());
    PyErr_SetObject(type.ptr(), error.ptr());
  } catch (const perfq::InvalidArgument& e) {
    raise("InvalidArgumentError", e);
  } catch (const perfq::BackendError& e) {
    raise("BackendError", e);
  } catch (const perfq::Error& e) {  // not the above: a file that could not be written
    raise("OutputError", e);
  }
}

/// The grid of an image as (dims, spacing, origin, direction), perfq's LPS convention.
nb::tuple grid_of(const perfq::Geometry& g) {
  return nb::make_tuple(g.dims, g.spacing, g.origin, g.direction);
}

template <class T>
nb::object optional_array(const std::optional<perfq::Volume<T>>& image, nb::handle owner) {
  if (!image) return nb::none();
  return array_of(*image, owner);
}

perfq::io::SeriesMaps quantify(const std::string& path, const std::vector<std::string>& options,
                               const std::string& backend, int device, int threads,
                               const std::string& config) {
  // With a configuration file: its matching entries' options, then `options`, which beat them.
  perfq::io::SeriesRequest request =
      config.empty() ? perfq::io::parse_series_options(options)
                     : perfq::io::configure_series(perfq::io::read_series_config(config),
                                                   perfq::io::series_facts(path), options)
                           .request;
  request.execution = execution(backend, device, threads);
  nb::gil_scoped_release unlocked;
  return perfq::io::quantify_series(path, request);
}

void bind_series(nb::module_& m) {
  using perfq::io::SeriesMaps;
  nb::class_<SeriesMaps>(m, "SeriesMaps", "The maps of one quantified ASL-BIDS series.")
      .def_ro("asl_path", &SeriesMaps::asl_path)
      .def_ro("prefix", &SeriesMaps::prefix)
      .def_ro("delays", &SeriesMaps::delays)
      .def_ro("time_encoding", &SeriesMaps::time_encoding)
      .def_prop_ro("backend", [](const SeriesMaps& s) { return perfq::to_string(s.backend); })
      .def_prop_ro("labeling_type",
                   [](const SeriesMaps& s) { return perfq::to_string(s.labeling_type); })
      .def_ro("median_cbf", &SeriesMaps::median_cbf)
      .def_ro("relative_cbf", &SeriesMaps::relative_cbf)
      .def_ro("check_region", &SeriesMaps::check_region)
      .def_ro("median_att", &SeriesMaps::median_att)
      .def_ro("notes", &SeriesMaps::notes)
      .def_ro("warnings", &SeriesMaps::warnings)
      .def_ro("provenance_json", &SeriesMaps::provenance_json)
      .def_ro("quality_tsv", &SeriesMaps::quality_tsv)
      .def_ro("quality_json", &SeriesMaps::quality_json)
      .def_prop_ro("grid", [](const SeriesMaps& s) { return grid_of(s.cbf.geometry()); })
      .def_prop_ro(
          "cbf",
          [](nb::handle self) { return array_of(nb::cast<const SeriesMaps&>(self).cbf, self); })
      .def_prop_ro(
          "status",
          [](nb::handle self) { return array_of(nb::cast<const SeriesMaps&>(self).status, self); })
      .def(
          "optional_map",
          [](nb::handle self, const std::string& name) -> nb::object {
            const SeriesMaps& s = nb::cast<const SeriesMaps&>(self);
            if (name == "att") return optional_array(s.att, self);
            if (name == "cbf_se") return optional_array(s.cbf_se, self);
            if (name == "att_se") return optional_array(s.att_se, self);
            if (name == "abv") return optional_array(s.abv, self);
            if (name == "abv_se") return optional_array(s.abv_se, self);
            if (name == "arterial_att") return optional_array(s.arterial_att, self);
            if (name == "cbf_gm") return optional_array(s.cbf_grey, self);
            if (name == "cbf_wm") return optional_array(s.cbf_white, self);
            if (name == "scanner_cbf") return optional_array(s.scanner_cbf, self);
            throw perfq::InvalidArgument("no map named '" + name + "'");
          },
          "A map that not every series has (None when this one has not).")
      .def(
          "write",
          [](const SeriesMaps& s, const std::string& out_dir, bool overwrite, bool compressed) {
            nb::gil_scoped_release unlocked;
            perfq::io::SeriesOutputOptions options;
            options.compressed = compressed;
            return perfq::io::write_series_outputs(s, out_dir, overwrite, options);
          },
          nb::arg("out_dir"), nb::arg("overwrite") = false, nb::arg("compressed") = true,
          "Writes the files perfq cbf writes (.nii.gz, or .nii when not compressed); returns "
          "their paths.");

  m.def("quantify_series", &quantify, nb::arg("path"), nb::arg("options"), nb::arg("backend"),
        nb::arg("device"), nb::arg("threads"), nb::arg("config") = "",
        "The pipeline on one ASL-BIDS series; options as perfq cbf's arguments, beating those "
        "of the configuration file `config` (when given) that match the series.");
  m.def(
      "series_options",
      [] {
        std::vector<std::pair<std::string, bool>> out;
        for (const auto& o : perfq::io::series_options()) out.emplace_back(o.name, o.takes_value);
        return out;
      },
      "perfq cbf's options the pipeline takes: (name, takes a value).");
}

void bind_phantom(nb::module_& m) {
  m.def(
      "write_phantom",
      [](const std::string& root, const std::string& subject, const std::vector<double>& delays,
         std::size_t repeats, double snr, std::uint64_t seed, bool pasl, std::size_t time_encoded,
         const std::array<std::size_t, 3>& dims, double voxel_mm) {
        perfq::PhantomOptions o;
        o.delays = delays;
        o.repeats = repeats;
        o.snr = snr;
        o.seed = seed;
        o.pasl = pasl;
        o.time_encoded = time_encoded;
        o.dims = dims;
        o.voxel_mm = voxel_mm;
        nb::gil_scoped_release unlocked;
        return perfq::io::write_phantom_bids(perfq::make_phantom(o), root, subject);
      },
      nb::arg("root"), nb::arg("subject"), nb::arg("delays"), nb::arg("repeats"), nb::arg("snr"),
      nb::arg("seed"), nb::arg("pasl"), nb::arg("time_encoded"), nb::arg("dims"),
      nb::arg("voxel_mm"),
      "Writes the digital phantom as an ASL-BIDS dataset; returns the ASL series' path.");
}

}  // namespace

NB_MODULE(_perfq, m) {
  m.doc() = "perfq's C++ library (the Python API is the package perfq).";
  m.attr("__version__") = PERFQ_VERSION_STRING;
  m.def("cuda_available", [] { return perfq::cuda_available(); });
  m.def(
      "_buffer_address",
      [](const InArray<float>& array) { return reinterpret_cast<std::uintptr_t>(array.data()); },
      nb::arg("array").noconvert(),
      "The address of the voxels an image argument reaches the library with (for tests).");
  nb::register_exception_translator(translate);
  bind_series(m);
  bind_phantom(m);
  bind_blocks(m);
  bind_transforms(m);
}
