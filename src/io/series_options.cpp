// perfq cbf's options as the library knows them (include/perfq/io/pipeline.hpp): each sets
// one field of a SeriesRequest, checked against the range the quantification accepts, and
// check_series_request checks the combinations. The command line, the C API and programs
// share them, so that a bad value is refused with the same message everywhere, before any
// file is read.
#include <perfq/detail/kinetic_fit.hpp>
#include <perfq/errors.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/io/text.hpp>

#include <cmath>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace {

[[noreturn]] void refuse(const std::string& message) { throw InvalidArgument(message); }

/// A finite number, or an error naming the option.
double number(const std::string& name, const std::string& text) {
  const std::optional<double> v = parse_number(text);
  if (!v) refuse(name + ": expected a number, got '" + text + "'");
  return *v;
}

/// A whole number, or an error naming the option.
long whole(const std::string& name, const std::string& text) {
  const double v = number(name, text);
  if (!(std::abs(v) < 9e18) || v != static_cast<double>(static_cast<long>(v))) {
    refuse(name + ": expected a whole number, got '" + text + "'");
  }
  return static_cast<long>(v);
}

/// A value in [low, high] (low excluded when `low_open`), or an error naming the option
/// and its unit.
double in_range(const std::string& name, const std::string& text, double low, double high,
                bool low_open, const char* unit) {
  const double v = number(name, text);
  if (!((low_open ? v > low : v >= low) && v <= high)) {
    std::ostringstream m;
    m << name << ": expected a value in " << (low_open ? "(" : "[") << low << ", " << high << "]"
      << unit << ", got " << text;
    refuse(m.str());
  }
  return v;
}

using Setter = std::function<void(SeriesRequest&, const std::string&)>;

struct Option {
  SeriesOption about;
  Setter set;
};

bool same_name(const Option& o, const std::string& name) { return o.about.name == name; }

