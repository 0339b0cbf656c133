// Regional statistics: argument checks, region discovery, the CPU path, and the host
// arithmetic that turns either path's raw sums into RegionStats; NAWM and lesion enrichment.
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/stats.hpp>

#include <perfq/detail/stats.hpp>

#include "backend/stats.hpp"
#include "dispatch.hpp"
#include "parallel.hpp"
#include "grid_checks.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

PERFQ_NAMESPACE_BEGIN

namespace {

using backend::RegionSums;
using backend::StatsProblem;

template <class T>
void require_volume(const View<const T>& v, const std::string& what) {
  if (v.empty()) throw InvalidArgument(what + " is empty");
  if (v.volumes != 1) {
    throw InvalidArgument(what + " must be one volume, got " + std::to_string(v.volumes));
  }
}

void require_grid(const Geometry& reference, const Geometry& g, const std::string& what,
                  const std::string& of) {
  checks::one_volume_on_grid(g, 1, false, reference, what, of);
}

std::string voxel_name(const Geometry& g, std::size_t i) {
  std::ostringstream m;
  m << "voxel (" << i % g.dims[0] << ", " << (i / g.dims[0]) % g.dims[1] << ", "
    << i / (g.dims[0] * g.dims[1]) << ")";
  return m.str();
}

/// Region index of a label: a direct table when the labels span a small range (the usual
/// case), else a binary search.
class RegionLookup {
 public:
  explicit RegionLookup(const std::vector<std::int32_t>& regions) : regions_(regions) {
    if (regions.empty()) return;
    first_ = regions.front();
    const std::int64_t span = static_cast<std::int64_t>(regions.back()) - first_ + 1;
    if (span <= (std::int64_t{1} << 22)) {
      table_.assign(static_cast<std::size_t>(span), -1);
      for (std::size_t r = 0; r < regions.size(); ++r) {
        table_[static_cast<std::size_t>(regions[r] - std::int64_t{first_})] =
            static_cast<std::int32_t>(r);
      }
    }
  }
  std::int32_t operator()(std::int32_t label) const {
    if (regions_.empty()) return -1;
    if (!table_.empty()) {
      const std::int64_t k = static_cast<std::int64_t>(label) - first_;
      return k < 0 || k >= static_cast<std::int64_t>(table_.size())
                 ? -1
                 : table_[static_cast<std::size_t>(k)];
    }
    return static_cast<std::int32_t>(detail::find_region(label, regions_.data(), regions_.size()));
  }

 private:
  const std::vector<std::int32_t>& regions_;
  std::int32_t first_ = 0;
  std::vector<std::int32_t> table_;
};

/// The distinct labels inside the mask, ascending, without 0 unless `background`.
std::vector<std::int32_t> present_labels(const std::int32_t* labels, const std::uint8_t* mask,
                                         std::size_t n, bool background) {
  auto counts = [&](std::size_t i) {
    return (mask == nullptr || mask[i] != 0) && (background || labels[i] != 0);
  };
  std::int32_t lo = 0, hi = 0;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (!counts(i)) continue;
    lo = any ? std::min(lo, labels[i]) : labels[i];
    hi = any ? std::max(hi, labels[i]) : labels[i];
    any = true;
  }
  std::vector<std::int32_t> found;
  if (!any) return found;
  const std::int64_t span = static_cast<std::int64_t>(hi) - lo + 1;
  if (span <= (std::int64_t{1} << 22)) {
    std::vector<std::uint8_t> seen(static_cast<std::size_t>(span), 0);
    for (std::size_t i = 0; i < n; ++i) {
      if (counts(i)) seen[static_cast<std::size_t>(labels[i] - std::int64_t{lo})] = 1;
    }
    for (std::int64_t k = 0; k < span; ++k) {
      if (seen[static_cast<std::size_t>(k)]) found.push_back(static_cast<std::int32_t>(lo + k));
    }
  } else {  // labels spread over a huge range: sort them instead
    for (std::size_t i = 0; i < n; ++i) {
      if (counts(i)) found.push_back(labels[i]);
    }
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
  }
  return found;
}

