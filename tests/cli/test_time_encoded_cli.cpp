// Time-encoded PCASL through BIDS and the perfq tool: sidecar conventions, the Hadamard
// phantom end to end, and refusals of bad sidecars.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/phantom.hpp>
#include <perfq/time_encoded.hpp>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "cli_test_util.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using perfq::VolumeType;

using namespace cli_test;  // run, Result, read_text, write_text, scratch_dir

fs::path scratch(const std::string& name) { return cli_test::scratch_dir("te-" + name); }

/// Context of `blocks` blocks of n encoded volumes (first of each block control).
std::vector<VolumeType> encoded_context(std::size_t n, std::size_t blocks) {
  std::vector<VolumeType> c;
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t i = 0; i < n; ++i)
      c.push_back(i == 0 ? VolumeType::Control : VolumeType::Label);
  }
  return c;
}

/// Expects parse_time_encoding to refuse `sidecar` naming `field`, with `text` in the message.
void expect_parse_refusal(const Json& sidecar, const std::vector<VolumeType>& context,
                          const std::string& field, const std::string& text) {
  try {
    perfq::io::parse_time_encoding(sidecar.dump(), context, "x_asl.json");
    ADD_FAILURE() << "accepted; expected a refusal naming " << field;
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.file(), "x_asl.json");
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

Json base_sidecar() {
  return Json{{"ArterialSpinLabelingType", "PCASL"},
              {"M0Type", "Separate"},
              {"PostLabelingDelay", 0.2},
              {"LabelingDuration", {0.5, 0.4, 0.3}},
              {"TimeEncodedMatrixType", "Hadamard"},
              {"TimeEncodedMatrixSize", 4}};
}

TEST(TimeEncodedBids, NotTimeEncodedWithoutTheFields) {
  Json j = base_sidecar();
  j.erase("TimeEncodedMatrixType");
  j.erase("TimeEncodedMatrixSize");
  EXPECT_FALSE(perfq::io::parse_time_encoding(j.dump(), encoded_context(4, 1)).has_value());
}

TEST(TimeEncodedBids, DurationsPerSubBolusAndTheFinalDelay) {
  const auto te = perfq::io::parse_time_encoding(base_sidecar().dump(), encoded_context(4, 2));
  ASSERT_TRUE(te.has_value());
  EXPECT_EQ(te->matrix.entries,
            perfq::encoding_matrix(perfq::TimeEncodedMatrixType::Hadamard, 4).entries);
  EXPECT_EQ(te->sub_bolus_duration, (std::vector<double>{0.5, 0.4, 0.3}));
  ASSERT_EQ(te->sub_bolus_pld.size(), 3u);
  EXPECT_NEAR(te->sub_bolus_pld[0], 0.9, 1e-12);
  EXPECT_NEAR(te->sub_bolus_pld[1], 0.5, 1e-12);
  EXPECT_NEAR(te->sub_bolus_pld[2], 0.2, 1e-12);
  EXPECT_EQ(te->matrix_source, "Hadamard 4 (generated)");
}

TEST(TimeEncodedBids, ExploreAslPerVolumeFormAndExplicitMatrix) {
  // One value per volume; sub-bolus k from the (k+1)-th encoded volume of each block. The
  // m0scan row in front is not an encoded volume.
  Json j = base_sidecar();
  j["PostLabelingDelay"] = {0, 0.2, 0.9, 0.5, 0.2, 0.2, 0.9, 0.5, 0.2};
  j["LabelingDuration"] = {0, 1.2, 0.5, 0.4, 0.3, 1.2, 0.5, 0.4, 0.3};
  j["TimeEncodedMatrix"] = {{1, 1, 1, 1}, {1, -1, 1, -1}, {1, 1, -1, -1}, {1, -1, -1, 1}};
  std::vector<VolumeType> context = encoded_context(4, 2);
  context.insert(context.begin(), VolumeType::M0Scan);
  const auto te = perfq::io::parse_time_encoding(j.dump(), context, "x_asl.json");
  ASSERT_TRUE(te.has_value());
  EXPECT_EQ(te->sub_bolus_duration, (std::vector<double>{0.5, 0.4, 0.3}));
  EXPECT_EQ(te->sub_bolus_pld, (std::vector<double>{0.9, 0.5, 0.2}));
  EXPECT_EQ(te->matrix_source, "TimeEncodedMatrix (given)");

  // A given matrix that differs from the named type is used, and the difference noted.
  j["TimeEncodedMatrixType"] = "Walsh";
  const auto walsh = perfq::io::parse_time_encoding(j.dump(), context, "x_asl.json");
  EXPECT_NE(walsh->matrix_source.find("differs from the generated Walsh 4"), std::string::npos);

  // Blocks must repeat the same timing.
  j["PostLabelingDelay"][7] = 0.6;
  expect_parse_refusal(j, context, "PostLabelingDelay", "block 1");
}

TEST(TimeEncodedBids, BadSidecarsAreRefusedNamingTheField) {
  const auto ctx = encoded_context(4, 1);
  Json j = base_sidecar();
  j["TimeEncodedMatrixSize"] = 5;
  expect_parse_refusal(j, ctx, "TimeEncodedMatrixSize", "5 is not supported");
  j = base_sidecar();
  j["TimeEncodedMatrixSize"] = 12;
  j["TimeEncodedMatrixType"] = "Walsh";
  expect_parse_refusal(j, ctx, "TimeEncodedMatrixSize", "12 exists only as a Hadamard");
  j = base_sidecar();
  j["TimeEncodedMatrixType"] = "Gray";
  expect_parse_refusal(j, ctx, "TimeEncodedMatrixType", "unknown value 'Gray'");
  j = base_sidecar();
  j.erase("TimeEncodedMatrixType");
  expect_parse_refusal(j, ctx, "TimeEncodedMatrixType", "required");
  j = base_sidecar();
  j["TimeEncodedMatrix"] = {{1, 1, 1}, {1, -1, -1}, {1, 1, -1}, {-1, -1, 1}};
  expect_parse_refusal(j, ctx, "TimeEncodedMatrix", "sums to");
  j["TimeEncodedMatrix"] = {{1, 1, 1}, {-1, -1, 1}, {1, 1, -1}, {-1, -1, -1}};
  expect_parse_refusal(j, ctx, "TimeEncodedMatrix", "not orthogonal");
  j["TimeEncodedMatrix"] = "identity";
  expect_parse_refusal(j, ctx, "TimeEncodedMatrix", "expected an array of rows");
  j = base_sidecar();
  j["TimeEncodedMatrixSize"] = 8;
  j["TimeEncodedMatrix"] = {{1, 1, 1}, {1, -1, -1}, {-1, -1, 1}, {-1, 1, -1}};
  expect_parse_refusal(j, ctx, "TimeEncodedMatrixSize", "has 4 rows");
  j = base_sidecar();
  j["LabelingDuration"] = {0.5, 0.4};
  expect_parse_refusal(j, ctx, "LabelingDuration", "one duration per sub-bolus (3)");
  j["LabelingDuration"] = 1.2;
  expect_parse_refusal(j, ctx, "LabelingDuration", "has 1 values");
  j = base_sidecar();
  j["PostLabelingDelay"] = {0.2, 0.3};
  expect_parse_refusal(j, ctx, "PostLabelingDelay", "takes one");
  j = base_sidecar();
  j["LabelingDuration"] = {0.5, 0.0, 0.3};
  expect_parse_refusal(j, ctx, "LabelingDuration", "sub-bolus 1");
  j = base_sidecar();
  j["ArterialSpinLabelingType"] = "PASL";
  expect_parse_refusal(j, ctx, "ArterialSpinLabelingType", "not PASL");
}

/// Worst relative error of a map against a truth image over the truth's brain mask.
double worst_error(const fs::path& map, const fs::path& truth, const fs::path& mask_path) {
  const auto a = perfq::io::read_nifti(map.string());
  const auto b = perfq::io::read_nifti(truth.string());
  const auto mask = perfq::io::read_nifti_mask(mask_path.string());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (mask[i]) worst = std::max(worst, std::abs(double(a[i]) - b[i]) / b[i]);
  }
  return worst;
}