/// Every option, in the order perfq cbf checks them.
const std::vector<Option>& table() {
  static const std::vector<Option> options = [] {
    std::vector<Option> t;
    auto value = [&](const char* name, Setter set) { t.push_back({{name, true}, std::move(set)}); };
    auto flag = [&](const char* name, Setter set) { t.push_back({{name, false}, std::move(set)}); };
    auto file = [&](const char* name, Setter set) {
      t.push_back({{name, true, true}, std::move(set)});
    };
    file("--mask", [](SeriesRequest& r, const std::string& v) { r.mask_path = v; });
    value("--lambda", [](SeriesRequest& r, const std::string& v) {
      r.blood_brain_partition = in_range("--lambda", v, 0.0, 2.0, true, " ml/g");
    });
    value("--t1b", [](SeriesRequest& r, const std::string& v) {
      r.t1_blood = in_range("--t1b", v, 0.0, 10.0, true, " s");
    });
    value("--hct", [](SeriesRequest& r, const std::string& v) {
      const double hct = number("--hct", v);
      try {
        blood_t1_from_hematocrit(hct);  // its range, and a percentage refused
      } catch (const InvalidArgument& e) {
        refuse(std::string("--hct: ") + e.what());
      }
      r.hematocrit = hct;
    });
    value("--t1t", [](SeriesRequest& r, const std::string& v) {
      r.t1_tissue = in_range("--t1t", v, 0.0, 10.0, true, " s");
    });
    value("--alpha", [](SeriesRequest& r, const std::string& v) {
      r.labeling_efficiency = in_range("--alpha", v, 0.0, 1.0, true, "");
    });
    value("--bs-pulse-efficiency", [](SeriesRequest& r, const std::string& v) {
      r.bs_pulse_efficiency = in_range("--bs-pulse-efficiency", v, 0.0, 1.0, true, "");
    });
    value("--m0-value",
          [](SeriesRequest& r, const std::string& v) { r.m0_value = number("--m0-value", v); });
    value("--m0-scale", [](SeriesRequest& r, const std::string& v) {
      const double scale = number("--m0-scale", v);
      if (!(scale > 0)) refuse("--m0-scale: expected a positive factor");
      r.m0_scale = scale;
    });
    value("--min-m0-fraction", [](SeriesRequest& r, const std::string& v) {
      r.min_m0_fraction = in_range("--min-m0-fraction", v, 0.0, 0.5, false, "");
    });
    value("--bs-pulses", [](SeriesRequest& r, const std::string& v) {
      const long pulses = whole("--bs-pulses", v);
      if (pulses < 0 || pulses > 100) {
        refuse("--bs-pulses: expected a number of pulses in [0, 100]");
      }
      r.bs_pulses = static_cast<int>(pulses);
    });
    value("--m0-smooth", [](SeriesRequest& r, const std::string& v) {
      const double fwhm = number("--m0-smooth", v);
      if (!(fwhm >= 0 && fwhm <= 100)) refuse("--m0-smooth: expected a FWHM in [0, 100] mm");
      r.m0_smooth_fwhm = fwhm;
    });
    value("--ref-tissue", [](SeriesRequest& r, const std::string& v) {
      try {
        r.reference_tissue = parse_reference_tissue(v);
      } catch (const InvalidArgument& e) {
        refuse(std::string("--ref-tissue: ") + e.what());
      }
    });
    file("--ref-mask", [](SeriesRequest& r, const std::string& v) { r.reference_mask = v; });
    // The ranges reference_region_m0 accepts.
    value("--ref-t1", [](SeriesRequest& r, const std::string& v) {
      r.reference.t1 = in_range("--ref-t1", v, 0.0, 10.0, true, " s");
    });
    value("--ref-t2", [](SeriesRequest& r, const std::string& v) {
      r.reference.t2 = in_range("--ref-t2", v, 0.0, 10.0, true, " s");
    });
    value("--ref-partition", [](SeriesRequest& r, const std::string& v) {
      r.reference.partition = in_range("--ref-partition", v, 0.0, 2.0, true, " ml/g");
    });
    value("--t2-blood", [](SeriesRequest& r, const std::string& v) {
      r.blood_t2 = in_range("--t2-blood", v, 0.0, 10.0, true, " s");
    });
    value("--echo-time", [](SeriesRequest& r, const std::string& v) {
      r.echo_time = in_range("--echo-time", v, 0.0, 1.0, false, " s");
    });
    flag("--robust", [](SeriesRequest& r, const std::string&) { r.averaging.robust = true; });
    value("--outlier-threshold", [](SeriesRequest& r, const std::string& v) {
      const double z = number("--outlier-threshold", v);
      if (!(z > 0)) refuse("--outlier-threshold: expected a positive number");
      r.averaging.outlier_threshold = z;
    });
    value("--outliers", [](SeriesRequest& r, const std::string& v) {
      if (v != "score" && v != "scrub") {
        refuse("--outliers: expected score or scrub, got '" + v +
               "' (the mean-based rule is --robust)");
      }
      r.averaging.outliers = parse_outlier_rejection(v);
    });
    flag("--no-sign-check", [](SeriesRequest& r, const std::string&) { r.check_sign = false; });
    value("--model", [](SeriesRequest& r, const std::string& v) {
      try {
        r.kinetic.variant = parse_kinetic_variant(v);
      } catch (const InvalidArgument& e) {
        refuse(std::string("--model: ") + e.what());
      }
    });
    // The ranges fit_kinetic accepts.
    value("--att-min", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.att_min = in_range("--att-min", v, 0.0, kMaxTimingSeconds, false, " s");
    });
    value("--att-max", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.att_max = in_range("--att-max", v, 0.0, kMaxTimingSeconds, true, " s");
    });
    flag("--att-prior", [](SeriesRequest& r, const std::string&) { r.kinetic.att_prior = true; });
    flag("--arterial", [](SeriesRequest& r, const std::string&) { r.kinetic.arterial = true; });
    flag("--spatial", [](SeriesRequest& r, const std::string&) { r.kinetic.spatial = true; });
    flag("--spatial-att", [](SeriesRequest& r, const std::string&) {
      r.kinetic.spatial = true;
      r.kinetic.spatial_att = true;
    });
    value("--att-prior-mean", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.att_prior_mean = number("--att-prior-mean", v);
    });
    value("--att-prior-sd", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.att_prior_sd = in_range("--att-prior-sd", v, 0.0, kMaxTimingSeconds, true, " s");
    });
    value("--aatt-prior-mean", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.arterial_att_prior_mean = number("--aatt-prior-mean", v);
    });
    value("--aatt-prior-sd", [](SeriesRequest& r, const std::string& v) {
      const double sd = number("--aatt-prior-sd", v);
      if (!(sd > 0)) refuse("--aatt-prior-sd: expected a standard deviation > 0 s");
      r.kinetic.arterial_att_prior_sd = sd;
    });
    value("--prior-noise", [](SeriesRequest& r, const std::string& v) {
      try {
        r.kinetic.prior_noise = parse_prior_noise(v);
      } catch (const InvalidArgument& e) {
        refuse(std::string("--prior-noise: ") + e.what());
      }
    });
    value("--max-iterations", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.max_iterations = static_cast<int>(in_range(
          "--max-iterations", std::to_string(whole("--max-iterations", v)), 1.0, 255.0, false, ""));
    });
    value("--tolerance", [](SeriesRequest& r, const std::string& v) {
      const double tolerance = number("--tolerance", v);
      if (!(tolerance > 0.0 && tolerance < 1.0)) {
        refuse("--tolerance: expected a value in (0, 1), got " + v);
      }
      r.kinetic.tolerance = tolerance;
    });
    value("--grid-points", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.grid_points =
          static_cast<int>(in_range("--grid-points", std::to_string(whole("--grid-points", v)), 3.0,
                                    static_cast<double>(detail::kMaxGrid), false, ""));
    });
    value("--max-starts", [](SeriesRequest& r, const std::string& v) {
      r.kinetic.max_starts =
          static_cast<int>(in_range("--max-starts", std::to_string(whole("--max-starts", v)), 1.0,
                                    static_cast<double>(detail::kMaxStarts), false, ""));
    });
    value("--dispersion", [](SeriesRequest& r, const std::string& v) {
      try {
        r.kinetic.dispersion = parse_dispersion(v);
      } catch (const InvalidArgument& e) {
        refuse(std::string("--dispersion: ") + e.what());
      }
    });
    value("--dispersion-s", [](SeriesRequest& r, const std::string& v) {
      const double sharpness = number("--dispersion-s", v);
      if (!(sharpness > 0 && sharpness <= 100)) {
        refuse("--dispersion-s: expected a sharpness in (0, 100] 1/s");
      }
      r.kinetic.dispersion_sharpness = sharpness;
    });
    value("--dispersion-p", [](SeriesRequest& r, const std::string& v) {
      const double peak = number("--dispersion-p", v);
      if (!(peak >= 0 && peak <= 5)) refuse("--dispersion-p: expected a time to peak in [0, 5] s");
      r.kinetic.dispersion_time_to_peak = peak;
    });
    file("--pvc-gm", [](SeriesRequest& r, const std::string& v) { r.pvc_grey = v; });
    file("--pvc-wm", [](SeriesRequest& r, const std::string& v) { r.pvc_white = v; });
    file("--gm-probseg", [](SeriesRequest& r, const std::string& v) { r.gm_probseg = v; });
    file("--wm-probseg", [](SeriesRequest& r, const std::string& v) { r.wm_probseg = v; });
    file("--csf-probseg", [](SeriesRequest& r, const std::string& v) { r.csf_probseg = v; });
    file("--t1t-map", [](SeriesRequest& r, const std::string& v) { r.t1_tissue_map = v; });
    flag("--t1t-pv",
         [](SeriesRequest& r, const std::string&) { r.t1_tissue_partial_volume = true; });
    value("--t1t-wm", [](SeriesRequest& r, const std::string& v) {
      r.t1_white_matter = in_range("--t1t-wm", v, 0.0, 10.0, true, " s");
    });
    value("--tissue-threshold", [](SeriesRequest& r, const std::string& v) {
      const double t = number("--tissue-threshold", v);
      if (!(t > 0.0 && t < 1.0))
        refuse("--tissue-threshold: expected a probability in (0, 1), got " + v);
      r.tissue_threshold = t;
    });
    value("--pvc-kernel", [](SeriesRequest& r, const std::string& v) {
      const long kernel = whole("--pvc-kernel", v);
      if (kernel < 1 || kernel > 99 || kernel % 2 == 0) {
        refuse("--pvc-kernel: expected an odd number of voxels");
      }
      r.pvc.kernel_xy = static_cast<int>(kernel);
    });
    return t;
  }();
  return options;
}

}  // namespace