/// The CPU path. The region of each voxel is found in parallel; a sequential counting sort
/// then gathers each region's finite values in voxel order, and each region is summed by one
/// thread in that order, so results are bitwise identical for any number of threads.
std::vector<RegionSums> cpu_region_sums(const StatsProblem& p, int threads) {
  const std::size_t n = p.voxels, regions = p.regions.size();
  const RegionLookup lookup(p.regions);
  std::vector<std::int32_t> region(n);
  cpu::parallel_for(n, threads, [&](std::size_t i) {
    region[i] = p.mask != nullptr && p.mask[i] == 0 ? -1 : lookup(p.labels[i]);
  });

  std::vector<RegionSums> out(regions);
  for (std::size_t i = 0; i < n; ++i) {
    if (region[i] < 0) continue;
    RegionSums& s = out[static_cast<std::size_t>(region[i])];
    ++s.voxels;
    if (detail::is_finite(p.map[i])) ++s.count;
  }
  std::vector<std::size_t> next(regions + 1, 0);
  for (std::size_t r = 0; r < regions; ++r) next[r + 1] = next[r] + out[r].count;
  const std::vector<std::size_t> start = next;
  const std::size_t total = next[regions];
  std::vector<float> x(total), w(p.weights != nullptr ? total : 0),
      b(p.baseline != nullptr ? total : 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (region[i] < 0 || !detail::is_finite(p.map[i])) continue;
    const std::size_t k = next[static_cast<std::size_t>(region[i])]++;
    x[k] = p.map[i] == 0.0f ? 0.0f : p.map[i];  // −0 → +0, as the GPU's sort keys do
    if (p.weights != nullptr) w[k] = p.weights[i];
    if (p.baseline != nullptr) b[k] = p.baseline[i];
  }

  const bool paired = p.baseline != nullptr;
  const int team = cpu::team_size(threads);
  const auto count = static_cast<std::ptrdiff_t>(regions);
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
  for (std::ptrdiff_t r = 0; r < count; ++r) {
    RegionSums& s = out[static_cast<std::size_t>(r)];
    const std::size_t begin = start[static_cast<std::size_t>(r)], end = begin + s.count;
    for (std::size_t k = begin; k < end; ++k) {
      s.sums = s.sums + detail::first_pass_terms(x[k], w.empty() ? 1.0f : w[k],
                                                 paired ? b[k] : 0.0f, paired);
    }
    const detail::StatsMeans m = detail::stats_means(s.sums, static_cast<double>(s.count));
    for (std::size_t k = begin; k < end; ++k) {
      s.squares = s.squares + detail::second_pass_terms(x[k], w.empty() ? 1.0f : w[k],
                                                        paired ? b[k] : 0.0f, paired, m);
    }
    if (s.count == 0) continue;
    // Only a few order statistics are needed: select them in ascending rank, each selection
    // on what lies above the previous one (linear time, unlike a full sort).
    const std::vector<std::size_t> ranks = backend::order_ranks(s.count, p.quantiles);
    std::vector<std::size_t> ascending = ranks;
    std::sort(ascending.begin(), ascending.end());
    const auto at = [&](std::size_t rank) {
      return x.begin() + static_cast<std::ptrdiff_t>(begin + rank);
    };
    std::size_t from = 0;
    for (std::size_t rank : ascending) {
      if (rank < from) continue;  // already in place
      std::nth_element(at(from), at(rank), at(s.count));
      from = rank + 1;
    }
    for (std::size_t rank : ranks) s.order.push_back(*at(rank));
  }
  return out;
}

