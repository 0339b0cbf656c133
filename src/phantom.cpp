// The synthetic brain phantom (see include/perfq/phantom.hpp).
#include <perfq/errors.hpp>
#include <perfq/phantom.hpp>

#include <perfq/detail/kinetic.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>

PERFQ_NAMESPACE_BEGIN

namespace {

constexpr double kPi = 3.14159265358979323846;
// Territory borders: angle (around the vertical axis, from the lateral direction towards
// posterior) of the ACA/MCA and MCA/PCA borders, in the ellipsoid's normalised coordinates.
constexpr double kAcaMcaAngle = -0.30 * kPi;
constexpr double kMcaPcaAngle = 0.30 * kPi;
constexpr double kBorderWidthMm = 8.0;  // σ of the watershed bump

struct TissueValues {
  double cbf;  // ml/100 g/min away from borders
  double att;  // s away from borders
  double m0;   // scanner units
};
constexpr TissueValues kGm{60.0, 0.8, 1200.0};
constexpr TissueValues kWm{22.0, 1.1, 1000.0};
constexpr double kCsfM0 = 2000.0;
constexpr double kStaticFraction = 0.85;  // control signal relative to M0

/// Distance (mm) from point p to the ray from the origin along (ux, uy) (unit vector).
double distance_to_ray(double px, double py, double ux, double uy) {
  const double t = px * ux + py * uy;
  if (t <= 0.0) return std::hypot(px, py);
  return std::abs(px * uy - py * ux);
}

/// White-matter lesions: spheres around random white-matter centres, two in three inside the
/// designed border zones. Their own random stream keeps the signal noise unchanged.
void add_lesions(Phantom& p, const PhantomOptions& o) {
  if (o.lesions == 0) return;
  const Geometry& g = p.tissue.geometry();
  std::vector<std::size_t> in_zone, elsewhere;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (p.tissue[i] != kWhiteMatter) continue;
    (p.border_zone[i] ? in_zone : elsewhere).push_back(i);
  }
  if (in_zone.empty() && elsewhere.empty()) return;
  std::mt19937_64 rng(o.seed ^ 0x6c6573696f6e73ULL);  // "lesions"
  const double radius = std::max(4.5, 1.5 * o.voxel_mm);
  const auto reach = static_cast<std::ptrdiff_t>(std::ceil(radius / o.voxel_mm));
  for (std::size_t k = 0; k < o.lesions; ++k) {
    const bool zone = (k % 3 != 2 && !in_zone.empty()) || elsewhere.empty();
    const std::vector<std::size_t>& pool = zone ? in_zone : elsewhere;
    const std::size_t c = pool[std::uniform_int_distribution<std::size_t>(0, pool.size() - 1)(rng)];
    const auto cx = static_cast<std::ptrdiff_t>(c % g.dims[0]);
    const auto cy = static_cast<std::ptrdiff_t>((c / g.dims[0]) % g.dims[1]);
    const auto cz = static_cast<std::ptrdiff_t>(c / (g.dims[0] * g.dims[1]));
    for (std::ptrdiff_t dz = -reach; dz <= reach; ++dz) {
      for (std::ptrdiff_t dy = -reach; dy <= reach; ++dy) {
        for (std::ptrdiff_t dx = -reach; dx <= reach; ++dx) {
          const std::ptrdiff_t x = cx + dx, y = cy + dy, z = cz + dz;
          if (x < 0 || y < 0 || z < 0 || x >= static_cast<std::ptrdiff_t>(g.dims[0]) ||
              y >= static_cast<std::ptrdiff_t>(g.dims[1]) ||
              z >= static_cast<std::ptrdiff_t>(g.dims[2])) {
            continue;
          }
          if (std::hypot(dx * o.voxel_mm, dy * o.voxel_mm, dz * o.voxel_mm) > radius) continue;
          const std::size_t i = g.index(x, y, z);
          if (p.tissue[i] == kWhiteMatter) p.lesions[i] = 1;
        }
      }
    }
  }
}

