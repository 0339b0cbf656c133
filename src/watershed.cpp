// Border-zone (watershed) masks: from territory atlases, from timing maps, combined and split,
// and periventricular caps. See include/perfq/watershed.hpp.
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/watershed.hpp>

#include <perfq/detail/watershed.hpp>

#include "backend/masks.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "grid_checks.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

static_assert(kPairCodeBase == detail::kPairBase, "one pair code for the API and the kernels");

namespace {

void check_one_volume(const Geometry& g, std::size_t volumes, bool empty, const char* what) {
  if (empty || g.voxel_count() == 0) throw InvalidArgument(std::string(what) + " is empty");
  if (volumes != 1) {
    throw InvalidArgument(std::string(what) + " must be one volume, got " +
                          std::to_string(volumes));
  }
}

template <class T>
void check_image(View<const T> image, const char* what) {
  check_one_volume(image.geometry, image.volumes, image.empty(), what);
}

template <class T>
void check_same_grid(const Geometry& reference, View<const T> other, const char* reference_name,
                     const char* what) {
  checks::one_volume_on_grid(other, reference, what, reference_name);
}

std::string voxel_text(const Geometry& g, std::size_t i) {
  std::ostringstream s;
  s << "(" << i % g.dims[0] << ", " << (i / g.dims[0]) % g.dims[1] << ", "
    << i / (g.dims[0] * g.dims[1]) << ")";
  return s.str();
}

/// Refuses non-finite values of `map` inside `mask` (everywhere without one), naming how many
/// and the first.
void check_finite(const float* map, const Geometry& g, std::size_t count, const std::uint8_t* mask,
                  const char* what) {
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if ((mask == nullptr || mask[i % g.voxel_count()] != 0) && !std::isfinite(map[i])) {
      if (bad++ == 0) first = i;
    }
  }
  if (bad > 0) {
    throw InvalidArgument(std::string(what) + " has " + std::to_string(bad) +
                          " NaN or infinite value(s) where it is used, the first at voxel " +
                          voxel_text(g, first % g.voxel_count()));
  }
}

}  // namespace

// ---- territory atlases ------------------------------------------------------------------

Volume<std::int32_t> group_territories(View<const std::int32_t> labels,
                                       const TerritoryGroups& groups) {
  check_image(labels, "the territory image");
  for (const auto& [label, group] : groups) {
    if (group < 0) {
      throw InvalidArgument("territory grouping: label " + std::to_string(label) +
                            " has a negative group " + std::to_string(group));
    }
  }
  Volume<std::int32_t> out(labels.geometry);
  std::set<std::int32_t> seen;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::int32_t label = labels.data[i];
    if (label == 0) continue;
    const auto it = groups.find(label);
    if (it == groups.end()) {
      throw InvalidArgument("territory grouping: label " + std::to_string(label) + " (voxel " +
                            voxel_text(labels.geometry, i) + ") has no group");
    }
    seen.insert(label);
    out[i] = it->second;
  }
  for (const auto& [label, group] : groups) {
    if (label != 0 && seen.count(label) == 0) {
      throw InvalidArgument("territory grouping: territory " + std::to_string(label) +
                            " is empty (no voxel has this label)");
    }
  }
  return out;
}