/// Host arithmetic shared by both paths: raw sums → statistics (see stats.hpp).
RegionStats finalize(const RegionSums& s, std::int32_t label, const std::vector<double>& quantiles,
                     double voxel_ml, bool weighted, bool paired) {
  RegionStats r;
  r.label = label;
  r.voxels = s.voxels;
  r.count = s.count;
  r.nonfinite = s.voxels - s.count;
  r.volume_ml = static_cast<double>(s.voxels) * voxel_ml;
  r.percentiles.assign(quantiles.size() - 1, 0.0);
  if (s.count == 0) return r;

  const double n = static_cast<double>(s.count);
  r.mean = s.sums.x / n;
  r.sd = s.count > 1 ? std::sqrt(s.squares.x / (n - 1.0)) : 0.0;
  r.min = s.order[0];
  r.max = s.order[1];
  for (std::size_t q = 0; q < quantiles.size(); ++q) {
    const double frac = detail::percentile_rank(quantiles[q], s.count).frac;
    const double v = detail::interpolate(s.order[2 + 2 * q], s.order[3 + 2 * q], frac);
    if (q == 0) {
      r.median = v;  // quantiles[0] is 50
    } else {
      r.percentiles[q - 1] = v;
    }
  }
  r.cov_defined = r.mean != 0.0;
  if (r.cov_defined) {
    r.cov = r.sd / r.mean;
    r.scov = 100.0 * r.cov;
  }

  if (weighted && s.sums.w > 0.0) {
    WeightedStats& w = r.weighted;
    w.defined = true;
    w.weight_sum = s.sums.w;
    w.volume_ml = s.sums.w * voxel_ml;
    w.effective_count = s.sums.w * s.sums.w / s.sums.ww;
    w.mean = s.sums.wx / s.sums.w;
    // Reliability-weight denominator; ~0 (one voxel carries all weight) means no spread.
    const double denominator = s.sums.w - s.sums.ww / s.sums.w;
    w.sd = denominator > 1e-12 * s.sums.w ? std::sqrt(s.squares.w / denominator) : 0.0;
  }
  if (paired && s.sums.paired > 0.0) {
    PairedChange& c = r.change;
    const double m = s.sums.paired;
    c.defined = true;
    c.count = static_cast<std::size_t>(m);
    c.baseline_mean = s.sums.base / m;
    c.mean = s.sums.diff / m;
    c.followup_mean = (s.sums.base + s.sums.diff) / m;
    c.sd = c.count > 1 ? std::sqrt(s.squares.diff / (m - 1.0)) : 0.0;
    c.percent_defined = c.baseline_mean != 0.0;
    if (c.percent_defined) c.percent = 100.0 * c.mean / c.baseline_mean;
  }
  return r;
}

}  // namespace

std::vector<std::uint8_t> default_excluded_statuses() { return {1, 2, 3, 4, 5, 6, 8}; }