TEST(TimeEncodedCli, Hadamard8PhantomRecoversCbfAndArrivalTime) {
  const fs::path dir = scratch("h8");
  const Result made = run("phantom -o " + (dir / "bids").string() +
                          " --time-encoded 8 --repeats 2 --sub-bolus-durations "
                          "0.5,0.45,0.4,0.35,0.3,0.3,0.3 --delays 0.2");
  ASSERT_EQ(made.status, 0) << made.output;
  const fs::path perf = dir / "bids" / "sub-01" / "perf";
  const Json sidecar = Json::parse(read_text(perf / "sub-01_asl.json"));
  EXPECT_EQ(sidecar["TimeEncodedMatrixSize"], 8);
  EXPECT_EQ(sidecar["TimeEncodedMatrixType"], "Hadamard");
  EXPECT_EQ(sidecar["LabelingDuration"].size(), 7u);
  EXPECT_DOUBLE_EQ(sidecar["PostLabelingDelay"].get<double>(), 0.2);
  EXPECT_EQ(perfq::io::read_nifti_info((perf / "sub-01_asl.nii.gz").string()).volumes, 16u);

  const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
  const fs::path mask = truth / "sub-01_mask.nii.gz";
  // Short sub-boli put sample times (τ_k + PLD_k) inside the ATT range, where the model has
  // kinks; the fit must not stop on one (the default 24-point ATT grid).
  const Result r =
      run("cbf " + (perf / "sub-01_asl.nii.gz").string() + " -o " + (dir / "out").string() +
          " --backend cpu --model whitepaper --mask " + mask.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("7 delays, time-encoded Hadamard 8 (generated)"), std::string::npos)
      << r.output;
  EXPECT_LT(worst_error(dir / "out" / "sub-01_cbf.nii.gz", truth / "sub-01_cbf.nii.gz", mask),
            0.005);
  EXPECT_LT(worst_error(dir / "out" / "sub-01_att.nii.gz", truth / "sub-01_att.nii.gz", mask),
            0.005);

  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  const Json& te = j["TimeEncoding"];
  EXPECT_EQ(te["TimeEncodedMatrixSize"], 8);
  EXPECT_EQ(te["TimeEncodedMatrix"].size(), 8u);
  EXPECT_EQ(te["TimeEncodedMatrix"][0].size(), 7u);
  EXPECT_EQ(te["Blocks"], 2);
  ASSERT_EQ(te["SubBolusPostLabelingDelays"].size(), 7u);
  // PLD of sub-bolus 0 = 0.2 + 0.45 + 0.4 + 0.35 + 0.3 + 0.3 + 0.3.
  EXPECT_NEAR(te["SubBolusPostLabelingDelays"][0].get<double>(), 2.3, 1e-9);
  EXPECT_NEAR(te["SubBolusPostLabelingDelays"][6].get<double>(), 0.2, 1e-9);
  // The decoded volumes, by increasing delay, each with its own duration.
  ASSERT_EQ(j["PostLabelingDelay"].size(), 7u);
  EXPECT_NEAR(j["PostLabelingDelay"][0].get<double>(), 0.2, 1e-9);
  EXPECT_NEAR(j["LabelingDuration"][0].get<double>(), 0.3, 1e-9);
  EXPECT_NEAR(j["LabelingDuration"][6].get<double>(), 0.5, 1e-9);
  EXPECT_EQ(j["Averaging"]["RepeatsAveraged"][0], 2);
}