namespace {

/// The territories of a label image (ascending) and their bounding boxes, with the checks on
/// labels: 1 … 999, at least two, each with a voxel in the brain.
struct TerritoryScan {
  std::vector<std::int32_t> labels;
  std::vector<masks::Box> boxes;  // by label
};

TerritoryScan scan_territories(View<const std::int32_t> territories, const std::uint8_t* brain) {
  const Geometry& g = territories.geometry;
  std::vector<std::uint8_t> present(kPairCodeBase, 0), in_brain(kPairCodeBase, 0);
  // Bounding boxes as [low, high] corners per label.
  std::vector<std::array<std::size_t, 6>> corners(kPairCodeBase,
                                                  {g.dims[0], g.dims[1], g.dims[2], 0, 0, 0});
  std::size_t i = 0;
  for (std::size_t z = 0; z < g.dims[2]; ++z) {
    for (std::size_t y = 0; y < g.dims[1]; ++y) {
      for (std::size_t x = 0; x < g.dims[0]; ++x, ++i) {
        const std::int32_t label = territories.data[i];
        if (label == 0) continue;
        if (label < 0 || label >= kPairCodeBase) {
          throw InvalidArgument("border zones: territory label " + std::to_string(label) +
                                " at voxel " + voxel_text(g, i) + " is outside 0 … " +
                                std::to_string(kPairCodeBase - 1) + " (group the labels first)");
        }
        present[label] = 1;
        if (brain == nullptr || brain[i] != 0) in_brain[label] = 1;
        auto& c = corners[label];
        c[0] = std::min(c[0], x);
        c[1] = std::min(c[1], y);
        c[2] = std::min(c[2], z);
        c[3] = std::max(c[3], x);
        c[4] = std::max(c[4], y);
        c[5] = std::max(c[5], z);
      }
    }
  }
  TerritoryScan scan;
  scan.boxes.resize(kPairCodeBase);
  for (std::int32_t t = 1; t < kPairCodeBase; ++t) {
    if (!present[t]) continue;
    scan.labels.push_back(t);
    for (int a = 0; a < 3; ++a) {
      scan.boxes[t].begin[a] = corners[t][a];
      scan.boxes[t].size[a] = corners[t][a + 3] - corners[t][a] + 1;
    }
  }
  if (scan.labels.size() < 2) {
    throw InvalidArgument(scan.labels.empty()
                              ? "border zones: the territory image has no territory (all 0)"
                              : "border zones need at least two territories; the image has "
                                "only territory " +
                                    std::to_string(scan.labels.front()));
  }
  for (std::int32_t t : scan.labels) {
    if (!in_brain[t]) {
      throw InvalidArgument("border zones: territory " + std::to_string(t) +
                            " has no voxel inside the brain mask (is the atlas registered?)");
    }
  }
  return scan;
}

/// The CPU path: one transform per territory over its bounding box grown by the radius
/// (farther voxels are out of reach and keep +inf for it), folded into the two nearest.
void cpu_border_zones(View<const std::int32_t> territories, const std::uint8_t* brain,
                      TerritoryScan& scan, const masks::EdtGrid& grid, double radius,
                      double radius_squared, int threads, std::uint8_t* mask, std::int32_t* pairs) {
  const Geometry& g = territories.geometry;
  const std::size_t count = g.voxel_count();
  const double inf = std::numeric_limits<double>::infinity();
  const auto first = masks::uninitialized<double>(count);
  const auto second = masks::uninitialized<double>(count);
  const auto first_label = masks::uninitialized<std::int32_t>(count);
  const auto second_label = masks::uninitialized<std::int32_t>(count);
  cpu::parallel_for(count, threads, [&](std::size_t i) {
    first[i] = second[i] = inf;
    first_label[i] = second_label[i] = 0;
  });
  std::array<std::size_t, 3> reach{};
  for (int a = 0; a < 3; ++a) {
    reach[a] = static_cast<std::size_t>(std::floor(radius * (1.0 + 1e-12) / g.spacing[a]));
  }
  std::size_t largest = 0;
  for (std::int32_t t : scan.labels) {
    scan.boxes[t] = scan.boxes[t].grown(reach, g.dims);
    largest = std::max(largest, scan.boxes[t].voxels());
  }
  const auto sites = masks::uninitialized<std::uint8_t>(largest);
  const auto squared = masks::uninitialized<double>(largest);
  for (std::int32_t t : scan.labels) {
    const masks::Box& box = scan.boxes[t];
    masks::cpu_box_edt(detail::LabelSites{territories.data, t}, grid, box, sites.get(),
                       squared.get(), threads);
    const detail::NearestTwoVoxel fold{
        nullptr, t, first.get(), first_label.get(), second.get(), second_label.get()};
    const double* d = squared.get();
    cpu::parallel_for(box.size[1] * box.size[2], threads, [&](std::size_t row) {
      const std::size_t full = box.full_index(g.dims, 0, row % box.size[1], row / box.size[1]);
      const double* line = d + row * box.size[0];
      for (std::size_t x = 0; x < box.size[0]; ++x) fold.fold(full + x, line[x]);
    });
  }
  cpu::parallel_for(count, threads,
                    detail::BorderZoneVoxel{brain, second.get(), first_label.get(),
                                            second_label.get(), radius_squared, mask, pairs});
}

}  // namespace