RegionTable region_stats(View<const float> map, View<const std::int32_t> labels,
                         const StatsOptions& options, const Execution& execution) {
  require_volume(map, "the map");
  require_volume(labels, "the label image");
  const Geometry& g = map.geometry;
  require_grid(g, labels.geometry, "the label image", "the map");
  if (options.mask) {
    require_volume(*options.mask, "the mask");
    require_grid(g, options.mask->geometry, "the mask", "the map");
  }
  if (options.status) {
    require_volume(*options.status, "the status map");
    require_grid(g, options.status->geometry, "the status map", "the map");
  }
  if (options.weights) {
    require_volume(*options.weights, "the weight map");
    require_grid(g, options.weights->geometry, "the weight map", "the map");
  }
  if (options.baseline) {
    require_volume(*options.baseline, "the baseline map");
    require_grid(g, options.baseline->geometry, "the baseline map", "the (follow-up) map");
  }
  for (double p : options.percentiles) {
    if (!(p >= 0.0 && p <= 100.0)) {
      throw InvalidArgument("percentiles must lie in [0, 100], got " + std::to_string(p));
    }
  }

  StatsProblem problem;
  problem.map = map.data;
  problem.labels = labels.data;
  problem.mask = options.mask ? options.mask->data : nullptr;
  problem.weights = options.weights ? options.weights->data : nullptr;
  problem.baseline = options.baseline ? options.baseline->data : nullptr;
  problem.voxels = g.voxel_count();
  problem.quantiles.push_back(50.0);
  problem.quantiles.insert(problem.quantiles.end(), options.percentiles.begin(),
                           options.percentiles.end());

  // Regions: as requested, else every label present.
  std::vector<std::int32_t> order = options.labels;
  if (order.empty()) {
    order = present_labels(labels.data, problem.mask, problem.voxels, options.include_background);
    if (order.empty()) {
      throw InvalidArgument("no region: every voxel of the label image is background (0)" +
                            std::string(options.mask ? " or outside the mask" : ""));
    }
  }
  problem.regions = order;
  std::sort(problem.regions.begin(), problem.regions.end());
  if (std::adjacent_find(problem.regions.begin(), problem.regions.end()) != problem.regions.end()) {
    throw InvalidArgument("a label is listed twice among the regions to report");
  }

  // Voxels left out for their status: masked out (on either backend), counted per region.
  std::vector<std::uint8_t> kept;
  std::vector<std::size_t> excluded(problem.regions.size(), 0);
  if (options.status) {
    bool leave_out[256] = {};
    for (std::uint8_t code : options.exclude_statuses) leave_out[code] = true;
    const RegionLookup lookup(problem.regions);
    const std::uint8_t* status = options.status->data;
    kept.assign(problem.voxels, 0);
    for (std::size_t i = 0; i < problem.voxels; ++i) {
      if (problem.mask != nullptr && problem.mask[i] == 0) continue;
      if (!leave_out[status[i]]) {
        kept[i] = 1;
        continue;
      }
      const int region = lookup(labels.data[i]);
      if (region >= 0) ++excluded[static_cast<std::size_t>(region)];
    }
    problem.mask = kept.data();
  }

  if (problem.weights != nullptr) {
    // Only weights that enter a statistic must be valid (maps are often NaN off the brain).
    const RegionLookup lookup(problem.regions);
    for (std::size_t i = 0; i < problem.voxels; ++i) {
      const float w = problem.weights[i];
      if (w >= 0.0f && w <= 1.0f) continue;
      if ((problem.mask == nullptr || problem.mask[i] != 0) && detail::is_finite(map.data[i]) &&
          lookup(labels.data[i]) >= 0) {
        std::ostringstream m;
        m << "the weight map has " << w << " at " << voxel_name(g, i)
          << "; partial-volume weights must lie in [0, 1]";
        throw InvalidArgument(m.str());
      }
    }
  }

  RegionTable table;
  table.percentiles = options.percentiles;
  table.voxel_volume_ml = g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;
  table.weighted = problem.weights != nullptr;
  table.paired = problem.baseline != nullptr;
  table.status_filtered = options.status.has_value();
  if (table.status_filtered) {
    table.excluded_statuses = options.exclude_statuses;
    std::sort(table.excluded_statuses.begin(), table.excluded_statuses.end());
    table.excluded_statuses.erase(
        std::unique(table.excluded_statuses.begin(), table.excluded_statuses.end()),
        table.excluded_statuses.end());
  }
  std::vector<RegionSums> sums;
  table.backend = dispatch::run(
      resolve_backend(execution), execution,
      [&] { sums = backend::cuda_region_sums(problem, execution.device); },
      [&] { sums = cpu_region_sums(problem, execution.threads); });

  std::uint64_t voxels = 0, finite = 0;
  for (const RegionSums& s : sums) {
    voxels += s.voxels;
    finite += s.count;
  }
  if (voxels > 0 && finite == 0) {
    throw InvalidArgument(
        "the map has no finite value in any region (every value is NaN or "
        "infinite)");
  }
  const RegionLookup lookup(problem.regions);
  for (std::int32_t label : order) {
    const auto k = static_cast<std::size_t>(lookup(label));
    RegionStats r = finalize(sums[k], label, problem.quantiles, table.voxel_volume_ml,
                             table.weighted, table.paired);
    r.excluded = excluded[k];
    r.voxels += r.excluded;  // the region's size is the labelled one
    r.volume_ml = static_cast<double>(r.voxels) * table.voxel_volume_ml;
    table.regions.push_back(std::move(r));
  }
  return table;
}

