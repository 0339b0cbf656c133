// The C API (perfq.h, here compiled as C++) gives the C++ API's results bit for bit on the
// phantom: the phantom itself, pairing, single- and multi-delay quantification, border zones
// and regional statistics.
#include <perfq/perfq.h>

#include <perfq/asl_series.hpp>
#include <perfq/cbf.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/phantom.hpp>
#include <perfq/stats.hpp>
#include <perfq/watershed.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

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

  perfq_execution* cpu_raw = nullptr;
  ASSERT_EQ(perfq_execution_create(&cpu_raw), PERFQ_OK);
  Owned<perfq_execution, perfq_execution_destroy> cpu(cpu_raw);
  ASSERT_EQ(perfq_execution_set_backend(cpu.get(), "cpu"), PERFQ_OK);
  perfq::Execution cpp_cpu;
  cpp_cpu.backend = perfq::Backend::Cpu;

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
  perfq_kinetic_fit* fit_raw = nullptr;
  ASSERT_EQ(perfq_fit_kinetic(delta_m, 4, dims, spacing,
                              perfq_phantom_map_data(phantom.get(), PERFQ_PHANTOM_M0), 0.0,
                              perfq_phantom_mask_data(phantom.get(), PERFQ_PHANTOM_BRAIN),
                              protocol.get(), nullptr, kinetic.get(), cpu.get(), &fit_raw),
            PERFQ_OK)
      << perfq_last_error();
  Owned<perfq_kinetic_fit, perfq_kinetic_fit_destroy> fit(fit_raw);
  perfq::AslProtocol cpp_multi = p.protocol;
  cpp_multi.post_labeling_delay = cpp_prepared.post_labeling_delay;
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

}  // namespace