BorderZones border_zones(View<const std::int32_t> territories,
                         std::optional<View<const std::uint8_t>> brain, double width_mm,
                         const Execution& execution) {
  check_image(territories, "the territory image");
  if (brain) check_same_grid(territories.geometry, *brain, "the territory image", "the brain mask");
  if (!(std::isfinite(width_mm) && width_mm > 0.0)) {
    throw InvalidArgument("border zones: the width must be positive and finite, got " +
                          std::to_string(width_mm));
  }
  const Geometry& g = territories.geometry;
  const std::uint8_t* brain_data = brain ? brain->data : nullptr;
  TerritoryScan scan = scan_territories(territories, brain_data);
  const double radius = 0.5 * width_mm;
  const double radius_squared = radius * radius * (1.0 + 1e-12);  // inclusive, to rounding
  masks::EdtGrid grid;
  grid.dims = g.dims;
  for (int a = 0; a < 3; ++a) grid.weight[a] = g.spacing[a] * g.spacing[a];
  BorderZones out;
  out.territories = scan.labels;
  out.mask = Mask(g);
  out.pairs = Volume<std::int32_t>(g);
  out.backend = dispatch::run(
      resolve_backend(execution), execution,
      [&] {
        masks::cuda_border_zones(territories.data, brain_data, grid, out.territories,
                                 radius_squared, out.mask.data(), out.pairs.data(),
                                 execution.device);
      },
      [&] {
        out.mask = Mask(g);  // nothing a failed CUDA run half wrote
        out.pairs = Volume<std::int32_t>(g);
        cpu_border_zones(territories, brain_data, scan, grid, radius, radius_squared,
                         execution.threads, out.mask.data(), out.pairs.data());
      });
  return out;
}

BorderZones border_zones_from_probabilities(View<const float> probabilities,
                                            std::optional<View<const std::uint8_t>> brain,
                                            double threshold, std::vector<std::int32_t> labels,
                                            const Execution& execution) {
  if (probabilities.empty()) throw InvalidArgument("the territory probabilities are empty");
  const std::size_t n = probabilities.volumes;
  if (n < 2) {
    throw InvalidArgument("border zones need at least two territory probability maps, got " +
                          std::to_string(n));
  }
  const Geometry& g = probabilities.geometry;
  if (brain) check_same_grid(g, *brain, "the territory probabilities", "the brain mask");
  if (!(std::isfinite(threshold) && threshold > 0.0)) {
    throw InvalidArgument("border zones: the probability threshold must be positive, got " +
                          std::to_string(threshold));
  }
  if (labels.empty()) {
    for (std::size_t k = 0; k < n; ++k) labels.push_back(static_cast<std::int32_t>(k + 1));
  }
  if (labels.size() != n) {
    throw InvalidArgument("border zones: " + std::to_string(labels.size()) + " labels for " +
                          std::to_string(n) + " probability maps");
  }
  const std::set<std::int32_t> distinct(labels.begin(), labels.end());
  if (distinct.size() != n || *distinct.begin() < 1 || *distinct.rbegin() >= kPairCodeBase) {
    throw InvalidArgument("border zones: probability map labels must be distinct, 1 … 999");
  }
  const std::uint8_t* brain_data = brain ? brain->data : nullptr;
  check_finite(probabilities.data, g, probabilities.size(), brain_data,
               "the territory probabilities");
  BorderZones out;
  out.territories.assign(distinct.begin(), distinct.end());
  out.mask = Mask(g);
  out.pairs = Volume<std::int32_t>(g);
  out.backend = Backend::Cpu;
  cpu::parallel_for(g.voxel_count(), execution.threads,
                    detail::ProbabilityBorderVoxel{
                        probabilities.data, g.voxel_count(), n, labels.data(), brain_data,
                        static_cast<float>(threshold), out.mask.data(), out.pairs.data()});
  return out;
}

// ---- combination --------------------------------------------------------------------------

Mask combine_masks(View<const std::uint8_t> a, View<const std::uint8_t> b,
                   Combination combination) {
  check_image(a, "the first mask");
  check_same_grid(a.geometry, b, "the first mask", "the second mask");
  Mask out(a.geometry);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    out[i] = combination == Combination::Union ? (x || y) : (x && y);
  }
  return out;
}