TEST(TimeEncodedCli, WalshAndHadamard12PhantomsAreDecoded) {
  for (const char* options : {"--time-encoded 4 --matrix-type walsh", "--time-encoded 12"}) {
    SCOPED_TRACE(options);
    const fs::path dir = scratch("other");
    const Result made = run("phantom -o " + (dir / "bids").string() + " --repeats 1 " + options);
    ASSERT_EQ(made.status, 0) << made.output;
    const fs::path truth = dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf";
    const Result r =
        run("cbf " + (dir / "bids" / "sub-01" / "perf" / "sub-01_asl.nii.gz").string() + " -o " +
            (dir / "out").string() + " --backend cpu --model whitepaper" + " --mask " +
            (truth / "sub-01_mask.nii.gz").string());
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_LT(worst_error(dir / "out" / "sub-01_cbf.nii.gz", truth / "sub-01_cbf.nii.gz",
                          truth / "sub-01_mask.nii.gz"),
              0.005);
    EXPECT_LT(worst_error(dir / "out" / "sub-01_att.nii.gz", truth / "sub-01_att.nii.gz",
                          truth / "sub-01_mask.nii.gz"),
              0.005);
  }
}

TEST(TimeEncodedCli, ExploreAslFormWithIncludedM0) {
  // ExploreASL's layout: an explicit (square) matrix, one PLD and duration per volume, and the
  // M0 inside the series (M0Type Included) in front of the encoded block.
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.repeats = 1;
  o.time_encoded = 4;
  o.time_encoded_type = perfq::TimeEncodedMatrixType::Walsh;
  o.delays = {0.2};
  const perfq::Phantom p = perfq::make_phantom(o);
  const std::size_t voxels = p.m0.size();
  perfq::Series<float> series(p.m0.geometry(), 5);
  std::copy(p.m0.values().begin(), p.m0.values().end(), series.data());
  std::copy(p.asl.values().begin(), p.asl.values().end(), series.data() + voxels);

  const fs::path dir = scratch("exploreasl");
  const fs::path perf = dir / "bids" / "sub-01" / "perf";
  fs::create_directories(perf);
  perfq::io::write_nifti((perf / "sub-01_asl.nii.gz").string(), series.view());
  write_text(perf / "sub-01_aslcontext.tsv", "volume_type\nm0scan\ncontrol\nlabel\nlabel\nlabel\n");
  const auto& te = *p.time_encoding;
  Json rows = Json::array();
  for (std::size_t i = 0; i < 4; ++i) {
    Json row = {1};  // the all-control column of the full matrix
    for (std::size_t k = 0; k < 3; ++k) row.push_back(te.matrix.at(i, k));
    rows.push_back(row);
  }
  Json pld = {0, 0.2}, tau = {0, 2.8};
  for (std::size_t k = 0; k < 3; ++k) {
    pld.push_back(te.sub_bolus_pld[k]);
    tau.push_back(te.sub_bolus_duration[k]);
  }
  const Json sidecar = {{"ArterialSpinLabelingType", "PCASL"},
                        {"MRAcquisitionType", "3D"},
                        {"M0Type", "Included"},
                        {"RepetitionTimePreparation", {6.0, 4.0, 4.0, 4.0, 4.0}},
                        {"TimeEncodedMatrixType", "Walsh"},
                        {"TimeEncodedMatrixSize", 4},
                        {"TimeEncodedMatrix", rows},
                        {"PostLabelingDelay", pld},
                        {"LabelingDuration", tau}};
  write_text(perf / "sub-01_asl.json", sidecar.dump(2));

  const Result r = run("cbf " + (perf / "sub-01_asl.nii.gz").string() + " -o " +
                       (dir / "out").string() + " --backend cpu --model whitepaper");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("TimeEncodedMatrix (given)"), std::string::npos) << r.output;
  const auto cbf = perfq::io::read_nifti((dir / "out" / "sub-01_cbf.nii.gz").string());
  for (std::size_t i = 0; i < voxels; ++i) {
    if (p.brain[i]) ASSERT_NEAR(cbf[i], p.cbf[i], 0.01 * p.cbf[i]) << "voxel " << i;
  }
  const Json j = Json::parse(read_text(dir / "out" / "sub-01_cbf.json"));
  EXPECT_EQ(j["M0Type"], "Included");
  EXPECT_DOUBLE_EQ(j["M0RepetitionTime"].get<double>(), 6.0);
  EXPECT_EQ(j["TimeEncoding"]["SubBolusPostLabelingDelays"].size(), 3u);
}