/// The phantom's time encoding, options checked.
TimeEncoding time_encoding_of(const PhantomOptions& o) {
  if (o.pasl) throw InvalidArgument("phantom: time encoding is for PCASL, not PASL");
  if (o.delays.size() != 1) {
    throw InvalidArgument(
        "phantom: a time-encoded series takes one delay (after the last "
        "sub-bolus), got " +
        std::to_string(o.delays.size()));
  }
  TimeEncoding te;
  te.matrix = encoding_matrix(o.time_encoded_type, o.time_encoded);
  te.matrix_source = std::string(to_string(o.time_encoded_type)) + " " +
                     std::to_string(o.time_encoded) + " (generated)";
  te.sub_bolus_duration = o.sub_bolus_durations;
  if (te.sub_bolus_duration.empty()) {
    // Equal sub-boli making a 2.8 s labeling train (0.4 s each for N = 8).
    const std::size_t k = te.matrix.sub_boli();
    te.sub_bolus_duration.assign(k, 2.8 / static_cast<double>(k));
  }
  if (te.sub_bolus_duration.size() != te.matrix.sub_boli()) {
    throw InvalidArgument("phantom: " + std::to_string(te.sub_bolus_duration.size()) +
                          " sub-bolus durations for " + std::to_string(te.matrix.sub_boli()) +
                          " sub-boli (time encoding " + std::to_string(o.time_encoded) + ")");
  }
  te.sub_bolus_pld = sub_bolus_delays(te.sub_bolus_duration, o.delays.front());
  return te;
}

}  // namespace

std::array<std::size_t, 3> phantom_dims(double voxel_mm) {
  if (!(std::isfinite(voxel_mm) && voxel_mm > 0.0)) {
    throw InvalidArgument("phantom: voxel size must be finite and > 0");
  }
  const PhantomOptions standard;
  std::array<std::size_t, 3> dims{};
  for (int a = 0; a < 3; ++a) {
    const double extent = static_cast<double>(standard.dims[a]) * standard.voxel_mm;
    const double count = std::round(extent / voxel_mm);
    if (count < 16.0) {
      throw InvalidArgument("phantom: a voxel size of " + std::to_string(voxel_mm) +
                            " mm leaves fewer than 16 voxels along an axis");
    }
    if (count > 32767.0) throw InvalidArgument("phantom: voxel size too small for NIfTI");
    dims[a] = static_cast<std::size_t>(count);
  }
  return dims;
}

