// The provenance records of a quantified series (provenance.hpp).
#include "provenance.hpp"

#include <perfq/cbf.hpp>
#include <perfq/version.hpp>

#include <map>

PERFQ_NAMESPACE_BEGIN
namespace io {
namespace provenance {

Json status_legend() {
  Json legend = Json::object();
  for (int s = 0; s < detail::kStatusCount; ++s) {
    legend[std::to_string(s)] = to_string(static_cast<VoxelStatus>(s));
  }
  return legend;
}

Json status_counts(const Volume<std::uint8_t>& status) {
  std::map<int, std::size_t> counts;
  for (std::uint8_t s : status.values()) ++counts[s];
  Json j = Json::object();
  for (const auto& [code, count] : counts) j[std::to_string(code)] = count;
  return j;
}

Json range_record(const CbfRangeCheck& c) {
  if (!c.checked) return {{"Checked", false}, {"Why", c.why_not}};
  return {{"Checked", true},
          {"Region", c.region},
          {"Voxels", c.voxels},
          {"MedianCBF", c.median_cbf},
          {"PlausibleRange", {c.low, c.high}},
          {"Plausible", c.plausible}};
}

Json fit_record(const KineticOptions& kinetic, const KineticFit& fit) {
  Json record = {{"Method",
                  "separable ATT search (flow solved exactly) + "
                  "Levenberg-Marquardt, exact derivatives"},
                 {"ATTRange", {kinetic.att_min, kinetic.att_max}},
                 {"GridPoints", kinetic.grid_points},
                 {"MaxIterations", kinetic.max_iterations},
                 {"MaxStarts", kinetic.max_starts},
                 {"Tolerance", kinetic.tolerance},
                 {"Weights", kinetic.weights},
                 {"ATTPrior", kinetic.att_prior},
                 {"ArterialComponent", kinetic.arterial},
                 {"SpatialPrior", kinetic.spatial}};
  if (kinetic.dispersion == Dispersion::Gamma) {
    record["Dispersion"] = {
        {"Kernel", "gamma"},
        {"Sharpness", kinetic.dispersion_sharpness},
        {"SharpnessUnits", "1/s"},
        {"TimeToPeak", kinetic.dispersion_time_to_peak},
        {"TimeToPeakUnits", "s"},
        {"Reference", "Chappell et al. 2010, MRM 63:1357 (gamma kernel of the extra delay)"},
        {"AppliesTo", "tissue component; the arterial component stays undispersed"}};
  } else {
    record["Dispersion"] = {{"Kernel", "none"}};
  }
  if (kinetic.variant == KineticVariant::BuxtonFixedFlow) {
    record["FixedFlowForT1app"] = kinetic.fixed_flow;
  }
  if (kinetic.att_prior) {
    record["ATTPriorMean"] = fit.att_prior_mean;
    record["ATTPriorSD"] = kinetic.att_prior_sd;
    record["PriorNoise"] = to_string(kinetic.prior_noise);
    record["PooledNoiseVariance"] = fit.noise_variance;
    if (fit.noise_reference_m0 > 0) record["NoiseReferenceM0"] = fit.noise_reference_m0;
    if (kinetic.arterial) {
      record["ArterialATTPriorMean"] = fit.arterial_att_prior_mean;
      record["ArterialATTPriorSD"] = fit.arterial_att_prior_sd;
    }
  }
  if (kinetic.spatial) {
    record["SpatialPriorParameters"] =
        kinetic.spatial_att ? Json::array({"CBF", "ATT"}) : Json::array({"CBF"});
    record["SpatialPrecisionCBF"] = fit.spatial_precision_cbf;
    record["SpatialPrecisionCBFUnits"] = "(ml/100 g/min)^-2";
    if (kinetic.spatial_att) {
      record["SpatialPrecisionATT"] = fit.spatial_precision_att;
      record["SpatialPrecisionATTUnits"] = "s^-2";
    }
    record["SpatialIterations"] = fit.spatial_iterations;
    record["SpatialConverged"] = fit.spatial_converged;
    record["SpatialMaxIterations"] = kinetic.spatial_max_iterations;
    record["SpatialTolerance"] = kinetic.spatial_tolerance;
    if (!kinetic.att_prior) record["PooledNoiseVariance"] = fit.noise_variance;
  }
  return record;
}

Json time_encoding_record(const TimeEncoding& te, const PreparedAsl& prepared) {
  Json rows = Json::array();
  for (std::size_t c = 0; c < te.matrix.cycles; ++c) {
    Json row = Json::array();
    for (std::size_t k = 0; k < te.matrix.sub_boli(); ++k) row.push_back(te.matrix.at(c, k));
    rows.push_back(row);
  }
  return {{"MatrixSource", te.matrix_source},
          {"TimeEncodedMatrixSize", te.matrix.cycles},
          {"TimeEncodedMatrix", rows},
          {"MatrixConvention",
           "rows: encoding cycles in acquisition order; columns: sub-boli in "
           "labeling order; +1 control, -1 label"},
          {"Decoding",
           "dM_k = (2/N) sum_i E[i][k] S_i (control - label); blocks of N encoded "
           "volumes decoded, then averaged per sub-bolus"},
          {"SubBolusDurations", te.sub_bolus_duration},
          {"SubBolusPostLabelingDelays", te.sub_bolus_pld},
          {"Blocks", prepared.repeats.front() + prepared.rejected.front()}};
}

namespace {

/// Repeats as {"Control": c, "Label": l} ({"DeltaM": v} for a deltam volume), with their
/// reasons when `reasons`.
Json repeats_record(const std::vector<RepeatVolumes>& repeats, bool reasons) {
  Json out = Json::array();
  for (const RepeatVolumes& r : repeats) {
    Json one;
    if (r.label) {
      one["Control"] = r.control;
      one["Label"] = *r.label;
    } else {
      one["DeltaM"] = r.control;
    }
    if (reasons) one["Reason"] = r.reason;
    out.push_back(one);
  }
  return out;
}

/// SCORE's (and SCRUB's) record: the method, its rules and the pairs dropped and kept.
Json outlier_record(const PreparedAsl& prepared, const SeriesRequest& r) {
  const bool scrub = r.averaging.outliers == OutlierRejection::Scrub;
  Json j = {{"Method", scrub ? "SCORE+SCRUB" : "SCORE"},
            {"Option", std::string("--outliers ") + to_string(r.averaging.outliers)},
            {"References",
             scrub ? Json::array({"Dolui et al. 2017, J Magn Reson Imaging 45:1786 (SCORE)",
                                  "Dolui et al., Proc. ISMRM 2016 (SCRUB)"})
                   : Json::array({"Dolui et al. 2017, J Magn Reson Imaging 45:1786 (SCORE)"})},
            {"TissueMaps",
             {{"GM", r.gm_probseg.value_or("")},
              {"WM", r.wm_probseg.value_or("")},
              {"CSF", r.csf_probseg.value_or("")}}},
            {"TissueThreshold", r.tissue_threshold},
            {"GmMeanThreshold", r.averaging.score_threshold},
            {"Rules",
             "per-pair CBF (pair dM x the quantification's factor for dM = 1); SCORE: pairs whose "
             "mean GM CBF is more than GmMeanThreshold robust SDs (1.4826 MAD) from the median "
             "dropped, then one at a time the pair whose removal most lowers the variance of the "
             "mean CBF map pooled within GM, WM and CSF, while it lowers it (docs/outliers.md)" +
                 std::string(scrub ? "; SCRUB: Tukey-bisquare estimate with a structural prior in "
                                     "voxels whose variance across the kept pairs exceeds the "
                                     "chi-square 99.99th percentile of grey matter's"
                                   : "")},
            {"PairsExamined", prepared.repeats.front() + prepared.rejected.front()},
            {"PairsRejected", prepared.rejected.front()},
            {"Rejected", repeats_record(prepared.rejected_volumes.front(), true)},
            {"Kept", repeats_record(prepared.kept_volumes.front(), false)}};
  return j;
}

}  // namespace

void describe_acquisition(const AslDataset& data, const AslProtocol& protocol,
                          const PreparedAsl& prepared, const Physiology& physiology,
                          const std::string& bs_pulses_source, const Json& m0_record,
                          const SeriesRequest& r, const SeriesMaps& out, Json& j) {
  const bool single = out.delays == 1;
  j["GeneratedBy"] = {
      {"Name", "perfq"}, {"Version", version()}, {"Backend", to_string(out.backend)}};
  j["ArterialSpinLabelingType"] = to_string(protocol.labeling_type);
  if (single) {
    j["PostLabelingDelay"] = prepared.post_labeling_delay.front();
  } else {
    j["PostLabelingDelay"] = prepared.post_labeling_delay;
  }
  if (protocol.labeling_type == LabelingType::Pasl) {
    j["BolusCutOffDelayTime"] =
        protocol.bolus_cutoff_delay ? Json(*protocol.bolus_cutoff_delay) : Json(nullptr);
  } else if (single) {
    j["LabelingDuration"] = prepared.labeling_duration.front();
  } else {
    j["LabelingDuration"] = prepared.labeling_duration;
  }
  if (data.time_encoding) j["TimeEncoding"] = time_encoding_record(*data.time_encoding, prepared);
  j["MRAcquisitionType"] = protocol.readout == Readout::TwoD ? "2D" : "3D";
  if (protocol.readout == Readout::TwoD) j["SliceTiming"] = protocol.slice_timing;
  j["MagneticFieldStrength"] = protocol.magnetic_field_strength;
  const ResolvedConstants& c = out.constants;
  j["BloodBrainPartitionCoefficient"] = c.blood_brain_partition;
  j["ArterialBloodT1"] = c.t1_blood;
  if (r.t1_blood) {
    j["ArterialBloodT1Source"] = "--t1b";
  } else if (r.hematocrit) {
    j["ArterialBloodT1Source"] = "haematocrit (--hct)";
    j["ArterialBloodT1FromHematocrit"] = {
        {"Hematocrit", *r.hematocrit},
        {"Formula", "1/T1b = 0.52 * Hct + 0.38 (1/s)"},
        {"Reference",
         "Lu H, Clingman C, Golay X, van Zijl PCM. Determining the longitudinal relaxation "
         "time (T1) of blood at 3.0 Tesla. Magn Reson Med 2004;52:679-682 (arterial blood, "
         "oxygenation 92 %, 37 C)"},
        {"Validity", "3 T; haematocrit 0.38-0.46 measured, 0.1-0.7 accepted"}};
  } else {
    j["ArterialBloodT1Source"] =
        "default at MagneticFieldStrength (1.65 s at 3 T, 1.35 s at 1.5 T)";
  }
  j["TissueT1"] = c.t1_tissue;
  j["LabelingEfficiency"] = c.labeling_efficiency;
  j["LabelingEfficiencySource"] = c.labeling_efficiency_source;
  j["BackgroundSuppressionFactor"] = c.background_suppression_factor;
  j["BackgroundSuppressionSource"] = c.background_suppression_source;
  if (c.background_suppression_source == "pulses") {
    j["BackgroundSuppressionPulseEfficiency"] = physiology.background_suppression_pulse_efficiency;
    j["BackgroundSuppressionNumberPulses"] = protocol.background_suppression.pulses;
    j["BackgroundSuppressionPulsesSource"] = bs_pulses_source;
  }
  j["EffectiveLabelingEfficiency"] = c.effective_labeling_efficiency;
  for (const auto& item : m0_record.items()) j[item.key()] = item.value();
  j["M0RepetitionTime"] =
      protocol.m0_repetition_time ? Json(*protocol.m0_repetition_time) : Json(nullptr);
  j["M0ScaleFactor"] = c.m0_scale;
  const AveragingOptions& averaging = r.averaging;
  if (single) {
    j["Averaging"] = {
        {"Robust", averaging.robust},
        {"OutlierThreshold", averaging.outlier_threshold},
        {"Outliers", averaging.robust ? "robust" : to_string(averaging.outliers)},
        {"RepeatsAveraged", prepared.repeats.front()},
        {"RepeatsRejected", prepared.rejected.front()},
        {"RejectedVolumes", prepared.rejected_volumes.empty()
                                ? Json::array()
                                : repeats_record(prepared.rejected_volumes.front(), true)}};
    if ((averaging.outliers == OutlierRejection::Score ||
         averaging.outliers == OutlierRejection::Scrub) &&
        !prepared.kept_volumes.empty()) {
      j["OutlierRejection"] = outlier_record(prepared, r);
    }
  } else {
    j["Averaging"] = {{"Robust", averaging.robust},
                      {"OutlierThreshold", averaging.outlier_threshold},
                      {"RepeatsAveraged", prepared.repeats},
                      {"RepeatsRejected", prepared.rejected}};
  }
  j["Mask"] = r.mask_path ? Json(*r.mask_path) : Json(nullptr);
  j["Notes"] = out.notes;  // the preparation's, then the quantification's
  j["Warnings"] = out.warnings;
  j["StatusCodes"] = status_legend();
}

}  // namespace provenance
}  // namespace io
PERFQ_NAMESPACE_END
