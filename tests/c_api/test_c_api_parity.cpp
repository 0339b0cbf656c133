// The C API (perfq.h, here compiled as C++) gives the C++ API's results bit for bit on the
// phantom: the phantom itself, pairing, single- and multi-delay quantification, border zones
// (atlas, probabilistic, timing), local CoV, mask algebra (combination, split, thresholds,
// territory grouping, small components, periventricular caps, Dice), weighted and paired
// regional statistics (per label and inside a mask), NAWM, lesion enrichment, partial-volume
// correction, chunked execution, time-encoded decoding and fitting, distance maps and
// dilation, the resolved constants, the single-delay factor, protocol validation, and CUDA
// device discovery.
#include <perfq/perfq.h>

#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/distance.hpp>
#include <perfq/errors.hpp>
#include <perfq/execution.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>
#include <perfq/protocol.hpp>
#include <perfq/pvc.hpp>
#include <perfq/stats.hpp>
#include <perfq/time_encoded.hpp>
#include <perfq/watershed.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace {

template <class T, void (*Destroy)(T*)>
struct Deleter {
  void operator()(T* p) const { Destroy(p); }
};
template <class T, void (*Destroy)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Destroy>>;

template <class T>
bool same_bits(const T* c, const perfq::Image<T>& cpp) {
  return c != nullptr && std::memcmp(c, cpp.data(), cpp.size() * sizeof(T)) == 0;
}

template <class T>
bool same_bits(const T* c, const std::vector<T>& cpp) {
  return c != nullptr && std::memcmp(c, cpp.data(), cpp.size() * sizeof(T)) == 0;
}

using OwnedFit = Owned<perfq_kinetic_fit, perfq_kinetic_fit_destroy>;
using OwnedExecution = Owned<perfq_execution, perfq_execution_destroy>;

/// A C execution handle on `backend` (a test failure when it cannot be made).
OwnedExecution c_execution(const char* backend = "cpu") {
  perfq_execution* raw = nullptr;
  EXPECT_EQ(perfq_execution_create(&raw), PERFQ_OK) << perfq_last_error();
  OwnedExecution execution(raw);
  EXPECT_EQ(perfq_execution_set_backend(raw, backend), PERFQ_OK) << perfq_last_error();
  return execution;
}

/// Its C++ counterpart.
perfq::Execution cpp_cpu_execution() {
  perfq::Execution execution;
  execution.backend = perfq::Backend::Cpu;
  return execution;
}

/// The multi-delay fit of `delta_m` through the C API with the phantom's M0 and brain mask;
/// null (and a test failure naming the error) when the call fails.
OwnedFit fit_phantom(const float* delta_m, std::size_t volumes, const std::size_t dims[3],
                     const double spacing[3], const perfq_phantom* phantom,
                     const perfq_protocol* protocol, const perfq_kinetic_options* kinetic,
                     const perfq_execution* execution) {
  perfq_kinetic_fit* raw = nullptr;
  const perfq_status status = perfq_fit_kinetic(
      delta_m, volumes, dims, spacing, perfq_phantom_map_data(phantom, PERFQ_PHANTOM_M0), 0.0,
      perfq_phantom_mask_data(phantom, PERFQ_PHANTOM_BRAIN), protocol, nullptr, kinetic, execution,
      &raw);
  EXPECT_EQ(status, PERFQ_OK) << perfq_last_error();
  return OwnedFit(raw);
}

