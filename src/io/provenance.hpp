// Internal to perfq::io's pipeline (pipeline.cpp): the provenance records of a quantified
// series, as perfq cbf writes them in <prefix>_cbf.json. Keys keep the order in which they
// are set (ordered_json).
#pragma once

#include <perfq/asl_series.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/kinetic.hpp>
#include <perfq/time_encoded.hpp>

#include <nlohmann/json.hpp>

#include <string>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace provenance {

using Json = nlohmann::ordered_json;

/// The status codes' meanings.
Json status_legend();
/// Counts of each status code, keyed by code.
Json status_counts(const Volume<std::uint8_t>& status);
/// The CBF-range check.
Json range_record(const CbfRangeCheck& c);
/// The kinetic model's settings and what the fit found (prior, pooled noise).
Json fit_record(const KineticOptions& kinetic, const KineticFit& fit);
/// The time encoding: matrix, convention, decoding, sub-bolus timing.
Json time_encoding_record(const TimeEncoding& te, const PreparedAsl& prepared);
/// The acquisition, constants, M0 (`m0_record`) and averaging records, after the
/// quantification's, into `j`.
void describe_acquisition(const AslDataset& data, const AslProtocol& protocol,
                          const PreparedAsl& prepared, const Physiology& physiology,
                          const std::string& bs_pulses_source, const Json& m0_record,
                          const SeriesRequest& r, const SeriesMaps& out, Json& j);

}  // namespace provenance
}  // namespace io
PERFQ_NAMESPACE_END
