// The report's registration section (perfq report): when the series was registered to its
// T1w (perfq register, as perfq bids --anat-derivatives does), the metric and parameters
// from the transform's sidecar and a checkerboard of the T1w and the registered image.
#pragma once

#include "cli_util.hpp"
#include "registration_figure.hpp"
#include "report_figures.hpp"
#include "report_html.hpp"
#include "report_stats.hpp"

#include <perfq/errors.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/transform.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace perfq_cli {

using report::Cell;
using report::find_key;
using report::html_escape;
using report::Json;
using report::json_text;
using report::read_json;

/// What the section shows; `figure` is empty when the images could not be read (`note` says
/// why).
struct RegistrationSection {
  fs::path transform;                   ///< the transform file
  fs::path sidecar;                     ///< its sidecar
  std::vector<std::vector<Cell>> rows;  ///< the table
  std::string figure;                   ///< the checkerboard's file name in figures/, or empty
  int width = 0, height = 0;
  std::string note;  ///< why there is no figure
};

/// The section of series `prefix` in `folder`, or nothing when it has no
/// `<prefix>_from-asl_to-T1w_mode-image_xfm` (+ .json); the figure is staged in `figures`.
inline std::optional<RegistrationSection> registration_section(const fs::path& folder,
                                                               const std::string& prefix,
                                                               StagedOutputs& figures) {
  const std::string stem = prefix + "_from-asl_to-T1w_mode-image_xfm";
  RegistrationSection s;
  s.sidecar = folder / (stem + ".json");
  std::error_code ec;
  if (!fs::is_regular_file(s.sidecar, ec)) return std::nullopt;
  for (const char* ext : {".txt", ".h5", ".mat", ".tfm"}) {
    if (fs::is_regular_file(folder / (stem + ext), ec)) s.transform = folder / (stem + ext);
  }
  if (s.transform.empty()) return std::nullopt;
  const Json j = read_json(s.sidecar);
  auto number = [&](const char* key) -> std::optional<double> {
    const Json* v = find_key(j, {key});
    if (v && v->is_number()) return v->get<double>();
    return std::nullopt;
  };
  auto triple = [&](const char* key, const char* units) -> std::string {
    const Json* v = find_key(j, {key});
    if (!v || !v->is_array() || v->size() != 3) return "n/a";
    std::string text;
    for (const auto& x : *v) {
      text += (text.empty() ? "" : ", ") +
              (x.is_number() ? report::format_number(x.get<double>()) : std::string("?"));
    }
    return text + " " + units;
  };
  auto row = [&](const std::string& label, const std::string& value_html, bool numeric = true) {
    s.rows.push_back({{html_escape(label)}, {value_html, numeric}});
  };
  const std::string metric = find_key(j, {"Metric"}) ? json_text(j["Metric"]) : "metric";
  const auto initial = number("InitialMetric"), final_value = number("FinalMetric");
  if (final_value) {
    row(metric + " (more negative: better aligned)",
        (initial ? report::format_number(*initial) + " &rarr; " : std::string()) +
            report::format_number(*final_value));
  }
  row("Rotation about x, y, z", triple("AnglesDegrees", "&deg;"));
  row("Translation (LPS)", triple("TranslationMm", "mm"));
  if (const Json* it = find_key(j, {"Iterations"}); it && it->is_array()) {
    std::string text;
    for (const auto& x : *it) text += (text.empty() ? "" : " + ") + json_text(x);
    row("Iterations per level", html_escape(text));
  }
  const Json* moving_path = find_key(j, {"MovingImage"});
  const Json* fixed_path = find_key(j, {"FixedImage"});
  if (!moving_path || !fixed_path || !moving_path->is_string() || !fixed_path->is_string()) {
    s.note = "the sidecar names no MovingImage and FixedImage";
    return s;
  }
  row("Registered image", html_escape(moving_path->get<std::string>()), false);
  row("T1w", html_escape(fixed_path->get<std::string>()), false);
  try {
    std::optional<long> volume;
    if (const Json* v = find_key(j, {"MovingVolume"}); v && v->is_number_integer()) {
      volume = v->get<long>();
    }
    const std::string m = moving_path->get<std::string>();
    const perfq::Volume<float> moving = registration_volume(perfq::io::read_nifti(m), volume, m);
    const perfq::Image<float> fixed = perfq::io::read_nifti_3d(fixed_path->get<std::string>());
    const perfq::io::Transform t = perfq::io::read_transform(s.transform.string());
    const report::Canvas canvas = registration_checkerboard(moving.view(), fixed.view(), t);
    s.figure = prefix + "_desc-registration_checkerboard.png";
    report::write_png(figures.stage(s.figure), canvas);
    s.width = canvas.width();
    s.height = canvas.height();
  } catch (const perfq::Error& e) {
    s.note = std::string("no figure: ") + e.what();
  }
  return s;
}

}  // namespace perfq_cli