std::vector<SeriesOption> series_options() {
  std::vector<SeriesOption> out;
  for (const Option& o : table()) out.push_back(o.about);
  return out;
}

void set_series_option(SeriesRequest& request, const std::string& name, const std::string& value) {
  for (const Option& o : table()) {
    if (!same_name(o, name)) continue;
    if (o.about.takes_value && value.empty()) refuse(name + " needs a value");
    if (!o.about.takes_value && !value.empty()) {
      refuse(name + " takes no value, got '" + value + "'");
    }
    o.set(request, value);
    return;
  }
  refuse("unknown option '" + name + "'");
}

SeriesRequest parse_series_options(const std::vector<std::string>& options) {
  // Each option once, then in the table's order: the same checks in the same order
  // whatever the order given.
  std::map<std::string, std::string> given;
  for (std::size_t k = 0; k < options.size(); ++k) {
    const std::string& name = options[k];
    bool known = false, takes_value = false;
    for (const Option& o : table()) {
      if (same_name(o, name)) {
        known = true;
        takes_value = o.about.takes_value;
      }
    }
    if (!known) refuse("unknown option '" + name + "'");
    if (given.count(name)) refuse(name + " given twice");
    if (takes_value && k + 1 >= options.size()) refuse(name + " needs a value");
    given[name] = takes_value ? options[++k] : std::string();
  }
  SeriesRequest request;
  for (const Option& o : table()) {
    const auto it = given.find(o.about.name);
    if (it != given.end()) set_series_option(request, it->first, it->second);
  }
  check_series_request(request);
  return request;
}