Phantom make_phantom(const PhantomOptions& o) {
  if (o.delays.empty()) throw InvalidArgument("phantom: at least one delay is needed");
  for (double d : o.delays) {
    if (!(std::isfinite(d) && d > 0.0)) throw InvalidArgument("phantom: delays must be > 0");
  }
  if (!(o.labeling_duration > 0.0) || !(o.bolus_cutoff > 0.0)) {
    throw InvalidArgument("phantom: labeling duration and bolus cut-off must be > 0");
  }
  if (!(o.snr >= 0.0)) throw InvalidArgument("phantom: SNR must be >= 0 (0 = noise-free)");
  if (o.repeats == 0) throw InvalidArgument("phantom: at least one repeat is needed");
  if (!(o.voxel_mm > 0.0)) throw InvalidArgument("phantom: voxel size must be > 0");
  for (std::size_t d : o.dims) {
    if (d < 16) throw InvalidArgument("phantom: the grid needs at least 16 voxels per axis");
  }

  Geometry g;
  g.dims = o.dims;
  g.spacing = {o.voxel_mm, o.voxel_mm, o.voxel_mm};
  for (int a = 0; a < 3; ++a) g.origin[a] = -0.5 * (o.dims[a] - 1) * o.voxel_mm;

  Phantom p;
  p.physiology = Physiology::at_field(3.0);
  p.cbf = Volume<float>(g);
  p.att = Volume<float>(g);
  p.m0 = Volume<float>(g);
  p.tissue = Volume<std::uint8_t>(g);
  p.brain = Mask(g);
  p.territories = Volume<std::int32_t>(g);
  p.border_distance = Volume<float>(g);
  p.ventricles = Mask(g);
  p.border_zone = Mask(g);
  p.lesions = Mask(g);

  // Brain ellipsoid and its parts, in mm from the grid centre.
  const double a = 0.39 * o.dims[0] * o.voxel_mm;
  const double b = 0.39 * o.dims[1] * o.voxel_mm;
  const double c = 0.38 * o.dims[2] * o.voxel_mm;
  const double mean_axis = (a + b + c) / 3.0;
  const double cortex = std::max(4.5, 1.5 * o.voxel_mm) / mean_axis;
  const double csf_shell = std::max(4.0, 1.0 * o.voxel_mm) / mean_axis;
  // Border rays in mm (the angle is defined in normalised coordinates).
  const double aca_x = a * std::cos(kAcaMcaAngle), aca_y = b * std::sin(kAcaMcaAngle);
  const double pca_x = a * std::cos(kMcaPcaAngle), pca_y = b * std::sin(kMcaPcaAngle);
  const double aca_n = std::hypot(aca_x, aca_y), pca_n = std::hypot(pca_x, pca_y);

  for (std::size_t z = 0; z < o.dims[2]; ++z) {
    for (std::size_t y = 0; y < o.dims[1]; ++y) {
      for (std::size_t x = 0; x < o.dims[0]; ++x) {
        const std::size_t i = g.index(x, y, z);
        const double px = g.origin[0] + x * o.voxel_mm;
        const double py = g.origin[1] + y * o.voxel_mm;  // + is posterior (LPS)
        const double pz = g.origin[2] + z * o.voxel_mm;
        const double r = std::sqrt((px / a) * (px / a) + (py / b) * (py / b) + (pz / c) * (pz / c));
        // Lateral ventricles: two ellipsoids either side of the midline.
        const double vx = (std::abs(px) - 0.12 * a) / (0.07 * a);
        const double vy = (py + 0.05 * b) / (0.35 * b);
        const double vz = (pz - 0.10 * c) / (0.15 * c);
        const bool ventricle = vx * vx + vy * vy + vz * vz <= 1.0;

        std::uint8_t tissue = kBackground;
        if (r <= 1.0 - cortex) {
          tissue = ventricle ? kCsf : kWhiteMatter;
          p.ventricles[i] = ventricle ? 1 : 0;
        } else if (r <= 1.0) {
          tissue = kGreyMatter;
        } else if (r <= 1.0 + csf_shell) {
          tissue = kCsf;
        }
        p.tissue[i] = tissue;
        if (tissue == kCsf) p.m0[i] = static_cast<float>(kCsfM0);
        if (tissue != kGreyMatter && tissue != kWhiteMatter) continue;

        const double lateral = std::abs(px);
        const double angle = std::atan2(py / b, lateral / a);
        const std::int32_t territory = angle < kAcaMcaAngle ? 1 : (angle > kMcaPcaAngle ? 3 : 2);
        const double d = std::min(distance_to_ray(lateral, py, aca_x / aca_n, aca_y / aca_n),
                                  distance_to_ray(lateral, py, pca_x / pca_n, pca_y / pca_n));
        const double bump = std::exp(-d * d / (2.0 * kBorderWidthMm * kBorderWidthMm));
        const TissueValues& t = tissue == kGreyMatter ? kGm : kWm;
        p.brain[i] = 1;
        p.territories[i] = territory;
        p.border_distance[i] = static_cast<float>(d);
        p.border_zone[i] = d <= kPhantomBorderZoneMm ? 1 : 0;
        p.cbf[i] = static_cast<float>(t.cbf * (1.0 - 0.3 * bump));
        p.att[i] = static_cast<float>(t.att + 0.5 * bump);
        p.m0[i] = static_cast<float>(t.m0);
      }
    }
  }

  add_lesions(p, o);

  // Acquisition: for each delay, `repeats` control/label pairs; time-encoded, `repeats`
  // blocks of N encoded volumes.
  AslProtocol& protocol = p.protocol;
  protocol.labeling_type = o.pasl ? LabelingType::Pasl : LabelingType::Pcasl;
  if (o.pasl) {
    protocol.bolus_cutoff_delay = o.bolus_cutoff;
  } else {
    protocol.labeling_duration = {o.labeling_duration};
  }
  protocol.m0_type = M0Type::Separate;
  protocol.m0_repetition_time = 6.0;
  protocol.magnetic_field_strength = 3.0;
  const std::size_t n = g.voxel_count();
  const double alpha =
      o.pasl ? p.physiology.labeling_efficiency_pasl : p.physiology.labeling_efficiency_pcasl;
  const double lambda = p.physiology.blood_brain_partition;
  const double t1b = p.physiology.t1_blood;

  // The ΔM images to synthesise: one per delay, or one per sub-bolus (labeling order), each
  // as (time from the start of its labeling to the readout, its duration).
  std::vector<std::pair<double, double>> timings;
  if (o.time_encoded > 0) {
    p.time_encoding = time_encoding_of(o);
    p.time_encoded_type = o.time_encoded_type;
    const TimeEncoding& te = *p.time_encoding;
    for (std::size_t k = 0; k < te.sub_bolus_duration.size(); ++k) {
      timings.emplace_back(te.sub_bolus_duration[k] + te.sub_bolus_pld[k],
                           te.sub_bolus_duration[k]);
    }
    double total = 0.0;
    for (double d : te.sub_bolus_duration) total += d;
    protocol.labeling_duration = {total};
  } else {
    for (double d : o.delays) {
      timings.emplace_back(o.pasl ? d : o.labeling_duration + d,
                           o.pasl ? o.bolus_cutoff : o.labeling_duration);
    }
  }

  std::vector<std::vector<float>> delta_m(timings.size(), std::vector<float>(n, 0.0f));
  double gm_sum = 0.0;
  std::size_t gm_count = 0;
  for (std::size_t k = 0; k < timings.size(); ++k) {
    for (std::size_t i = 0; i < n; ++i) {
      if (p.cbf[i] <= 0.0f) continue;
      detail::KineticInputs<double> in{};
      in.t = timings[k].first;
      in.tau = timings[k].second;
      in.att = p.att[i];
      in.f = p.cbf[i] / 6000.0;
      in.alpha = alpha;
      in.m0b = p.m0[i] / lambda;
      in.t1_blood = t1b;
      in.t1_app = t1b;
      const double s = o.pasl ? detail::pasl_signal(in) : detail::pcasl_signal(in);
      delta_m[k][i] = static_cast<float>(s);
      if (k == 0 && p.tissue[i] == kGreyMatter) {
        gm_sum += s;
        ++gm_count;
      }
    }
  }
  const double pair_sigma = o.snr > 0.0 && gm_count > 0 ? gm_sum / gm_count / o.snr : 0.0;
  const double image_sigma = pair_sigma / std::sqrt(2.0);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> noise(0.0, 1.0);

  if (p.time_encoding) {
    const EncodingMatrix& m = p.time_encoding->matrix;
    p.asl = Series<float>(g, o.repeats * m.cycles);
    float* out = p.asl.data();
    for (std::size_t r = 0; r < o.repeats; ++r) {
      for (std::size_t c = 0; c < m.cycles; ++c, out += n) {
        bool all_control = true;
        for (std::size_t k = 0; k < m.sub_boli(); ++k) all_control = all_control && m.at(c, k) > 0;
        for (std::size_t i = 0; i < n; ++i) {
          double value = kStaticFraction * p.m0[i];
          for (std::size_t k = 0; k < m.sub_boli(); ++k) {
            if (m.at(c, k) < 0) value -= delta_m[k][i];
          }
          if (image_sigma > 0.0) value += image_sigma * noise(rng);
          out[i] = static_cast<float>(value);
        }
        // The volume type of an encoded volume is not used; the all-control cycle is marked.
        p.context.push_back(all_control ? VolumeType::Control : VolumeType::Label);
        protocol.post_labeling_delay.push_back(o.delays.front());
      }
    }
    return p;
  }

  const std::size_t volumes = 2 * o.repeats * o.delays.size();
  p.asl = Series<float>(g, volumes);
  std::size_t v = 0;
  for (std::size_t k = 0; k < o.delays.size(); ++k) {
    for (std::size_t r = 0; r < o.repeats; ++r) {
      float* control = p.asl.data() + v * n;
      float* label = control + n;
      for (std::size_t i = 0; i < n; ++i) {
        const double still = kStaticFraction * p.m0[i];
        double cn = 0.0, ln = 0.0;
        if (image_sigma > 0.0) {
          cn = image_sigma * noise(rng);
          ln = image_sigma * noise(rng);
        }
        control[i] = static_cast<float>(still + cn);
        label[i] = static_cast<float>(still - delta_m[k][i] + ln);
      }
      p.context.push_back(VolumeType::Control);
      p.context.push_back(VolumeType::Label);
      protocol.post_labeling_delay.push_back(o.delays[k]);
      protocol.post_labeling_delay.push_back(o.delays[k]);
      v += 2;
    }
  }
  return p;
}

PERFQ_NAMESPACE_END