RegionTable region_stats(View<const float> map, View<const std::uint8_t> mask,
                         const StatsOptions& options, const Execution& execution) {
  require_volume(mask, "the mask");
  Volume<std::int32_t> labels(mask.geometry);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = mask.data[i] != 0 ? 1 : 0;
  StatsOptions one = options;
  one.labels = {1};
  return region_stats(map, labels.view(), one, execution);
}

Mask normal_appearing_white_matter(View<const std::uint8_t> white_matter,
                                   View<const std::uint8_t> lesions, double dilation_mm,
                                   const Execution& execution) {
  require_volume(white_matter, "the white-matter mask");
  require_volume(lesions, "the lesion mask");
  require_grid(white_matter.geometry, lesions.geometry, "the lesion mask", "the white-matter mask");
  if (!(std::isfinite(dilation_mm) && dilation_mm >= 0.0)) {
    throw InvalidArgument("the lesion dilation radius must be finite and ≥ 0 mm, got " +
                          std::to_string(dilation_mm));
  }
  const Mask grown = dilate(lesions, dilation_mm, execution);
  Mask nawm(white_matter.geometry);
  for (std::size_t i = 0; i < nawm.size(); ++i) {
    nawm[i] = white_matter.data[i] != 0 && grown[i] == 0 ? 1 : 0;
  }
  return nawm;
}

LesionEnrichment lesion_watershed_enrichment(View<const std::uint8_t> lesions,
                                             View<const std::uint8_t> watershed,
                                             View<const std::uint8_t> white_matter) {
  require_volume(lesions, "the lesion mask");
  require_volume(watershed, "the watershed mask");
  require_volume(white_matter, "the white-matter mask");
  require_grid(lesions.geometry, watershed.geometry, "the watershed mask", "the lesion mask");
  require_grid(lesions.geometry, white_matter.geometry, "the white-matter mask", "the lesion mask");
  LesionEnrichment e;
  for (std::size_t i = 0; i < lesions.voxel_count(); ++i) {
    const bool in_watershed = watershed.data[i] != 0;
    if (lesions.data[i] != 0) {
      ++e.lesion_voxels;
      if (in_watershed) ++e.lesion_in_watershed;
    }
    if (white_matter.data[i] != 0) {
      ++e.wm_voxels;
      if (in_watershed) ++e.watershed_in_wm;
    }
  }
  const Geometry& g = lesions.geometry;
  const double voxel_ml = g.spacing[0] * g.spacing[1] * g.spacing[2] / 1000.0;
  e.lesion_volume_ml = static_cast<double>(e.lesion_voxels) * voxel_ml;
  e.lesion_in_watershed_ml = static_cast<double>(e.lesion_in_watershed) * voxel_ml;
  if (e.lesion_voxels > 0) {
    e.lesion_fraction =
        static_cast<double>(e.lesion_in_watershed) / static_cast<double>(e.lesion_voxels);
  }
  if (e.wm_voxels > 0) {
    e.watershed_fraction =
        static_cast<double>(e.watershed_in_wm) / static_cast<double>(e.wm_voxels);
  }
  e.enrichment_defined = e.lesion_voxels > 0 && e.watershed_in_wm > 0;
  if (e.enrichment_defined) e.enrichment = e.lesion_fraction / e.watershed_fraction;
  return e;
}

PERFQ_NAMESPACE_END