void check_series_request(const SeriesRequest& r) {
  // A value other than the default is a value given.
  const KineticOptions kinetic_defaults;
  const bool ref_details = r.reference_mask || r.reference.t1 || r.reference.t2 ||
                           r.reference.partition || r.blood_t2 || r.echo_time;
  if (ref_details && !r.reference_tissue) {
    refuse(
        "--ref-mask, --ref-t1, --ref-t2, --ref-partition, --t2-blood and --echo-time belong "
        "to reference-region calibration: give --ref-tissue");
  }
  if (r.reference_tissue && !r.reference_mask) refuse("--ref-tissue needs --ref-mask FILE");
  if (r.m0_smooth_fwhm > 0 && (r.m0_value || r.reference_tissue)) {
    refuse(
        "--m0-smooth smooths a voxelwise M0 image; --m0-value and --ref-tissue use one M0 "
        "value");
  }
  if (r.reference_tissue && r.m0_value) {
    refuse("--ref-tissue calibrates from the M0 image; --m0-value replaces it");
  }
  const KineticOptions& k = r.kinetic;
  if ((k.arterial_att_prior_mean || k.arterial_att_prior_sd) && !(k.att_prior && k.arterial)) {
    refuse("--aatt-prior-mean and --aatt-prior-sd need --att-prior and --arterial");
  }
  if (!(k.att_min < k.att_max)) {
    std::ostringstream m;
    m << "--att-min (" << k.att_min << " s) must be below --att-max (" << k.att_max << " s)";
    refuse(m.str());
  }
  const bool shape_given = k.dispersion_sharpness != kinetic_defaults.dispersion_sharpness ||
                           k.dispersion_time_to_peak != kinetic_defaults.dispersion_time_to_peak;
  if (shape_given && k.dispersion != Dispersion::Gamma) {
    refuse("--dispersion-s and --dispersion-p need --dispersion gamma");
  }
  if (k.dispersion == Dispersion::Gamma &&
      k.dispersion_sharpness * k.dispersion_time_to_peak > 10) {
    refuse("--dispersion-s × --dispersion-p must be <= 10 (kernel shape 1 + s·p <= 11)");
  }
  if (r.t1_tissue_map && r.t1_tissue_partial_volume) {
    refuse("--t1t-map and --t1t-pv each give the tissue T1 per voxel: give one");
  }
  if (r.t1_tissue_partial_volume && (!r.gm_probseg || !r.wm_probseg)) {
    refuse(
        "--t1t-pv weighs the tissue T1 by the GM and WM maps: give --gm-probseg and "
        "--wm-probseg");
  }
  if (r.t1_white_matter && !r.t1_tissue_partial_volume) refuse("--t1t-wm belongs to --t1t-pv");
  if (r.pvc_grey.has_value() != r.pvc_white.has_value()) {
    refuse("--pvc-gm and --pvc-wm go together");
  }
  const OutlierRejection outliers = r.averaging.outliers;
  if (outliers == OutlierRejection::Score || outliers == OutlierRejection::Scrub) {
    const std::string option = std::string("--outliers ") + to_string(outliers);
    if (r.averaging.robust) refuse(option + " and --robust are two outlier rules: give one");
    std::string missing;
    for (const auto& [name, path] :
         {std::pair<const char*, const std::optional<std::string>*>{"--gm-probseg", &r.gm_probseg},
          {"--wm-probseg", &r.wm_probseg},
          {"--csf-probseg", &r.csf_probseg}}) {
      if (!*path) missing += (missing.empty() ? "" : ", ") + std::string(name);
    }
    if (!missing.empty()) {
      refuse(option +
             " needs the GM, WM and CSF probability maps on the series' grid "
             "(--gm-probseg, --wm-probseg and --csf-probseg FILE); missing: " +
             missing);
    }
  }
}

}  // namespace io
PERFQ_NAMESPACE_END