TEST(TimeEncodedCli, PhantomOptionsAreValidated) {
  const fs::path dir = scratch("usage");
  for (const char* options :
       {"--time-encoded 6", "--time-encoded 12 --matrix-type walsh", "--time-encoded 8 --pasl",
        "--time-encoded 4 --sub-bolus-durations 0.4,0.4", "--matrix-type walsh",
        "--time-encoded 4 --delays 0.2,0.4"}) {
    const Result r = run("phantom -o " + (dir / "bids").string() + " " + options);
    EXPECT_EQ(r.status, 2) << options << ": " << r.output;
  }
  EXPECT_FALSE(folder_has_files(dir / "bids"));
}

/// A small Hadamard-8 phantom dataset (library), spoiled by `spoil`; `perfq cbf` must exit 1
/// naming `file_part` and `field` and write nothing.
void expect_refusal(const std::string& name, const std::function<void(const fs::path&)>& spoil,
                    const std::string& file_part, const std::string& field) {
  const fs::path dir = scratch(name);
  perfq::PhantomOptions o;
  o.dims = {24, 28, 20};
  o.repeats = 1;
  o.time_encoded = 8;
  o.delays = {0.2};
  const fs::path asl =
      perfq::io::write_phantom_bids(perfq::make_phantom(o), (dir / "bids").string());
  spoil(asl.parent_path());
  const Result r = run("cbf " + asl.string() + " -o " + (dir / "out").string() + " --backend cpu");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(file_part + ": " + field + ":"), std::string::npos) << r.output;
  EXPECT_FALSE(folder_has_files(dir / "out")) << "partial output left in " << dir / "out";
}

