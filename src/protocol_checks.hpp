// Private checks of a protocol shared by the quantifications (src/cbf.cpp, src/kinetic.cpp),
// beside validate_protocol's for sidecars (src/core.cpp).
#pragma once

#include <perfq/protocol.hpp>

#include <sstream>
#include <string>

PERFQ_NAMESPACE_BEGIN
namespace checks {

/// The message for a time beyond kMaxTimingSeconds read from a sidecar: a likely value in
/// milliseconds (validate_protocol's, and the BIDS reader's for repetition times).
inline std::string not_seconds(double value) {
  std::ostringstream m;
  m << "value " << value << " is beyond any ASL timing (at most " << kMaxTimingSeconds
    << " s); BIDS gives times in seconds — was it written in milliseconds?";
  return m.str();
}

/// Throws InvalidArgument, naming the quantity, when a time the quantification uses is beyond
/// kMaxTimingSeconds (a likely value in milliseconds): a delay, a labeling duration, the bolus
/// cut-off time TI1 when given and, for a 2D readout, a slice time (which must also be finite
/// and >= 0).
void times_in_seconds(const AslProtocol& p);

}  // namespace checks
PERFQ_NAMESPACE_END