Mask threshold_map(View<const float> map, double minimum) {
  check_image(map, "the map");
  if (!std::isfinite(minimum)) throw InvalidArgument("threshold_map: the minimum must be finite");
  Mask out(map.geometry);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = map.data[i] >= minimum ? 1 : 0;
  return out;
}

SplitZones split_internal_external(View<const std::uint8_t> zones,
                                   View<const std::uint8_t> white_matter,
                                   std::optional<View<const std::uint8_t>> grey_matter) {
  check_image(zones, "the border-zone mask");
  check_same_grid(zones.geometry, white_matter, "the border-zone mask", "the white-matter mask");
  if (grey_matter) {
    check_same_grid(zones.geometry, *grey_matter, "the border-zone mask", "the grey-matter mask");
  }
  SplitZones out{Mask(zones.geometry), Mask(zones.geometry)};
  for (std::size_t i = 0; i < out.internal.size(); ++i) {
    if (zones.data[i] == 0) continue;
    const bool wm = white_matter.data[i] != 0;
    const bool gm = !grey_matter || grey_matter->data[i] != 0;
    out.internal[i] = wm ? 1 : 0;
    out.external[i] = !wm && gm ? 1 : 0;
  }
  return out;
}

double dice(View<const std::uint8_t> a, View<const std::uint8_t> b) {
  check_image(a, "the first mask");
  check_same_grid(a.geometry, b, "the first mask", "the second mask");
  std::size_t both = 0, total = 0;
  for (std::size_t i = 0; i < a.voxel_count(); ++i) {
    const bool x = a.data[i] != 0, y = b.data[i] != 0;
    both += x && y;
    total += static_cast<std::size_t>(x) + static_cast<std::size_t>(y);
  }
  return total == 0 ? 1.0 : 2.0 * static_cast<double>(both) / static_cast<double>(total);
}

// ---- timing ---------------------------------------------------------------------------------

CleanedMask drop_small_components(View<const std::uint8_t> mask, double min_volume_ml,
                                  Connectivity connectivity) {
  check_image(mask, "the mask");
  if (!(std::isfinite(min_volume_ml) && min_volume_ml >= 0.0)) {
    throw InvalidArgument("the minimum component volume must be finite and >= 0 ml");
  }
  const Geometry& g = mask.geometry;
  const double voxel_ml = g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;
  const auto nx = static_cast<std::ptrdiff_t>(g.dims[0]);
  const auto ny = static_cast<std::ptrdiff_t>(g.dims[1]);
  const auto nz = static_cast<std::ptrdiff_t>(g.dims[2]);
  const bool full = connectivity == Connectivity::Full26;
  CleanedMask out{Mask(g), 0, 0, 0};
  // Flood fill, one component at a time; `component` collects its voxels.
  std::vector<std::uint8_t> visited(g.voxel_count(), 0);
  std::vector<std::size_t> stack, component;
  for (std::size_t seed = 0; seed < g.voxel_count(); ++seed) {
    if (mask.data[seed] == 0 || visited[seed]) continue;
    component.clear();
    stack.assign(1, seed);
    visited[seed] = 1;
    while (!stack.empty()) {
      const std::size_t i = stack.back();
      stack.pop_back();
      component.push_back(i);
      const auto x = static_cast<std::ptrdiff_t>(i) % nx;
      const auto y = (static_cast<std::ptrdiff_t>(i) / nx) % ny;
      const auto z = static_cast<std::ptrdiff_t>(i) / (nx * ny);
      for (std::ptrdiff_t dz = -1; dz <= 1; ++dz) {
        for (std::ptrdiff_t dy = -1; dy <= 1; ++dy) {
          for (std::ptrdiff_t dx = -1; dx <= 1; ++dx) {
            const int steps = (dx != 0) + (dy != 0) + (dz != 0);
            if (steps == 0 || (!full && steps > 1)) continue;
            const std::ptrdiff_t u = x + dx, v = y + dy, w = z + dz;
            if (u < 0 || v < 0 || w < 0 || u >= nx || v >= ny || w >= nz) continue;
            const auto j = static_cast<std::size_t>(u + nx * (v + ny * w));
            if (mask.data[j] != 0 && !visited[j]) {
              visited[j] = 1;
              stack.push_back(j);
            }
          }
        }
      }
    }
    // Compare in voxels, with a little slack so that "exactly the minimum" is kept.
    if (static_cast<double>(component.size()) * voxel_ml >= min_volume_ml * (1.0 - 1e-12)) {
      ++out.kept;
      for (std::size_t i : component) out.mask[i] = 1;
    } else {
      ++out.dropped;
      out.voxels_dropped += component.size();
    }
  }
  return out;
}