TEST(CApi, ResultsEqualTheCxxApiBitwiseOnThePhantom) {
  const double delays[] = {0.5, 1.0, 1.5, 2.0};
  const std::size_t grid[3] = {24, 28, 20};
  perfq::PhantomOptions o;
  o.delays = {0.5, 1.0, 1.5, 2.0};
  o.repeats = 2;
  o.snr = 6.0;
  o.seed = 7;
  o.dims = {24, 28, 20};
  o.voxel_mm = 5.0;
  const perfq::Phantom p = perfq::make_phantom(o);

  perfq_phantom_options* options = nullptr;
  ASSERT_EQ(perfq_phantom_options_create(&options), PERFQ_OK);
  Owned<perfq_phantom_options, perfq_phantom_options_destroy> own_options(options);
  ASSERT_EQ(perfq_phantom_options_set_delays(options, delays, 4, 2), PERFQ_OK);
  ASSERT_EQ(perfq_phantom_options_set_noise(options, 6.0, 7), PERFQ_OK);
  ASSERT_EQ(perfq_phantom_options_set_grid(options, grid, 5.0), PERFQ_OK);
  perfq_phantom* phantom_raw = nullptr;
  ASSERT_EQ(perfq_phantom_create(options, &phantom_raw), PERFQ_OK) << perfq_last_error();
  Owned<perfq_phantom, perfq_phantom_destroy> phantom(phantom_raw);

  std::size_t dims[3], volumes = 0;
  double spacing[3];
  ASSERT_EQ(perfq_phantom_geometry(phantom.get(), dims, spacing), PERFQ_OK);
  const float* series = perfq_phantom_series(phantom.get(), &volumes);
  ASSERT_EQ(volumes, p.asl.volumes());
  EXPECT_TRUE(same_bits(series, p.asl));
  EXPECT_TRUE(same_bits(perfq_phantom_map_data(phantom.get(), PERFQ_PHANTOM_M0), p.m0));
  EXPECT_TRUE(same_bits(perfq_phantom_map_data(phantom.get(), PERFQ_PHANTOM_CBF), p.cbf));
  EXPECT_TRUE(same_bits(perfq_phantom_mask_data(phantom.get(), PERFQ_PHANTOM_BRAIN), p.brain));
  EXPECT_TRUE(same_bits(perfq_phantom_territories(phantom.get()), p.territories));

  // Pairing and averaging.
  perfq_protocol* protocol_raw = nullptr;
  ASSERT_EQ(perfq_phantom_protocol(phantom.get(), &protocol_raw), PERFQ_OK);
  Owned<perfq_protocol, perfq_protocol_destroy> protocol(protocol_raw);
  perfq_prepared* prepared_raw = nullptr;
  ASSERT_EQ(perfq_prepare_asl(series, volumes, dims, spacing, perfq_phantom_context(phantom.get()),
                              protocol.get(), 0, nullptr, &prepared_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_prepared, perfq_prepared_destroy> prepared(prepared_raw);
  const perfq::PreparedAsl cpp_prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  std::size_t delta_volumes = 0;
  const float* delta_m = perfq_prepared_delta_m(prepared.get(), &delta_volumes);
  ASSERT_EQ(delta_volumes, 4u);
  EXPECT_TRUE(same_bits(delta_m, cpp_prepared.delta_m));

  const OwnedExecution cpu = c_execution();
  const perfq::Execution cpp_cpu = cpp_cpu_execution();

  // Single delay, on the last ΔM volume.
  const std::size_t n = p.m0.size();
  const double last_delay = 2.0;
  perfq_protocol* single_raw = nullptr;
  ASSERT_EQ(perfq_phantom_protocol(phantom.get(), &single_raw), PERFQ_OK);
  Owned<perfq_protocol, perfq_protocol_destroy> single(single_raw);
  ASSERT_EQ(perfq_protocol_set_delays(single.get(), &last_delay, 1), PERFQ_OK);
  perfq_cbf_maps* maps_raw = nullptr;
  ASSERT_EQ(perfq_quantify_cbf(delta_m + 3 * n, dims, spacing,
                               perfq_phantom_map_data(phantom.get(), PERFQ_PHANTOM_M0), 0.0,
                               perfq_phantom_mask_data(phantom.get(), PERFQ_PHANTOM_BRAIN),
                               single.get(), nullptr, cpu.get(), &maps_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_cbf_maps, perfq_cbf_maps_destroy> maps(maps_raw);
  perfq::AslProtocol cpp_single = p.protocol;
  cpp_single.post_labeling_delay = {last_delay};
  const perfq::CbfMaps cpp_maps =
      perfq::quantify_cbf(cpp_prepared.delta_m.volume(3), perfq::M0Source::from_image(p.m0),
                          cpp_single, perfq::Physiology::at_field(3.0), p.brain.view(), cpp_cpu);
  EXPECT_TRUE(same_bits(perfq_cbf_maps_cbf(maps.get()), cpp_maps.cbf));
  EXPECT_TRUE(same_bits(perfq_cbf_maps_status(maps.get()), cpp_maps.status));

  // Multi delay with a prior and the Buxton model.
  ASSERT_EQ(perfq_protocol_set_delays(protocol.get(), perfq_prepared_delays(prepared.get()), 4),
            PERFQ_OK);
  perfq_kinetic_options* kinetic_raw = nullptr;
  ASSERT_EQ(perfq_kinetic_options_create(&kinetic_raw), PERFQ_OK);
  Owned<perfq_kinetic_options, perfq_kinetic_options_destroy> kinetic(kinetic_raw);
  const double weights[] = {2, 2, 2, 2};
  ASSERT_EQ(perfq_kinetic_options_set_att_prior(kinetic.get(), 1, 0.8), PERFQ_OK);
  ASSERT_EQ(perfq_kinetic_options_set_weights(kinetic.get(), weights, 4), PERFQ_OK);
  const OwnedFit fit = fit_phantom(delta_m, 4, dims, spacing, phantom.get(), protocol.get(),
                                   kinetic.get(), cpu.get());
  ASSERT_NE(fit, nullptr);
  const perfq::AslProtocol& cpp_multi = cpp_prepared.protocol;
  perfq::KineticOptions cpp_options;
  cpp_options.att_prior = true;
  cpp_options.att_prior_sd = 0.8;
  cpp_options.weights = {2, 2, 2, 2};
  const perfq::KineticFit cpp_fit =
      perfq::fit_kinetic(cpp_prepared.delta_m, perfq::M0Source::from_image(p.m0), cpp_multi,
                         perfq::Physiology::at_field(3.0), cpp_options, p.brain.view(), cpp_cpu);
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_CBF), cpp_fit.cbf));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_ATT), cpp_fit.att));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_CBF_SE), cpp_fit.cbf_se));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_ATT_SE), cpp_fit.att_se));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_status(fit.get()), cpp_fit.status));

  // The prior's noise the same in ΔM/M0 everywhere instead of scaled with M0.
  ASSERT_EQ(perfq_kinetic_options_set_prior_noise(kinetic.get(), "uniform"), PERFQ_OK);
  const OwnedFit uniform = fit_phantom(delta_m, 4, dims, spacing, phantom.get(), protocol.get(),
                                       kinetic.get(), cpu.get());
  ASSERT_NE(uniform, nullptr);
  cpp_options.prior_noise = perfq::PriorNoise::Uniform;
  const perfq::KineticFit cpp_uniform =
      perfq::fit_kinetic(cpp_prepared.delta_m, perfq::M0Source::from_image(p.m0), cpp_multi,
                         perfq::Physiology::at_field(3.0), cpp_options, p.brain.view(), cpp_cpu);
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(uniform.get(), PERFQ_KINETIC_ATT), cpp_uniform.att));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(uniform.get(), PERFQ_KINETIC_CBF), cpp_uniform.cbf));
  EXPECT_FALSE(same_bits(perfq_kinetic_fit_map(uniform.get(), PERFQ_KINETIC_ATT), cpp_fit.att))
      << "the phantom's M0 differs between tissues, so the two noise models differ";

  // The arterial component with its own arrival prior.
  ASSERT_EQ(perfq_kinetic_options_set_arterial(kinetic.get(), 1), PERFQ_OK);
  ASSERT_EQ(perfq_kinetic_options_set_arterial_att_prior(kinetic.get(), 0.7, 0.4), PERFQ_OK);
  const OwnedFit arterial = fit_phantom(delta_m, 4, dims, spacing, phantom.get(), protocol.get(),
                                        kinetic.get(), cpu.get());
  ASSERT_NE(arterial, nullptr);
  cpp_options.arterial = true;
  cpp_options.arterial_att_prior_mean = 0.7;
  cpp_options.arterial_att_prior_sd = 0.4;
  const perfq::KineticFit cpp_arterial =
      perfq::fit_kinetic(cpp_prepared.delta_m, perfq::M0Source::from_image(p.m0), cpp_multi,
                         perfq::Physiology::at_field(3.0), cpp_options, p.brain.view(), cpp_cpu);
  EXPECT_TRUE(
      same_bits(perfq_kinetic_fit_map(arterial.get(), PERFQ_KINETIC_CBF), cpp_arterial.cbf));
  EXPECT_TRUE(
      same_bits(perfq_kinetic_fit_map(arterial.get(), PERFQ_KINETIC_ABV), cpp_arterial.abv));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(arterial.get(), PERFQ_KINETIC_ARTERIAL_ATT),
                        cpp_arterial.arterial_att));

  // The spatial prior (on CBF and ATT), its precisions and sweeps.
  ASSERT_EQ(perfq_kinetic_options_set_arterial(kinetic.get(), 0), PERFQ_OK);
  ASSERT_EQ(perfq_kinetic_options_set_spatial(kinetic.get(), 1, 1, 50, 1e-3), PERFQ_OK);
  const OwnedFit spatial = fit_phantom(delta_m, 4, dims, spacing, phantom.get(), protocol.get(),
                                       kinetic.get(), cpu.get());
  ASSERT_NE(spatial, nullptr);
  cpp_options.arterial = false;
  cpp_options.spatial = true;
  cpp_options.spatial_att = true;
  cpp_options.spatial_max_iterations = 50;
  const perfq::KineticFit cpp_spatial =
      perfq::fit_kinetic(cpp_prepared.delta_m, perfq::M0Source::from_image(p.m0), cpp_multi,
                         perfq::Physiology::at_field(3.0), cpp_options, p.brain.view(), cpp_cpu);
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(spatial.get(), PERFQ_KINETIC_CBF), cpp_spatial.cbf));
  EXPECT_TRUE(
      same_bits(perfq_kinetic_fit_map(spatial.get(), PERFQ_KINETIC_ATT_SE), cpp_spatial.att_se));
  double phi_cbf = 0, phi_att = 0;
  int sweeps = 0, converged = -1;
  ASSERT_EQ(perfq_kinetic_fit_spatial(spatial.get(), &phi_cbf, &phi_att, &sweeps, &converged),
            PERFQ_OK);
  EXPECT_EQ(phi_cbf, cpp_spatial.spatial_precision_cbf);
  EXPECT_EQ(phi_att, cpp_spatial.spatial_precision_att);
  EXPECT_GT(phi_cbf, 0.0);
  EXPECT_EQ(sweeps, cpp_spatial.spatial_iterations);
  EXPECT_EQ(converged, cpp_spatial.spatial_converged ? 1 : 0);
  EXPECT_EQ(perfq_kinetic_options_set_spatial(kinetic.get(), 0, 1, 50, 1e-3),
            PERFQ_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(perfq_kinetic_options_set_spatial(kinetic.get(), 1, 0, 0, 1e-3),
            PERFQ_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(perfq_kinetic_options_set_spatial(kinetic.get(), 1, 0, 10, 1.0),
            PERFQ_ERROR_INVALID_ARGUMENT);

  // Border zones from the territories, inside the brain.
  perfq_border_zones* zones_raw = nullptr;
  ASSERT_EQ(
      perfq_border_zones_from_territories(
          perfq_phantom_territories(phantom.get()), dims, spacing,
          perfq_phantom_mask_data(phantom.get(), PERFQ_PHANTOM_BRAIN), 16.0, cpu.get(), &zones_raw),
      PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_border_zones, perfq_border_zones_destroy> zones(zones_raw);
  const perfq::BorderZones cpp_zones =
      perfq::border_zones(p.territories, p.brain.view(), 16.0, cpp_cpu);
  EXPECT_TRUE(same_bits(perfq_border_zones_mask(zones.get()), cpp_zones.mask));
  EXPECT_TRUE(same_bits(perfq_border_zones_pairs(zones.get()), cpp_zones.pairs));

  // Regional statistics of the fitted CBF per tissue class.
  perfq::Volume<std::int32_t> tissue(p.tissue.geometry());
  for (std::size_t i = 0; i < n; ++i) tissue[i] = p.tissue[i];
  perfq_region_table* table_raw = nullptr;
  ASSERT_EQ(perfq_region_stats(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_CBF), tissue.data(),
                               dims, spacing, nullptr, nullptr, 0, cpu.get(), &table_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_region_table, perfq_region_table_destroy> table(table_raw);
  const perfq::RegionTable cpp_table =
      perfq::region_stats(cpp_fit.cbf, tissue.view(), perfq::StatsOptions{}, cpp_cpu);
  ASSERT_EQ(perfq_region_table_size(table.get()), cpp_table.regions.size());
  for (std::size_t r = 0; r < cpp_table.regions.size(); ++r) {
    const perfq::RegionStats& s = cpp_table.regions[r];
    double mean = 0, sd = 0, median = 0, p95 = 0;
    ASSERT_EQ(perfq_region_table_stat(table.get(), r, PERFQ_STAT_MEAN, &mean), PERFQ_OK);
    ASSERT_EQ(perfq_region_table_stat(table.get(), r, PERFQ_STAT_SD, &sd), PERFQ_OK);
    ASSERT_EQ(perfq_region_table_stat(table.get(), r, PERFQ_STAT_MEDIAN, &median), PERFQ_OK);
    ASSERT_EQ(perfq_region_table_percentile(table.get(), r, 3, &p95), PERFQ_OK);
    EXPECT_EQ(std::memcmp(&mean, &s.mean, sizeof mean), 0) << "region " << s.label;
    EXPECT_EQ(std::memcmp(&sd, &s.sd, sizeof sd), 0) << "region " << s.label;
    EXPECT_EQ(median, s.median);
    EXPECT_EQ(p95, s.percentiles[3]);
  }
}

/// Whether a C mask handle holds the C++ mask's bits.
bool same_mask(const perfq_mask* c, const perfq::Mask& cpp) {
  return c != nullptr && perfq_mask_voxel_count(c) == cpp.size() &&
         same_bits(perfq_mask_data(c), cpp);
}

/// Expects a C table to hold the C++ table bit for bit: every statistic of every row (in
/// perfq_stat order), every percentile, and the table's flags and voxel volume.
void expect_same_table(const perfq_region_table* c, const perfq::RegionTable& cpp) {
  ASSERT_EQ(perfq_region_table_size(c), cpp.regions.size());
  ASSERT_EQ(perfq_region_table_percentile_count(c), cpp.percentiles.size());
  EXPECT_EQ(perfq_region_table_is_weighted(c), cpp.weighted ? 1 : 0);
  EXPECT_EQ(perfq_region_table_is_paired(c), cpp.paired ? 1 : 0);
  EXPECT_EQ(perfq_region_table_voxel_volume_ml(c), cpp.voxel_volume_ml);
  for (std::size_t r = 0; r < cpp.regions.size(); ++r) {
    const perfq::RegionStats& s = cpp.regions[r];
    const double expected[] = {double(s.label),
                               double(s.voxels),
                               double(s.count),
                               double(s.nonfinite),
                               s.volume_ml,
                               s.mean,
                               s.sd,
                               s.median,
                               s.min,
                               s.max,
                               s.cov_defined ? 1.0 : 0.0,
                               s.cov,
                               s.scov,
                               s.weighted.defined ? 1.0 : 0.0,
                               s.weighted.weight_sum,
                               s.weighted.volume_ml,
                               s.weighted.effective_count,
                               s.weighted.mean,
                               s.weighted.sd,
                               s.change.defined ? 1.0 : 0.0,
                               double(s.change.count),
                               s.change.baseline_mean,
                               s.change.followup_mean,
                               s.change.mean,
                               s.change.sd,
                               s.change.percent_defined ? 1.0 : 0.0,
                               s.change.percent};
    static_assert(sizeof expected / sizeof expected[0] == PERFQ_STAT_CHANGE_PERCENT + 1,
                  "one expected value per perfq_stat");
    for (int k = PERFQ_STAT_LABEL; k <= PERFQ_STAT_CHANGE_PERCENT; ++k) {
      double value = 0;
      ASSERT_EQ(perfq_region_table_stat(c, r, static_cast<perfq_stat>(k), &value), PERFQ_OK);
      EXPECT_EQ(std::memcmp(&value, &expected[k], sizeof value), 0)
          << "region " << s.label << " statistic " << k;
    }
    for (std::size_t k = 0; k < cpp.percentiles.size(); ++k) {
      double value = 0;
      ASSERT_EQ(perfq_region_table_percentile(c, r, k, &value), PERFQ_OK);
      EXPECT_EQ(std::memcmp(&value, &s.percentiles[k], sizeof value), 0)
          << "region " << s.label << " percentile " << k;
    }
  }
}

TEST(CApi, WatershedStatisticsAndPvcEqualTheCxxApiBitwiseOnThePhantom) {
  perfq::PhantomOptions o;
  o.delays = {0.5, 1.0, 1.5, 2.0};
  o.snr = 8.0;
  o.seed = 3;
  o.dims = {24, 28, 20};
  o.voxel_mm = 5.0;
  o.lesions = 6;
  const perfq::Phantom p = perfq::make_phantom(o);
  const perfq::Geometry& geo = p.m0.geometry();
  const std::size_t dims[3] = {geo.dims[0], geo.dims[1], geo.dims[2]};
  const double spacing[3] = {geo.spacing[0], geo.spacing[1], geo.spacing[2]};
  const std::size_t n = p.m0.size();
  const OwnedExecution cpu = c_execution();
  const perfq::Execution cpp_cpu = cpp_cpu_execution();

  // Fitted CBF and ATT (the fit's own parity is tested above), tissue masks.
  const perfq::PreparedAsl prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  const perfq::AslProtocol& multi = prepared.protocol;
  const perfq::KineticFit fit =
      perfq::fit_kinetic(prepared.delta_m, perfq::M0Source::from_image(p.m0), multi,
                         perfq::Physiology::at_field(3.0), {}, p.brain.view(), cpp_cpu);
  perfq::Mask wm(geo), gm(geo), usable(geo);
  perfq::Volume<float> gm_fraction(geo), wm_fraction(geo), att(geo);
  for (std::size_t i = 0; i < n; ++i) {
    wm[i] = p.tissue[i] == perfq::kWhiteMatter;
    gm[i] = p.tissue[i] == perfq::kGreyMatter;
    usable[i] = fit.status[i] == 0;
    gm_fraction[i] = gm[i] ? 0.8f : (wm[i] ? 0.25f : 0.0f);
    wm_fraction[i] = wm[i] ? 0.75f : (gm[i] ? 0.2f : 0.0f);
    att[i] = std::isfinite(fit.att[i]) ? fit.att[i] : 0.0f;
  }
  ASSERT_GT(std::count(p.lesions.data(), p.lesions.data() + n, 1), 0);

  // Execution limits: a chunked CPU fit through the C API equals the chunked C++ fit.
  {
    const OwnedExecution chunked = c_execution();
    ASSERT_EQ(perfq_execution_set_max_chunk_voxels(chunked.get(), 997), PERFQ_OK);
    ASSERT_EQ(perfq_execution_set_device_bytes_limit(chunked.get(), 1u << 24), PERFQ_OK);
    perfq::Execution cpp_chunked = cpp_cpu;
    cpp_chunked.max_chunk_voxels = 997;
    cpp_chunked.device_bytes_limit = 1u << 24;
    perfq_protocol* protocol_raw = nullptr;
    ASSERT_EQ(perfq_protocol_create(&protocol_raw), PERFQ_OK);
    Owned<perfq_protocol, perfq_protocol_destroy> protocol(protocol_raw);
    const double pld = 2.0, tau = 1.8;
    ASSERT_EQ(perfq_protocol_set_delays(protocol.get(), &pld, 1), PERFQ_OK);
    ASSERT_EQ(perfq_protocol_set_labeling_durations(protocol.get(), &tau, 1), PERFQ_OK);
    perfq::AslProtocol single;
    single.post_labeling_delay = {pld};
    single.labeling_duration = {tau};
    perfq_cbf_maps* maps_raw = nullptr;
    ASSERT_EQ(perfq_quantify_cbf(prepared.delta_m.volume(3).data, dims, spacing, p.m0.data(), 0.0,
                                 p.brain.data(), protocol.get(), nullptr, chunked.get(), &maps_raw),
              PERFQ_OK)
        << perfq_last_error();
    Owned<perfq_cbf_maps, perfq_cbf_maps_destroy> maps(maps_raw);
    const perfq::CbfMaps cpp_maps =
        perfq::quantify_cbf(prepared.delta_m.volume(3), perfq::M0Source::from_image(p.m0), single,
                            perfq::Physiology::at_field(3.0), p.brain.view(), cpp_chunked);
    EXPECT_TRUE(same_bits(perfq_cbf_maps_cbf(maps.get()), cpp_maps.cbf));
  }

  // Border zones from probabilistic territories (made from the distance to the borders).
  perfq::Volume<float> probabilities(geo, 3);
  for (std::size_t i = 0; i < n; ++i) {
    const float near_border = std::max(0.0f, 1.0f - p.border_distance[i] / 20.0f);
    for (std::int32_t k = 1; k <= 3; ++k) {
      probabilities[(k - 1) * n + i] =
          p.territories[i] == k ? 1.0f - 0.5f * near_border : 0.25f * near_border * k / 2.0f;
    }
  }
  const std::int32_t labels[3] = {4, 5, 6};
  perfq_border_zones* prob_raw = nullptr;
  ASSERT_EQ(
      perfq_border_zones_from_probabilities(probabilities.data(), 3, dims, spacing, p.brain.data(),
                                            0.2, labels, cpu.get(), &prob_raw),
      PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_border_zones, perfq_border_zones_destroy> prob(prob_raw);
  const perfq::BorderZones cpp_prob = perfq::border_zones_from_probabilities(
      probabilities.view(), p.brain.view(), 0.2, {4, 5, 6}, cpp_cpu);
  EXPECT_GT(std::count(cpp_prob.mask.data(), cpp_prob.mask.data() + n, 1), 0);
  EXPECT_TRUE(same_bits(perfq_border_zones_mask(prob.get()), cpp_prob.mask));
  EXPECT_TRUE(same_bits(perfq_border_zones_pairs(prob.get()), cpp_prob.pairs));

  // Border zones from ATT: percentile, minimum volume, 6-connectivity.
  perfq_timing_options* timing_raw = nullptr;
  ASSERT_EQ(perfq_timing_options_create(&timing_raw), PERFQ_OK);
  Owned<perfq_timing_options, perfq_timing_options_destroy> timing(timing_raw);
  ASSERT_EQ(perfq_timing_options_set_percentile(timing.get(), 80.0), PERFQ_OK);
  ASSERT_EQ(perfq_timing_options_set_min_volume(timing.get(), 0.5), PERFQ_OK);
  ASSERT_EQ(perfq_timing_options_set_connectivity(timing.get(), PERFQ_CONNECTIVITY_6), PERFQ_OK);
  perfq_timing_summary summary{};
  perfq_mask* att_zones_raw = nullptr;
  ASSERT_EQ(perfq_timing_border_zones(att.data(), p.brain.data(), dims, spacing, timing.get(),
                                      cpu.get(), &summary, &att_zones_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_mask, perfq_mask_destroy> att_zones(att_zones_raw);
  perfq::TimingOptions cpp_timing;
  cpp_timing.percentile = 80.0;
  cpp_timing.min_volume_ml = 0.5;
  cpp_timing.connectivity = perfq::Connectivity::Faces6;
  const perfq::TimingZones cpp_att_zones =
      perfq::timing_border_zones(att, p.brain.view(), cpp_timing, cpp_cpu);
  EXPECT_TRUE(same_mask(att_zones.get(), cpp_att_zones.mask));
  EXPECT_EQ(std::memcmp(&summary.cut, &cpp_att_zones.cut, sizeof(double)), 0);
  EXPECT_EQ(summary.tissue_voxels, cpp_att_zones.tissue_voxels);
  EXPECT_EQ(summary.components_kept, cpp_att_zones.components_kept);
  EXPECT_EQ(summary.components_dropped, cpp_att_zones.components_dropped);
  EXPECT_EQ(summary.voxels_dropped, cpp_att_zones.voxels_dropped);

  // Local CoV of the fitted CBF.
  perfq_map* cov_raw = nullptr;
  ASSERT_EQ(
      perfq_local_cov(fit.cbf.data(), p.brain.data(), dims, spacing, 8.0, cpu.get(), &cov_raw),
      PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_map, perfq_map_destroy> cov(cov_raw);
  EXPECT_TRUE(same_bits(perfq_map_data(cov.get()),
                        perfq::local_cov(fit.cbf, p.brain.view(), 8.0, cpp_cpu)));

  // Atlas and timing zones combined, then split by tissue.
  const perfq::BorderZones atlas =
      perfq::border_zones(p.territories, p.brain.view(), 16.0, cpp_cpu);
  for (const auto how : {PERFQ_COMBINE_UNION, PERFQ_COMBINE_INTERSECTION}) {
    perfq_mask* combined_raw = nullptr;
    ASSERT_EQ(perfq_combine_masks(atlas.mask.data(), cpp_att_zones.mask.data(), dims, spacing, how,
                                  &combined_raw),
              PERFQ_OK);
    Owned<perfq_mask, perfq_mask_destroy> combined(combined_raw);
    EXPECT_TRUE(same_mask(
        combined.get(),
        perfq::combine_masks(atlas.mask, cpp_att_zones.mask,
                             how == PERFQ_COMBINE_UNION ? perfq::Combination::Union
                                                        : perfq::Combination::Intersection)));
  }
  perfq_mask* internal_raw = nullptr;
  perfq_mask* external_raw = nullptr;
  ASSERT_EQ(perfq_split_internal_external(atlas.mask.data(), wm.data(), gm.data(), dims, spacing,
                                          &internal_raw, &external_raw),
            PERFQ_OK);
  Owned<perfq_mask, perfq_mask_destroy> internal(internal_raw), external(external_raw);
  const perfq::SplitZones split = perfq::split_internal_external(atlas.mask, wm, gm.view());
  EXPECT_TRUE(same_mask(internal.get(), split.internal));
  EXPECT_TRUE(same_mask(external.get(), split.external));

  // Regional statistics of CBF per territory: selected labels, percentiles, PV weights and a
  // baseline (the truth).
  perfq_stats_options* stats_raw = nullptr;
  ASSERT_EQ(perfq_stats_options_create(&stats_raw), PERFQ_OK);
  Owned<perfq_stats_options, perfq_stats_options_destroy> stats(stats_raw);
  const std::int32_t selected[3] = {3, 1, 2};
  const double percentiles[2] = {10.0, 90.0};
  ASSERT_EQ(perfq_stats_options_set_labels(stats.get(), selected, 3), PERFQ_OK);
  ASSERT_EQ(perfq_stats_options_set_percentiles(stats.get(), percentiles, 2), PERFQ_OK);
  perfq_region_table* table_raw = nullptr;
  ASSERT_EQ(perfq_region_stats_with_options(fit.cbf.data(), p.territories.data(), dims, spacing,
                                            p.brain.data(), gm_fraction.data(), p.cbf.data(),
                                            stats.get(), cpu.get(), &table_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_region_table, perfq_region_table_destroy> table(table_raw);
  perfq::StatsOptions cpp_stats;
  cpp_stats.labels = {3, 1, 2};
  cpp_stats.percentiles = {10.0, 90.0};
  cpp_stats.mask = p.brain.view();
  cpp_stats.weights = gm_fraction.view();
  cpp_stats.baseline = p.cbf.view();
  const perfq::RegionTable cpp_table =
      perfq::region_stats(fit.cbf, p.territories.view(), cpp_stats, cpp_cpu);
  ASSERT_EQ(perfq_region_table_size(table.get()), 3u);
  EXPECT_EQ(perfq_region_table_is_weighted(table.get()), 1);
  EXPECT_EQ(perfq_region_table_is_paired(table.get()), 1);
  expect_same_table(table.get(), cpp_table);
  for (const perfq::RegionStats& s : cpp_table.regions) {
    EXPECT_TRUE(s.weighted.defined && s.change.defined) << "region " << s.label;
  }

  // Normal-appearing white matter and the lesion-in-watershed enrichment.
  perfq_mask* nawm_raw = nullptr;
  ASSERT_EQ(perfq_normal_appearing_white_matter(wm.data(), p.lesions.data(), dims, spacing, 6.0,
                                                cpu.get(), &nawm_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_mask, perfq_mask_destroy> nawm(nawm_raw);
  EXPECT_TRUE(
      same_mask(nawm.get(), perfq::normal_appearing_white_matter(wm, p.lesions, 6.0, cpp_cpu)));
  perfq_lesion_enrichment e{};
  ASSERT_EQ(perfq_lesion_watershed_enrichment(p.lesions.data(), atlas.mask.data(), wm.data(), dims,
                                              spacing, &e),
            PERFQ_OK);
  const perfq::LesionEnrichment cpp_e =
      perfq::lesion_watershed_enrichment(p.lesions, atlas.mask, wm);
  EXPECT_EQ(e.lesion_voxels, cpp_e.lesion_voxels);
  EXPECT_EQ(e.lesion_in_watershed, cpp_e.lesion_in_watershed);
  EXPECT_EQ(e.wm_voxels, cpp_e.wm_voxels);
  EXPECT_EQ(e.watershed_in_wm, cpp_e.watershed_in_wm);
  EXPECT_EQ(e.lesion_volume_ml, cpp_e.lesion_volume_ml);
  EXPECT_EQ(e.lesion_in_watershed_ml, cpp_e.lesion_in_watershed_ml);
  EXPECT_EQ(e.lesion_fraction, cpp_e.lesion_fraction);
  EXPECT_EQ(e.watershed_fraction, cpp_e.watershed_fraction);
  EXPECT_EQ(e.enrichment_defined, cpp_e.enrichment_defined ? 1 : 0);
  EXPECT_EQ(std::memcmp(&e.enrichment, &cpp_e.enrichment, sizeof(double)), 0);
  EXPECT_TRUE(cpp_e.enrichment_defined);

  // Partial-volume correction of the fitted CBF, only fitted voxels used.
  perfq_pvc_options* pvc_options_raw = nullptr;
  ASSERT_EQ(perfq_pvc_options_create(&pvc_options_raw), PERFQ_OK);
  Owned<perfq_pvc_options, perfq_pvc_options_destroy> pvc_options(pvc_options_raw);
  ASSERT_EQ(perfq_pvc_options_set_kernel(pvc_options.get(), 3, 3), PERFQ_OK);
  ASSERT_EQ(perfq_pvc_options_set_min_fraction(pvc_options.get(), 0.15), PERFQ_OK);
  perfq_pvc_maps* pvc_raw = nullptr;
  ASSERT_EQ(
      perfq_partial_volume_correct(fit.cbf.data(), gm_fraction.data(), wm_fraction.data(), dims,
                                   spacing, usable.data(), pvc_options.get(), cpu.get(), &pvc_raw),
      PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_pvc_maps, perfq_pvc_maps_destroy> pvc(pvc_raw);
  perfq::PvcOptions cpp_pvc_options;
  cpp_pvc_options.kernel_xy = 3;
  cpp_pvc_options.kernel_z = 3;
  cpp_pvc_options.min_fraction = 0.15;
  const perfq::PvcMaps cpp_pvc = perfq::partial_volume_correct(
      fit.cbf, gm_fraction, wm_fraction, usable.view(), cpp_pvc_options, cpp_cpu);
  ASSERT_EQ(perfq_pvc_maps_voxel_count(pvc.get()), n);
  EXPECT_TRUE(same_bits(perfq_pvc_maps_cbf_gm(pvc.get()), cpp_pvc.cbf_gm));
  EXPECT_TRUE(same_bits(perfq_pvc_maps_cbf_wm(pvc.get()), cpp_pvc.cbf_wm));
  EXPECT_TRUE(same_bits(perfq_pvc_maps_valid(pvc.get()), cpp_pvc.valid));
}

TEST(CApi, MaskOperationsEqualTheCxxApiBitwiseOnThePhantom) {
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.voxel_mm = 5.0;
  const perfq::Phantom p = perfq::make_phantom(o);
  // The C API's grids have no origin or direction cosines: the C++ side gets the same.
  perfq::Geometry geo;
  geo.dims = p.m0.geometry().dims;
  geo.spacing = p.m0.geometry().spacing;
  const std::size_t dims[3] = {geo.dims[0], geo.dims[1], geo.dims[2]};
  const double spacing[3] = {geo.spacing[0], geo.spacing[1], geo.spacing[2]};
  const std::size_t n = geo.voxel_count();
  auto plain = [&geo](const auto& image) {
    using T = std::remove_const_t<std::remove_pointer_t<decltype(image.data())>>;
    return perfq::View<const T>{image.data(), geo, 1};
  };
  const OwnedExecution cpu = c_execution();
  const perfq::Execution cpp_cpu = cpp_cpu_execution();

  // Territories grouped: ACA and MCA into one, PCA kept as 2.
  const std::int32_t from[3] = {1, 2, 3}, to[3] = {1, 1, 2};
  perfq_label_image* grouped_raw = nullptr;
  ASSERT_EQ(perfq_group_territories(p.territories.data(), dims, spacing, from, to, 3, &grouped_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_label_image, perfq_label_image_destroy> grouped(grouped_raw);
  const perfq::Volume<std::int32_t> cpp_grouped =
      perfq::group_territories(plain(p.territories), {{1, 1}, {2, 1}, {3, 2}});
  ASSERT_EQ(perfq_label_image_voxel_count(grouped.get()), n);
  EXPECT_TRUE(same_bits(perfq_label_image_data(grouped.get()), cpp_grouped));
  EXPECT_GT(std::count(cpp_grouped.data(), cpp_grouped.data() + n, 2), 0);

  // Border zones of the grouped territories, thresholded CBF and their Dice overlap.
  const perfq::BorderZones zones =
      perfq::border_zones(cpp_grouped.view(), plain(p.brain), 12.0, cpp_cpu);
  perfq_mask* late_raw = nullptr;
  ASSERT_EQ(perfq_threshold_map(p.att.data(), dims, spacing, 1.1, &late_raw), PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_mask, perfq_mask_destroy> late(late_raw);
  const perfq::Mask cpp_late = perfq::threshold_map(plain(p.att), 1.1);
  EXPECT_TRUE(same_mask(late.get(), cpp_late));
  double dice = -1.0;
  ASSERT_EQ(perfq_dice(zones.mask.data(), cpp_late.data(), dims, spacing, &dice), PERFQ_OK);
  const double cpp_dice = perfq::dice(zones.mask.view(), cpp_late.view());
  EXPECT_EQ(std::memcmp(&dice, &cpp_dice, sizeof dice), 0);
  EXPECT_GT(cpp_dice, 0.0);
  EXPECT_LT(cpp_dice, 1.0);

  // Small components of the late-arrival mask, both connectivities.
  for (const auto connectivity : {PERFQ_CONNECTIVITY_6, PERFQ_CONNECTIVITY_26}) {
    perfq_component_summary summary{};
    perfq_mask* kept_raw = nullptr;
    ASSERT_EQ(perfq_drop_small_components(cpp_late.data(), dims, spacing, 2.0, connectivity,
                                          &summary, &kept_raw),
              PERFQ_OK)
        << perfq_last_error();
    Owned<perfq_mask, perfq_mask_destroy> kept(kept_raw);
    const perfq::CleanedMask cpp_kept = perfq::drop_small_components(
        cpp_late.view(), 2.0,
        connectivity == PERFQ_CONNECTIVITY_6 ? perfq::Connectivity::Faces6
                                             : perfq::Connectivity::Full26);
    EXPECT_TRUE(same_mask(kept.get(), cpp_kept.mask));
    EXPECT_EQ(summary.components_kept, cpp_kept.kept);
    EXPECT_EQ(summary.components_dropped, cpp_kept.dropped);
    EXPECT_EQ(summary.voxels_dropped, cpp_kept.voxels_dropped);
    EXPECT_GT(cpp_kept.kept, 0u);
  }

  // Periventricular caps with options, inside the brain.
  perfq_cap_options* cap_options_raw = nullptr;
  ASSERT_EQ(perfq_cap_options_create(&cap_options_raw), PERFQ_OK);
  Owned<perfq_cap_options, perfq_cap_options_destroy> cap_options(cap_options_raw);
  ASSERT_EQ(perfq_cap_options_set_distance(cap_options.get(), 12.0), PERFQ_OK);
  ASSERT_EQ(perfq_cap_options_set_horn_fraction(cap_options.get(), 0.3), PERFQ_OK);
  perfq_mask* caps_raw = nullptr;
  ASSERT_EQ(perfq_periventricular_caps(p.ventricles.data(), p.brain.data(), dims, spacing,
                                       cap_options.get(), cpu.get(), &caps_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_mask, perfq_mask_destroy> caps(caps_raw);
  perfq::CapOptions cpp_cap_options;
  cpp_cap_options.distance_mm = 12.0;
  cpp_cap_options.horn_fraction = 0.3;
  const perfq::Volume<std::uint8_t> cpp_caps =
      perfq::periventricular_caps(plain(p.ventricles), plain(p.brain), cpp_cap_options, cpp_cpu);
  EXPECT_TRUE(same_mask(caps.get(), cpp_caps));
  EXPECT_GT(std::count(cpp_caps.data(), cpp_caps.data() + n, perfq::kFrontalCap), 0);
  EXPECT_GT(std::count(cpp_caps.data(), cpp_caps.data() + n, perfq::kOccipitalCap), 0);
}

/// Whether a C time-encoding handle holds the C++ encoding (matrix, timing) bit for bit.
void expect_same_encoding(const perfq_time_encoding* c, const perfq::TimeEncoding& cpp) {
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(perfq_time_encoding_cycles(c), cpp.matrix.cycles);
  ASSERT_EQ(perfq_time_encoding_sub_boli(c), cpp.matrix.sub_boli());
  const std::vector<std::int32_t> entries(cpp.matrix.entries.begin(), cpp.matrix.entries.end());
  EXPECT_TRUE(same_bits(perfq_time_encoding_matrix(c), entries));
  EXPECT_TRUE(same_bits(perfq_time_encoding_sub_bolus_durations(c), cpp.sub_bolus_duration));
  EXPECT_TRUE(same_bits(perfq_time_encoding_sub_bolus_delays(c), cpp.sub_bolus_pld));
}

TEST(CApi, TimeEncodedDecodingAndFitEqualTheCxxApiBitwiseOnThePhantom) {
  // A noisy Hadamard-8 phantom with unequal sub-boli, built, decoded and fitted both ways.
  const double durations[7] = {0.5, 0.45, 0.4, 0.35, 0.3, 0.3, 0.3};
  const double final_pld = 0.2;
  const std::size_t grid[3] = {24, 28, 20};
  perfq::PhantomOptions o;
  o.delays = {final_pld};
  o.repeats = 3;
  o.snr = 8.0;
  o.seed = 5;
  o.dims = {24, 28, 20};
  o.voxel_mm = 5.0;
  o.time_encoded = 8;
  o.sub_bolus_durations.assign(durations, durations + 7);
  const perfq::Phantom p = perfq::make_phantom(o);
  ASSERT_TRUE(p.time_encoding.has_value());

  perfq_phantom_options* options_raw = nullptr;
  ASSERT_EQ(perfq_phantom_options_create(&options_raw), PERFQ_OK);
  Owned<perfq_phantom_options, perfq_phantom_options_destroy> options(options_raw);
  ASSERT_EQ(perfq_phantom_options_set_delays(options.get(), &final_pld, 1, 3), PERFQ_OK);
  ASSERT_EQ(perfq_phantom_options_set_noise(options.get(), 8.0, 5), PERFQ_OK);
  ASSERT_EQ(perfq_phantom_options_set_grid(options.get(), grid, 5.0), PERFQ_OK);
  ASSERT_EQ(perfq_phantom_options_set_time_encoded(options.get(), 8, "Hadamard", durations, 7),
            PERFQ_OK)
      << perfq_last_error();
  perfq_phantom* phantom_raw = nullptr;
  ASSERT_EQ(perfq_phantom_create(options.get(), &phantom_raw), PERFQ_OK) << perfq_last_error();
  Owned<perfq_phantom, perfq_phantom_destroy> phantom(phantom_raw);
  std::size_t dims[3], volumes = 0;
  double spacing[3];
  ASSERT_EQ(perfq_phantom_geometry(phantom.get(), dims, spacing), PERFQ_OK);
  const float* series = perfq_phantom_series(phantom.get(), &volumes);
  ASSERT_EQ(volumes, 24u);
  EXPECT_TRUE(same_bits(series, p.asl));
  EXPECT_TRUE(same_bits(perfq_phantom_map_data(phantom.get(), PERFQ_PHANTOM_ATT), p.att));

  // The encoding: from the phantom, generated, and given as a square matrix.
  perfq_time_encoding* encoding_raw = nullptr;
  ASSERT_EQ(perfq_phantom_time_encoding(phantom.get(), &encoding_raw), PERFQ_OK);
  Owned<perfq_time_encoding, perfq_time_encoding_destroy> encoding(encoding_raw);
  expect_same_encoding(encoding.get(), *p.time_encoding);
  EXPECT_EQ(std::string(perfq_time_encoding_source(encoding.get())),
            p.time_encoding->matrix_source);
  const perfq::TimeEncoding cpp_generated =
      perfq::make_time_encoding(perfq::encoding_matrix(perfq::TimeEncodedMatrixType::Hadamard, 8),
                                o.sub_bolus_durations, final_pld);
  perfq_time_encoding* generated_raw = nullptr;
  ASSERT_EQ(perfq_time_encoding_create("natural", 8, durations, 7, final_pld, &generated_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_time_encoding, perfq_time_encoding_destroy> generated(generated_raw);
  expect_same_encoding(generated.get(), cpp_generated);
  std::vector<std::int32_t> square;
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < 8; ++i) {
    square.push_back(1);
    rows.push_back({1.0});
    for (std::size_t k = 0; k < 7; ++k) {
      square.push_back(p.time_encoding->matrix.at(i, k));
      rows.back().push_back(p.time_encoding->matrix.at(i, k));
    }
  }
  perfq_time_encoding* given_raw = nullptr;
  ASSERT_EQ(
      perfq_time_encoding_from_matrix(square.data(), 8, 8, durations, 7, final_pld, &given_raw),
      PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_time_encoding, perfq_time_encoding_destroy> given(given_raw);
  expect_same_encoding(given.get(),
                       perfq::make_time_encoding(perfq::encoding_matrix_from_rows(rows),
                                                 o.sub_bolus_durations, final_pld));
  // Walsh 4 with its own timing.
  const double walsh_durations[3] = {0.7, 0.6, 0.5};
  perfq_time_encoding* walsh_raw = nullptr;
  ASSERT_EQ(perfq_time_encoding_create("Walsh", 4, walsh_durations, 3, 1.1, &walsh_raw), PERFQ_OK);
  Owned<perfq_time_encoding, perfq_time_encoding_destroy> walsh(walsh_raw);
  expect_same_encoding(
      walsh.get(),
      perfq::make_time_encoding(perfq::encoding_matrix(perfq::TimeEncodedMatrixType::Walsh, 4),
                                {0.7, 0.6, 0.5}, 1.1));

  // Plain decoding of every block.
  perfq_prepared* decoded_raw = nullptr;
  ASSERT_EQ(perfq_decode_time_encoded(series, volumes, dims, spacing, encoding.get(), &decoded_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_prepared, perfq_prepared_destroy> decoded(decoded_raw);
  const perfq::Series<float> cpp_decoded =
      perfq::decode_time_encoded(p.asl, p.time_encoding->matrix);
  std::size_t decoded_volumes = 0;
  const float* decoded_dm = perfq_prepared_delta_m(decoded.get(), &decoded_volumes);
  ASSERT_EQ(decoded_volumes, 21u);
  EXPECT_TRUE(same_bits(decoded_dm, cpp_decoded));
  for (std::size_t v = 0; v < decoded_volumes; ++v) {
    EXPECT_EQ(perfq_prepared_delays(decoded.get())[v], p.time_encoding->sub_bolus_pld[v % 7]);
    EXPECT_EQ(perfq_prepared_labeling_durations(decoded.get())[v],
              p.time_encoding->sub_bolus_duration[v % 7]);
  }

  // The whole preparation: averaged sub-boli by increasing delay.
  perfq_protocol* protocol_raw = nullptr;
  ASSERT_EQ(perfq_phantom_protocol(phantom.get(), &protocol_raw), PERFQ_OK);
  Owned<perfq_protocol, perfq_protocol_destroy> protocol(protocol_raw);
  perfq_prepared* prepared_raw = nullptr;
  ASSERT_EQ(perfq_prepare_time_encoded(series, volumes, dims, spacing,
                                       perfq_phantom_context(phantom.get()), protocol.get(),
                                       encoding.get(), 0, nullptr, &prepared_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_prepared, perfq_prepared_destroy> prepared(prepared_raw);
  const perfq::PreparedAsl cpp_prepared =
      perfq::prepare_time_encoded(p.asl, p.context, p.protocol, *p.time_encoding);
  std::size_t delta_volumes = 0;
  const float* delta_m = perfq_prepared_delta_m(prepared.get(), &delta_volumes);
  ASSERT_EQ(delta_volumes, 7u);
  EXPECT_TRUE(same_bits(delta_m, cpp_prepared.delta_m));
  EXPECT_TRUE(same_bits(perfq_prepared_delays(prepared.get()), cpp_prepared.post_labeling_delay));
  EXPECT_TRUE(
      same_bits(perfq_prepared_labeling_durations(prepared.get()), cpp_prepared.labeling_duration));
  EXPECT_TRUE(same_bits(perfq_prepared_repeats(prepared.get()), cpp_prepared.repeats));
  EXPECT_EQ(perfq_prepared_m0(prepared.get()), nullptr);

  // With outlier rejection inside the brain.
  perfq_prepared* robust_raw = nullptr;
  ASSERT_EQ(perfq_prepare_time_encoded(
                series, volumes, dims, spacing, perfq_phantom_context(phantom.get()),
                protocol.get(), encoding.get(), 1,
                perfq_phantom_mask_data(phantom.get(), PERFQ_PHANTOM_BRAIN), &robust_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_prepared, perfq_prepared_destroy> robust(robust_raw);
  perfq::AveragingOptions averaging;
  averaging.robust = true;
  averaging.mask = p.brain.view();
  const perfq::PreparedAsl cpp_robust =
      perfq::prepare_time_encoded(p.asl, p.context, p.protocol, *p.time_encoding, averaging);
  EXPECT_TRUE(same_bits(perfq_prepared_delta_m(robust.get(), nullptr), cpp_robust.delta_m));

  // The multi-delay fit of the sub-boli, weighted by the blocks averaged.
  ASSERT_EQ(perfq_protocol_set_delays(protocol.get(), perfq_prepared_delays(prepared.get()), 7),
            PERFQ_OK);
  ASSERT_EQ(perfq_protocol_set_labeling_durations(
                protocol.get(), perfq_prepared_labeling_durations(prepared.get()), 7),
            PERFQ_OK);
  std::vector<double> weights(cpp_prepared.repeats.begin(), cpp_prepared.repeats.end());
  perfq_kinetic_options* kinetic_raw = nullptr;
  ASSERT_EQ(perfq_kinetic_options_create(&kinetic_raw), PERFQ_OK);
  Owned<perfq_kinetic_options, perfq_kinetic_options_destroy> kinetic(kinetic_raw);
  ASSERT_EQ(perfq_kinetic_options_set_model(kinetic.get(), "whitepaper"), PERFQ_OK);
  ASSERT_EQ(perfq_kinetic_options_set_weights(kinetic.get(), weights.data(), 7), PERFQ_OK);
  const OwnedExecution cpu = c_execution();
  const OwnedFit fit = fit_phantom(delta_m, 7, dims, spacing, phantom.get(), protocol.get(),
                                   kinetic.get(), cpu.get());
  ASSERT_NE(fit, nullptr);
  const perfq::AslProtocol& cpp_protocol = cpp_prepared.protocol;
  perfq::KineticOptions cpp_options;
  cpp_options.variant = perfq::parse_kinetic_variant("whitepaper");
  cpp_options.weights = weights;
  const perfq::KineticFit cpp_fit = perfq::fit_kinetic(
      cpp_prepared.delta_m, perfq::M0Source::from_image(p.m0), cpp_protocol,
      perfq::Physiology::at_field(3.0), cpp_options, p.brain.view(), cpp_cpu_execution());
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_CBF), cpp_fit.cbf));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_ATT), cpp_fit.att));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_map(fit.get(), PERFQ_KINETIC_CBF_SE), cpp_fit.cbf_se));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_status(fit.get()), cpp_fit.status));
  EXPECT_TRUE(same_bits(perfq_kinetic_fit_iterations(fit.get()), cpp_fit.iterations));
}

TEST(CApi, DistancesAndDilationEqualTheCxxApiBitwiseOnThePhantom) {
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.voxel_mm = 5.0;
  const perfq::Phantom p = perfq::make_phantom(o);
  perfq::Geometry geo;
  geo.dims = p.m0.geometry().dims;
  geo.spacing = {5.0, 4.0, 6.0};  // anisotropic: the C grid's spacing must reach the transforms
  const std::size_t dims[3] = {geo.dims[0], geo.dims[1], geo.dims[2]};
  const double spacing[3] = {5.0, 4.0, 6.0};
  const perfq::View<const std::uint8_t> ventricles{p.ventricles.data(), geo, 1};
  const perfq::View<const std::uint8_t> brain{p.brain.data(), geo, 1};
  for (const char* backend : {"cpu", "auto"}) {
    SCOPED_TRACE(backend);
    const OwnedExecution execution = c_execution(backend);
    perfq::Execution cpp_execution;
    cpp_execution.backend = perfq::parse_backend(backend);

    for (const int signed_distance : {0, 1}) {
      for (const int use_spacing : {0, 1}) {
        perfq_map* map_raw = nullptr;
        ASSERT_EQ(perfq_distance_map(p.brain.data(), dims, spacing, signed_distance, use_spacing,
                                     execution.get(), &map_raw),
                  PERFQ_OK)
            << perfq_last_error();
        Owned<perfq_map, perfq_map_destroy> map(map_raw);
        perfq::DistanceOptions cpp_options;
        cpp_options.signed_distance = signed_distance != 0;
        cpp_options.use_spacing = use_spacing != 0;
        const perfq::Volume<float> cpp_map = perfq::distance_map(brain, cpp_options, cpp_execution);
        ASSERT_EQ(perfq_map_voxel_count(map.get()), cpp_map.size());
        EXPECT_TRUE(same_bits(perfq_map_data(map.get()), cpp_map))
            << "signed " << signed_distance << ", spacing " << use_spacing;
      }
    }
    for (const int use_spacing : {0, 1}) {
      perfq_double_map* squared_raw = nullptr;
      ASSERT_EQ(perfq_squared_distance_map(p.ventricles.data(), dims, spacing, use_spacing,
                                           execution.get(), &squared_raw),
                PERFQ_OK)
          << perfq_last_error();
      Owned<perfq_double_map, perfq_double_map_destroy> squared(squared_raw);
      const perfq::Volume<double> cpp_squared =
          perfq::squared_distance_map(ventricles, use_spacing != 0, cpp_execution);
      ASSERT_EQ(perfq_double_map_voxel_count(squared.get()), cpp_squared.size());
      EXPECT_TRUE(same_bits(perfq_double_map_data(squared.get()), cpp_squared))
          << "spacing " << use_spacing;
    }
    for (const double radius : {0.0, 7.5, 12.0}) {
      perfq_mask* dilated_raw = nullptr;
      ASSERT_EQ(
          perfq_dilate(p.ventricles.data(), dims, spacing, radius, execution.get(), &dilated_raw),
          PERFQ_OK)
          << perfq_last_error();
      Owned<perfq_mask, perfq_mask_destroy> dilated(dilated_raw);
      const perfq::Mask cpp_dilated = perfq::dilate(ventricles, radius, cpp_execution);
      EXPECT_TRUE(same_mask(dilated.get(), cpp_dilated)) << "radius " << radius;
    }
  }
}

/// The C++ constants behind a C struct filled by perfq_resolve_constants, field by field, bit
/// for bit (the sources, strings, have no C field).
void expect_same_constants(const perfq_constants& c, const perfq::ResolvedConstants& cpp) {
  const double got[] = {c.blood_brain_partition,
                        c.t1_blood,
                        c.t1_tissue,
                        c.labeling_efficiency,
                        c.background_suppression_factor,
                        c.effective_labeling_efficiency,
                        c.m0_scale};
  const double expected[] = {cpp.blood_brain_partition,
                             cpp.t1_blood,
                             cpp.t1_tissue,
                             cpp.labeling_efficiency,
                             cpp.background_suppression_factor,
                             cpp.effective_labeling_efficiency,
                             cpp.m0_scale};
  for (std::size_t k = 0; k < 7; ++k) {
    EXPECT_EQ(std::memcmp(&got[k], &expected[k], sizeof got[k]), 0) << "field " << k;
  }
}

TEST(CApi, ConstantsFactorAndProtocolChecksEqualTheCxxApiBitwise) {
  // Protocols that exercise every branch of resolve_constants: labeling types, a stated
  // efficiency, background suppression from pulses or stated, a short-TR M0, 1.5 T.
  struct Case {
    perfq_labeling_type c_type;
    perfq::LabelingType type;
    double stated_efficiency;  // 0: none
    int pulses;
    double bs_efficiency;  // 0: from the pulses
    double m0_tr;          // 0: fully relaxed
    double tesla;
    bool with_physiology;  // a physiology handle with an α override and λ 0.98
  };
  const Case cases[] = {
      {PERFQ_LABELING_PCASL, perfq::LabelingType::Pcasl, 0.0, 0, 0.0, 0.0, 3.0, false},
      {PERFQ_LABELING_PCASL, perfq::LabelingType::Pcasl, 0.0, 4, 0.0, 2.0, 3.0, false},
      {PERFQ_LABELING_PCASL, perfq::LabelingType::Pcasl, 0.88, 2, 0.9, 4.2, 1.5, false},
      {PERFQ_LABELING_PASL, perfq::LabelingType::Pasl, 0.0, 3, 0.0, 0.0, 1.5, false},
      {PERFQ_LABELING_CASL, perfq::LabelingType::Casl, 0.0, 0, 0.0, 1.1, 3.0, true},
      {PERFQ_LABELING_PASL, perfq::LabelingType::Pasl, 0.95, 5, 0.0, 3.3, 3.0, true},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(perfq::to_string(k.type)) + " BS " + std::to_string(k.pulses) +
                 " TR " + std::to_string(k.m0_tr) + " B0 " + std::to_string(k.tesla));
    perfq_protocol* protocol_raw = nullptr;
    ASSERT_EQ(perfq_protocol_create(&protocol_raw), PERFQ_OK);
    Owned<perfq_protocol, perfq_protocol_destroy> protocol(protocol_raw);
    perfq::AslProtocol cpp;
    ASSERT_EQ(perfq_protocol_set_labeling(protocol.get(), k.c_type), PERFQ_OK);
    cpp.labeling_type = k.type;
    if (k.stated_efficiency > 0) {
      ASSERT_EQ(perfq_protocol_set_labeling_efficiency(protocol.get(), k.stated_efficiency),
                PERFQ_OK);
      cpp.labeling_efficiency = k.stated_efficiency;
    }
    ASSERT_EQ(perfq_protocol_set_background_suppression(protocol.get(), k.pulses, k.bs_efficiency),
              PERFQ_OK);
    cpp.background_suppression.enabled = k.pulses > 0 || k.bs_efficiency > 0;
    cpp.background_suppression.pulses = k.pulses;
    if (k.bs_efficiency > 0) cpp.background_suppression.efficiency = k.bs_efficiency;
    ASSERT_EQ(perfq_protocol_set_m0_repetition_time(protocol.get(), k.m0_tr), PERFQ_OK);
    if (k.m0_tr > 0) cpp.m0_repetition_time = k.m0_tr;
    ASSERT_EQ(perfq_protocol_set_field_strength(protocol.get(), k.tesla), PERFQ_OK);
    cpp.magnetic_field_strength = k.tesla;

    perfq_physiology* physiology_raw = nullptr;
    perfq::Physiology cpp_physiology = perfq::Physiology::at_field(k.tesla);
    if (k.with_physiology) {
      ASSERT_EQ(perfq_physiology_create(k.tesla, &physiology_raw), PERFQ_OK);
      ASSERT_EQ(perfq_physiology_set_labeling_efficiency(physiology_raw, 0.77), PERFQ_OK);
      ASSERT_EQ(perfq_physiology_set_partition_coefficient(physiology_raw, 0.98), PERFQ_OK);
      cpp_physiology.labeling_efficiency = 0.77;
      cpp_physiology.blood_brain_partition = 0.98;
    }
    Owned<perfq_physiology, perfq_physiology_destroy> physiology(physiology_raw);

    perfq_constants c{};
    ASSERT_EQ(perfq_resolve_constants(protocol.get(), physiology.get(), &c), PERFQ_OK)
        << perfq_last_error();
    const perfq::ResolvedConstants cpp_constants = perfq::resolve_constants(cpp, cpp_physiology);
    expect_same_constants(c, cpp_constants);

    // The factor over delays (with slice offsets) and durations.
    for (const double delay : {0.0, 0.7, 1.8, 2.0 + 0.0437, 3.5}) {
      for (const double duration : {0.4, 1.8}) {
        double factor = 0;
        ASSERT_EQ(perfq_single_delay_factor(k.c_type, delay, duration, duration, &c, &factor),
                  PERFQ_OK)
            << perfq_last_error();
        const double expected =
            perfq::single_delay_factor(k.type, delay, duration, duration, cpp_constants);
        EXPECT_EQ(std::memcmp(&factor, &expected, sizeof factor), 0)
            << "delay " << delay << " duration " << duration;
      }
    }
  }

  // Out-of-range physiology: the C++ message, after the function's name.
  {
    perfq_protocol* protocol_raw = nullptr;
    ASSERT_EQ(perfq_protocol_create(&protocol_raw), PERFQ_OK);
    Owned<perfq_protocol, perfq_protocol_destroy> protocol(protocol_raw);
    perfq_physiology* physiology_raw = nullptr;
    ASSERT_EQ(perfq_physiology_create(3.0, &physiology_raw), PERFQ_OK);
    Owned<perfq_physiology, perfq_physiology_destroy> physiology(physiology_raw);
    ASSERT_EQ(perfq_physiology_set_t1_tissue(physiology.get(), 12.0), PERFQ_OK);
    perfq::Physiology cpp_physiology = perfq::Physiology::at_field(3.0);
    cpp_physiology.t1_tissue = 12.0;
    std::string cpp_message;
    try {
      perfq::resolve_constants(perfq::AslProtocol{}, cpp_physiology);
    } catch (const perfq::InvalidArgument& e) {
      cpp_message = e.what();
    }
    ASSERT_FALSE(cpp_message.empty());
    perfq_constants c{};
    EXPECT_EQ(perfq_resolve_constants(protocol.get(), physiology.get(), &c),
              PERFQ_ERROR_INVALID_ARGUMENT);
    EXPECT_EQ(std::string(perfq_last_error()), "perfq_resolve_constants: " + cpp_message);
  }

  // validate_protocol: the same verdict, and the C++ message (file, field, expectation)
  // after the function's name.
  {
    struct Check {
      std::vector<double> delays, durations, slice_times;
      bool pasl;
      std::size_t volumes, slices;
    };
    const Check checks[] = {
        {{}, {1.8}, {}, false, 8, 4},                  // PostLabelingDelay required
        {{1.8}, {}, {}, false, 8, 4},                  // LabelingDuration required
        {{1.8}, {}, {}, true, 8, 4},                   // PASL: no duration needed
        {{1.0, 1.5, 2.0}, {1.8}, {}, false, 8, 4},     // 3 delays for 8 volumes
        {{1.0, 1.5, 2.0}, {1.8}, {}, false, 3, 4},     // one per volume
        {{1.8}, {1.8, 1.8}, {}, false, 3, 4},          // 2 durations for 3 volumes
        {{1.8}, {1.8}, {0.0, 0.05}, false, 8, 4},      // 2 slice times for 4 slices
        {{1.8}, {1.8}, {0.0, 0.05, 0.1}, false, 8, 3}  // one per slice
    };
    for (const Check& k : checks) {
      perfq_protocol* protocol_raw = nullptr;
      ASSERT_EQ(perfq_protocol_create(&protocol_raw), PERFQ_OK);
      Owned<perfq_protocol, perfq_protocol_destroy> protocol(protocol_raw);
      perfq::AslProtocol cpp;
      if (k.pasl) {
        ASSERT_EQ(perfq_protocol_set_labeling(protocol.get(), PERFQ_LABELING_PASL), PERFQ_OK);
        cpp.labeling_type = perfq::LabelingType::Pasl;
      }
      if (!k.delays.empty()) {
        ASSERT_EQ(perfq_protocol_set_delays(protocol.get(), k.delays.data(), k.delays.size()),
                  PERFQ_OK);
      }
      if (!k.durations.empty()) {
        ASSERT_EQ(perfq_protocol_set_labeling_durations(protocol.get(), k.durations.data(),
                                                        k.durations.size()),
                  PERFQ_OK);
      }
      ASSERT_EQ(perfq_protocol_set_slice_timing(protocol.get(), k.slice_times.data(),
                                                k.slice_times.size()),
                PERFQ_OK);
      cpp.post_labeling_delay = k.delays;
      cpp.labeling_duration = k.durations;
      cpp.slice_timing = k.slice_times;
      cpp.readout = k.slice_times.empty() ? perfq::Readout::ThreeD : perfq::Readout::TwoD;
      std::string cpp_message;
      try {
        perfq::validate_protocol(cpp, k.volumes, k.slices, "sub-01_asl.json");
      } catch (const perfq::InputError& e) {
        cpp_message = e.what();
      }
      const perfq_status status =
          perfq_validate_protocol(protocol.get(), k.volumes, k.slices, "sub-01_asl.json");
      if (cpp_message.empty()) {
        EXPECT_EQ(status, PERFQ_OK) << perfq_last_error();
      } else {
        EXPECT_EQ(status, PERFQ_ERROR_INPUT);
        EXPECT_EQ(std::string(perfq_last_error()), "perfq_validate_protocol: " + cpp_message);
      }
    }
  }
}

TEST(CApi, StatisticsInAMaskEqualTheCxxApiBitwiseOnThePhantom) {
  perfq::PhantomOptions o;
  o.delays = {1.8};
  o.snr = 4.0;
  o.seed = 11;
  o.dims = {24, 28, 20};
  o.voxel_mm = 5.0;
  const perfq::Phantom p = perfq::make_phantom(o);
  const perfq::Geometry& geo = p.m0.geometry();
  const std::size_t dims[3] = {geo.dims[0], geo.dims[1], geo.dims[2]};
  const double spacing[3] = {geo.spacing[0], geo.spacing[1], geo.spacing[2]};
  const std::size_t n = p.m0.size();
  const OwnedExecution cpu = c_execution();
  const perfq::Execution cpp_cpu = cpp_cpu_execution();

  // Noisy single-delay CBF (0 outside the brain), a partial-volume map and the truth as the
  // baseline; a NaN in the zone to exercise the non-finite count.
  const perfq::PreparedAsl prepared = perfq::prepare_asl(p.asl, p.context, p.protocol);
  perfq::CbfMaps cbf =
      perfq::quantify_cbf(prepared.delta_m.volume(0), perfq::M0Source::from_image(p.m0), p.protocol,
                          perfq::Physiology::at_field(3.0), p.brain.view(), cpp_cpu);
  perfq::Volume<float> gm_fraction(geo);
  std::size_t in_zone = 0;
  for (std::size_t i = 0; i < n; ++i) {
    gm_fraction[i] = p.tissue[i] == perfq::kGreyMatter    ? 0.8f
                     : p.tissue[i] == perfq::kWhiteMatter ? 0.25f
                                                          : 0.0f;
    if (p.border_zone[i] != 0 && ++in_zone == 5) cbf.cbf[i] = std::nanf("");
  }
  ASSERT_GT(in_zone, 5u);

  perfq_stats_options* stats_raw = nullptr;
  ASSERT_EQ(perfq_stats_options_create(&stats_raw), PERFQ_OK);
  Owned<perfq_stats_options, perfq_stats_options_destroy> stats(stats_raw);
  const double percentiles[3] = {2.5, 50.0, 97.5};
  ASSERT_EQ(perfq_stats_options_set_percentiles(stats.get(), percentiles, 3), PERFQ_OK);

  // Defaults, then percentiles with weights and a baseline.
  for (const bool with_options : {false, true}) {
    SCOPED_TRACE(with_options ? "options, weights, baseline" : "defaults");
    perfq_region_table* table_raw = nullptr;
    ASSERT_EQ(
        perfq_region_stats_in_mask(cbf.cbf.data(), p.border_zone.data(), dims, spacing,
                                   with_options ? gm_fraction.data() : nullptr,
                                   with_options ? p.cbf.data() : nullptr,
                                   with_options ? stats.get() : nullptr, cpu.get(), &table_raw),
        PERFQ_OK)
        << perfq_last_error();
    Owned<perfq_region_table, perfq_region_table_destroy> table(table_raw);
    perfq::StatsOptions cpp_stats;
    if (with_options) {
      cpp_stats.percentiles = {2.5, 50.0, 97.5};
      cpp_stats.weights = gm_fraction.view();
      cpp_stats.baseline = p.cbf.view();
    }
    const perfq::RegionTable cpp_table =
        perfq::region_stats(cbf.cbf.view(), p.border_zone.view(), cpp_stats, cpp_cpu);
    ASSERT_EQ(cpp_table.regions.size(), 1u);
    EXPECT_EQ(cpp_table.regions[0].nonfinite, 1u);
    expect_same_table(table.get(), cpp_table);
  }
}

TEST(CApi, CudaDiscoveryEqualsTheCxxApi) {
  EXPECT_EQ(perfq_cuda_compiled(), perfq::cuda_compiled() ? 1 : 0);
  EXPECT_EQ(perfq_cuda_device_count(), perfq::cuda_device_count());
  EXPECT_EQ(std::string(perfq_cuda_unavailable_reason()), perfq::cuda_unavailable_reason());
  const std::vector<std::string> names = perfq::cuda_device_names();
  for (std::size_t d = 0; d < names.size(); ++d) {
    const char* name = perfq_cuda_device_name(static_cast<int>(d));
    ASSERT_NE(name, nullptr) << perfq_last_error();
    EXPECT_EQ(std::string(name), names[d]);
  }
  EXPECT_EQ(perfq_cuda_device_name(static_cast<int>(names.size())), nullptr);
  EXPECT_NE(std::string(perfq_last_error()).find("device"), std::string::npos);
}

}  // namespace
