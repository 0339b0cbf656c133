// libFuzzer target: an ASL sidecar's JSON text through parse_asl_sidecar, then the protocol
// through validate_protocol (for a few series shapes) and resolve_constants; the same text
// through parse_time_encoding for a few aslcontext shapes.
// Contract checked: only perfq's documented exceptions escape; no crash, leak or UB.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/protocol.hpp>
#include <perfq/time_encoded.hpp>

#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  perfq::AslProtocol protocol;
  try {
    protocol = perfq::io::parse_asl_sidecar(text, "fuzz_asl.json");
  } catch (const perfq::InputError&) {
    return 0;  // refused with a message naming the file: fine
  }
  // Series shapes: one volume, a pair, and as many volumes/slices as the lists describe.
  const std::size_t volumes[] = {1, 2, protocol.post_labeling_delay.size(),
                                 protocol.labeling_duration.size()};
  const std::size_t slices[] = {1, protocol.slice_timing.size()};
  for (std::size_t v : volumes) {
    for (std::size_t s : slices) {
      try {
        perfq::validate_protocol(protocol, v, s, "fuzz_asl.json");
        for (std::size_t i = 0; i < v; ++i) {
          (void)protocol.pld_of(i);
          (void)protocol.duration_of(i);
        }
      } catch (const perfq::InputError&) {
      }
    }
  }
  try {
    (void)perfq::resolve_constants(protocol,
                                   perfq::Physiology::at_field(protocol.magnetic_field_strength));
  } catch (const perfq::InvalidArgument&) {
  }
  // Time encoding: encoded volumes only, and an m0scan first with one row per listed delay.
  using perfq::VolumeType;
  std::vector<std::vector<VolumeType>> contexts;
  for (std::size_t n : {4u, 8u, 24u}) contexts.emplace_back(n, VolumeType::Label);
  if (protocol.post_labeling_delay.size() > 1 && protocol.post_labeling_delay.size() <= 256) {
    contexts.emplace_back(protocol.post_labeling_delay.size(), VolumeType::Label);
    contexts.back().front() = VolumeType::M0Scan;
  }
  for (const auto& context : contexts) {
    try {
      const auto te = perfq::io::parse_time_encoding(text, context, "fuzz_asl.json");
      if (!te) break;
      const std::size_t k = te->matrix.sub_boli();
      if (te->sub_bolus_duration.size() != k || te->sub_bolus_pld.size() != k) std::abort();
      for (std::size_t j = 0; j < k; ++j) {
        if (!(te->sub_bolus_duration[j] > 0.0) || !(te->sub_bolus_pld[j] > 0.0)) std::abort();
      }
      perfq::validate_encoding_matrix(te->matrix, "fuzz_asl.json");
    } catch (const perfq::InputError&) {
    }
  }
  return 0;
}