namespace {

/// numpy's default percentile (linear interpolation between order statistics).
double percentile_of(std::vector<float> values, double p) {
  const double h = (static_cast<double>(values.size()) - 1.0) * p / 100.0;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  std::nth_element(values.begin(), values.begin() + lo, values.end());
  const double a = values[lo];
  if (lo + 1 >= values.size()) return a;
  const double b = *std::min_element(values.begin() + lo + 1, values.end());
  return a + (h - static_cast<double>(lo)) * (b - a);
}

}  // namespace

TimingZones timing_border_zones(View<const float> timing, View<const std::uint8_t> tissue,
                                const TimingOptions& options, const Execution& execution) {
  check_image(timing, "the timing map");
  check_same_grid(timing.geometry, tissue, "the timing map", "the tissue mask");
  if (options.threshold.has_value() == options.percentile.has_value()) {
    throw InvalidArgument("timing border zones need exactly one of a threshold and a percentile");
  }
  if (options.threshold && !std::isfinite(*options.threshold)) {
    throw InvalidArgument("the timing threshold must be finite");
  }
  if (options.percentile && !(*options.percentile >= 0.0 && *options.percentile <= 100.0)) {
    throw InvalidArgument("the timing percentile must be within 0 … 100");
  }
  const Geometry& g = timing.geometry;
  check_finite(timing.data, g, g.voxel_count(), tissue.data, "the timing map");
  std::vector<float> values;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (tissue.data[i] != 0) values.push_back(timing.data[i]);
  }
  if (values.empty()) throw InvalidArgument("timing border zones: the tissue mask is empty");
  TimingZones out;
  out.tissue_voxels = values.size();
  out.cut = options.threshold ? *options.threshold : percentile_of(values, *options.percentile);
  Mask above(g);
  const float* t = timing.data;
  const std::uint8_t* m = tissue.data;
  std::uint8_t* a = above.data();
  const double cut = out.cut;
  cpu::parallel_for(g.voxel_count(), execution.threads, [=](std::size_t i) {
    a[i] = m[i] != 0 && static_cast<double>(t[i]) >= cut ? 1 : 0;
  });
  CleanedMask cleaned =
      drop_small_components(above.view(), options.min_volume_ml, options.connectivity);
  out.mask = std::move(cleaned.mask);
  out.components_kept = cleaned.kept;
  out.components_dropped = cleaned.dropped;
  out.voxels_dropped = cleaned.voxels_dropped;
  return out;
}