void edit_sidecar(const fs::path& perf, const std::function<void(Json&)>& edit) {
  edit_json(perf / "sub-01_asl.json", edit);
}

/// perfq's Hadamard 8 matrix (8 × 7) as TimeEncodedMatrix rows, times `sign`.
Json hadamard8_rows(int sign) {
  const auto m = perfq::encoding_matrix(perfq::TimeEncodedMatrixType::Hadamard, 8);
  Json rows = Json::array();
  for (std::size_t i = 0; i < 8; ++i) {
    Json row = Json::array();
    for (std::size_t k = 0; k < 7; ++k) row.push_back(sign * m.at(i, k));
    rows.push_back(row);
  }
  return rows;
}

TEST(TimeEncodedCli, RefusesUnsupportedMatrixSize) {
  expect_refusal(
      "size5",
      [](const fs::path& perf) {
        edit_sidecar(perf, [](Json& j) { j["TimeEncodedMatrixSize"] = 5; });
      },
      "sub-01_asl.json", "TimeEncodedMatrixSize");
}

TEST(TimeEncodedCli, RefusesNonOrthogonalMatrix) {
  expect_refusal(
      "nonorthogonal",
      [](const fs::path& perf) {
        edit_sidecar(perf, [](Json& j) {
          // Hadamard 8 with two entries of column 0 swapped: still balanced, no longer orthogonal.
          Json rows = hadamard8_rows(1);
          // Rows 0 and 1 differ in column 0 (+1, -1); swap them there.
          std::swap(rows[0][0], rows[1][0]);
          j["TimeEncodedMatrix"] = rows;
        });
      },
      "sub-01_asl.json", "TimeEncodedMatrix");
}

TEST(TimeEncodedCli, RefusesAMatrixOfTheOtherSign) {
  // The Hadamard 8 matrix with +1 and −1 exchanged (label taken for control): the decoded
  // sub-boli are negative in the brain, refused as such, naming the matrix.
  expect_refusal(
      "other-sign",
      [](const fs::path& perf) {
        edit_sidecar(perf, [](Json& j) { j["TimeEncodedMatrix"] = hadamard8_rows(-1); });
      },
      "sub-01_asl.json", "TimeEncodedMatrix");
}

TEST(TimeEncodedCli, RefusesDurationCountMismatch) {
  expect_refusal(
      "durations",
      [](const fs::path& perf) {
        edit_sidecar(perf, [](Json& j) { j["LabelingDuration"] = {0.4, 0.4, 0.4, 0.4, 0.4, 0.4}; });
      },
      "sub-01_asl.json", "LabelingDuration");
}

TEST(TimeEncodedCli, RefusesVolumeCountNotAMultipleOfTheMatrixSize) {
  expect_refusal(
      "volumes",
      [](const fs::path& perf) {
        // The last encoded volume turned into noRF: 7 encoded volumes for a size of 8.
        std::string context = read_text(perf / "sub-01_aslcontext.tsv");
        const auto last = context.rfind("label");
        context.replace(last, 5, "noRF");
        write_text(perf / "sub-01_aslcontext.tsv", context);
      },
      "sub-01_aslcontext.tsv", "volume_type");
}

}  // namespace
