// libFuzzer target: `*_aslcontext.tsv` text through parse_aslcontext, then the volume types
// through prepare_asl (pairing and averaging) on a one-voxel series of as many volumes.
// Contract checked: only perfq's documented exceptions escape; no crash, leak or UB.
#include <perfq/asl_series.hpp>
#include <perfq/errors.hpp>
#include <perfq/image.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<perfq::VolumeType> context;
  try {
    context = perfq::io::parse_aslcontext(text, "fuzz_aslcontext.tsv");
  } catch (const perfq::InputError&) {
    return 0;
  }
  const std::size_t n = context.size();
  perfq::Geometry grid;  // one voxel
  grid.dims = {1, 1, 1};
  std::vector<float> values(n);
  for (std::size_t v = 0; v < n; ++v) values[v] = 100.0f + static_cast<float>(v % 7);
  const perfq::Series<float> series(grid, n, std::move(values));

  // One delay for all volumes, then one per volume (three distinct delays).
  perfq::AslProtocol single;
  single.post_labeling_delay = {1.8};
  single.labeling_duration = {1.8};
  perfq::AslProtocol multi = single;
  multi.post_labeling_delay.resize(n);
  multi.labeling_duration.assign(n, 1.8);
  for (std::size_t v = 0; v < n; ++v) multi.post_labeling_delay[v] = 1.0 + 0.5 * (v / 2 % 3);
  for (const perfq::AslProtocol* p : {&single, &multi}) {
    for (bool robust : {false, true}) {
      perfq::AveragingOptions options;
      options.robust = robust;
      try {
        (void)perfq::prepare_asl(series, context, *p, options, "fuzz_aslcontext.tsv");
      } catch (const perfq::InputError&) {
      }
    }
  }
  return 0;
}