Volume<float> local_cov(View<const float> cbf, View<const std::uint8_t> tissue, double radius_mm,
                        const Execution& execution) {
  check_image(cbf, "the CBF map");
  check_same_grid(cbf.geometry, tissue, "the CBF map", "the tissue mask");
  if (!(std::isfinite(radius_mm) && radius_mm > 0.0)) {
    throw InvalidArgument("local CoV: the radius must be positive and finite");
  }
  const Geometry& g = cbf.geometry;
  check_finite(cbf.data, g, g.voxel_count(), tissue.data, "the CBF map");
  if (std::none_of(tissue.data, tissue.data + g.voxel_count(), [](std::uint8_t v) { return v; })) {
    throw InvalidArgument("local CoV: the tissue mask is empty");
  }
  // The sphere's offsets, in voxels.
  struct Offset {
    std::ptrdiff_t x, y, z;
  };
  std::vector<Offset> sphere;
  std::ptrdiff_t reach[3];
  for (int a = 0; a < 3; ++a) {
    reach[a] = static_cast<std::ptrdiff_t>(std::floor(radius_mm / g.spacing[a] + 1e-9));
  }
  const double limit = radius_mm * radius_mm * (1.0 + 1e-12);
  for (std::ptrdiff_t z = -reach[2]; z <= reach[2]; ++z) {
    for (std::ptrdiff_t y = -reach[1]; y <= reach[1]; ++y) {
      for (std::ptrdiff_t x = -reach[0]; x <= reach[0]; ++x) {
        const double dx = x * g.spacing[0], dy = y * g.spacing[1], dz = z * g.spacing[2];
        if (dx * dx + dy * dy + dz * dz <= limit) sphere.push_back({x, y, z});
      }
    }
  }
  Volume<float> out(g);
  const auto nx = static_cast<std::ptrdiff_t>(g.dims[0]);
  const auto ny = static_cast<std::ptrdiff_t>(g.dims[1]);
  const auto nz = static_cast<std::ptrdiff_t>(g.dims[2]);
  const float* c = cbf.data;
  const std::uint8_t* m = tissue.data;
  float* o = out.data();
  cpu::parallel_for(g.voxel_count(), execution.threads, [&](std::size_t i) {
    if (m[i] == 0) return;
    const auto x = static_cast<std::ptrdiff_t>(i) % nx;
    const auto y = (static_cast<std::ptrdiff_t>(i) / nx) % ny;
    const auto z = static_cast<std::ptrdiff_t>(i) / (nx * ny);
    // Sums of differences from the centre value keep the variance accurate.
    const double centre = c[i];
    double sum = 0.0, sum2 = 0.0;
    std::size_t n = 0;
    for (const Offset& d : sphere) {
      const std::ptrdiff_t u = x + d.x, v = y + d.y, w = z + d.z;
      if (u < 0 || v < 0 || w < 0 || u >= nx || v >= ny || w >= nz) continue;
      const auto j = static_cast<std::size_t>(u + nx * (v + ny * w));
      if (m[j] == 0) continue;
      const double e = c[j] - centre;
      sum += e;
      sum2 += e * e;
      ++n;
    }
    if (n < 2) return;
    const double mean = centre + sum / n;
    const double variance = std::max(0.0, (sum2 - sum * sum / n) / (n - 1));
    if (mean > 0.0) o[i] = static_cast<float>(std::sqrt(variance) / mean);
  });
  return out;
}

// ---- anatomy ------------------------------------------------------------------------------

Volume<std::uint8_t> periventricular_caps(View<const std::uint8_t> ventricles,
                                          std::optional<View<const std::uint8_t>> brain,
                                          const CapOptions& options, const Execution& execution) {
  check_image(ventricles, "the ventricle mask");
  if (brain) check_same_grid(ventricles.geometry, *brain, "the ventricle mask", "the brain mask");
  if (!(std::isfinite(options.distance_mm) && options.distance_mm >= 0.0)) {
    throw InvalidArgument("periventricular caps: the distance must be finite and >= 0");
  }
  if (!(options.horn_fraction > 0.0 && options.horn_fraction <= 0.5)) {
    throw InvalidArgument("periventricular caps: the horn fraction must be within (0, 0.5]");
  }
  const Geometry& g = ventricles.geometry;
  // Anterior–posterior position of each voxel centre: row 1 of direction × spacing × index.
  auto ap = [&g](std::size_t i) {
    const double x = static_cast<double>(i % g.dims[0]);
    const double y = static_cast<double>((i / g.dims[0]) % g.dims[1]);
    const double z = static_cast<double>(i / (g.dims[0] * g.dims[1]));
    return g.origin[1] + g.direction[3] * g.spacing[0] * x + g.direction[4] * g.spacing[1] * y +
           g.direction[5] * g.spacing[2] * z;
  };
  double y0 = std::numeric_limits<double>::infinity(), y1 = -y0;
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (ventricles.data[i] == 0) continue;
    y0 = std::min(y0, ap(i));
    y1 = std::max(y1, ap(i));
  }
  if (y0 > y1) throw InvalidArgument("periventricular caps: the ventricle mask is empty");
  const double horn = options.horn_fraction * (y1 - y0);
  const Mask near = dilate(ventricles, options.distance_mm, execution);
  Volume<std::uint8_t> out(g);
  for (std::size_t i = 0; i < g.voxel_count(); ++i) {
    if (!near[i] || ventricles.data[i] != 0 || (brain && brain->data[i] == 0)) continue;
    const double y = ap(i);
    out[i] = y <= y0 + horn ? kFrontalCap : (y >= y1 - horn ? kOccipitalCap : kNoCap);
  }
  return out;
}

PERFQ_NAMESPACE_END
