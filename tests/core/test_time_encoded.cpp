// Time-encoded (Hadamard) PCASL: matrices, decoding, sub-bolus timing.
#include <perfq/errors.hpp>
#include <perfq/time_encoded.hpp>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace {

using perfq::EncodingMatrix;
using perfq::InputError;
using perfq::InvalidArgument;
using perfq::TimeEncodedMatrixType;
using perfq::VolumeType;

/// Expects `f` to throw InputError whose field is `field` and whose message contains `text`.
template <class F>
void expect_input_error(F f, const std::string& field, const std::string& text) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected field " << field;
  } catch (const InputError& e) {
    EXPECT_EQ(e.field(), field) << e.what();
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

std::vector<std::vector<int>> rows_of(const EncodingMatrix& m) {
  std::vector<std::vector<int>> rows(m.cycles);
  for (std::size_t i = 0; i < m.cycles; ++i) {
    for (std::size_t k = 0; k < m.sub_boli(); ++k) rows[i].push_back(m.at(i, k));
  }
  return rows;
}

/// EᵀE = N I on the sub-bolus columns, each column orthogonal to the all-control column,
/// and cycle 0 all control.
void expect_hadamard_encoding(const EncodingMatrix& m, std::size_t n) {
  ASSERT_EQ(m.cycles, n);
  ASSERT_EQ(m.sub_boli(), n - 1);
  ASSERT_EQ(m.entries.size(), n * (n - 1));
  for (int e : m.entries) ASSERT_TRUE(e == 1 || e == -1);
  for (std::size_t a = 0; a < n - 1; ++a) {
    long sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += m.at(i, a);
    EXPECT_EQ(sum, 0) << "column " << a;
    for (std::size_t b = 0; b < n - 1; ++b) {
      long dot = 0;
      for (std::size_t i = 0; i < n; ++i) dot += m.at(i, a) * m.at(i, b);
      EXPECT_EQ(dot, a == b ? static_cast<long>(n) : 0L) << "columns " << a << ", " << b;
    }
  }
  for (std::size_t k = 0; k < n - 1; ++k) EXPECT_EQ(m.at(0, k), 1) << "cycle 0 is all control";
}

TEST(TimeEncoded, GeneratedMatricesAreOrthogonal) {
  for (std::size_t n : {4u, 8u, 12u}) {
    SCOPED_TRACE("Hadamard " + std::to_string(n));
    expect_hadamard_encoding(perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, n), n);
  }
  for (std::size_t n : {4u, 8u}) {
    SCOPED_TRACE("Walsh " + std::to_string(n));
    expect_hadamard_encoding(perfq::encoding_matrix(TimeEncodedMatrixType::Walsh, n), n);
  }
}

TEST(TimeEncoded, MatricesHaveTheirStandardOrder) {
  // Natural (Sylvester) order: H4 = [[1,1,1,1],[1,-1,1,-1],[1,1,-1,-1],[1,-1,-1,1]], first
  // column dropped.
  const std::vector<std::vector<int>> h4 = {{1, 1, 1}, {-1, 1, -1}, {1, -1, -1}, {-1, -1, 1}};
  EXPECT_EQ(rows_of(perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 4)), h4);
  // Sequency order: 0, 1, 2, 3 sign changes per row of the full matrix.
  const std::vector<std::vector<int>> w4 = {{1, 1, 1}, {1, -1, -1}, {-1, -1, 1}, {-1, 1, -1}};
  EXPECT_EQ(rows_of(perfq::encoding_matrix(TimeEncodedMatrixType::Walsh, 4)), w4);
  const EncodingMatrix w8 = perfq::encoding_matrix(TimeEncodedMatrixType::Walsh, 8);
  for (std::size_t i = 0; i < 8; ++i) {
    int changes = w8.at(i, 0) == 1 ? 0 : 1;  // against the dropped +1 column
    for (std::size_t k = 1; k < 7; ++k) changes += w8.at(i, k) != w8.at(i, k - 1) ? 1 : 0;
    EXPECT_EQ(changes, static_cast<int>(i)) << "row " << i;
  }
  // Natural order: entry (i, j) of the full matrix is (-1)^popcount(i & j).
  const EncodingMatrix h8 = perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 8);
  EXPECT_EQ(h8.at(3, 2), 1);   // i=3, j=3: popcount(3) = 2
  EXPECT_EQ(h8.at(7, 6), -1);  // i=7, j=7: popcount(7) = 3
  EXPECT_EQ(h8.at(5, 1), 1);   // i=5, j=2: popcount(0) = 0
}

TEST(TimeEncoded, UnsupportedSizesAndTypesAreRefused) {
  EXPECT_THROW(perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 5), InvalidArgument);
  EXPECT_THROW(perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 16), InvalidArgument);
  EXPECT_THROW(perfq::encoding_matrix(TimeEncodedMatrixType::Walsh, 12), InvalidArgument);
  EXPECT_EQ(perfq::parse_time_encoded_matrix_type("hadamard"), TimeEncodedMatrixType::Hadamard);
  EXPECT_EQ(perfq::parse_time_encoded_matrix_type("Natural"), TimeEncodedMatrixType::Hadamard);
  EXPECT_EQ(perfq::parse_time_encoded_matrix_type("WALSH"), TimeEncodedMatrixType::Walsh);
  EXPECT_THROW(perfq::parse_time_encoded_matrix_type("gray"), InvalidArgument);
}

TEST(TimeEncoded, MatrixFromRows) {
  // The full square form (ExploreASL's) loses its all-control first column.
  const EncodingMatrix full = perfq::encoding_matrix_from_rows(
      {{1, 1, 1, 1}, {1, -1, 1, -1}, {1, 1, -1, -1}, {1, -1, -1, 1}}, "a.json");
  EXPECT_EQ(rows_of(full), rows_of(perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 4)));
  const EncodingMatrix narrow =
      perfq::encoding_matrix_from_rows({{1, 1, 1}, {1, -1, -1}, {-1, -1, 1}, {-1, 1, -1}});
  EXPECT_EQ(rows_of(narrow), rows_of(perfq::encoding_matrix(TimeEncodedMatrixType::Walsh, 4)));

  expect_input_error(
      [] {
        perfq::encoding_matrix_from_rows({{1, 1, 1}, {1, -1, -1}, {1, 1, -1}, {-1, -1, 1}},
                                         "a.json");
      },
      "TimeEncodedMatrix", "sums to");
  expect_input_error(
      [] {
        perfq::encoding_matrix_from_rows({{1, 1, 1}, {-1, -1, 1}, {1, 1, -1}, {-1, -1, -1}},
                                         "a.json");
      },
      "TimeEncodedMatrix", "not orthogonal");
  expect_input_error(
      [] {
        perfq::encoding_matrix_from_rows({{1, 1, 1}, {1, 0.5, -1}, {-1, -1, 1}, {-1, 1, -1}},
                                         "a.json");
      },
      "TimeEncodedMatrix", "row 1, column 1");
  expect_input_error(
      [] {
        perfq::encoding_matrix_from_rows({{1, 1, 1}, {1, -1}, {-1, -1, 1}, {-1, 1, -1}}, "a.json");
      },
      "TimeEncodedMatrix", "row 1 has 2 entries");
  expect_input_error(
      [] {
        perfq::encoding_matrix_from_rows({{1, 1}, {1, -1}, {-1, -1}, {-1, 1}}, "a.json");
      },
      "TimeEncodedMatrix", "expected N rows");
  expect_input_error(
      [] {
        perfq::encoding_matrix_from_rows(
            {{1, 1, 1, 1}, {-1, -1, 1, -1}, {1, 1, -1, -1}, {1, -1, -1, 1}}, "a.json");
      },
      "TimeEncodedMatrix", "first column");
}

TEST(TimeEncoded, SubBolusDelaysByHand) {
  // Sub-boli of 0.5, 0.4 and 0.3 s (labeling order), then a final PLD of 0.2 s: the last
  // waits 0.2 s, the second 0.3 + 0.2, the first 0.4 + 0.3 + 0.2.
  const std::vector<double> pld = perfq::sub_bolus_delays({0.5, 0.4, 0.3}, 0.2);
  ASSERT_EQ(pld.size(), 3u);
  EXPECT_NEAR(pld[0], 0.9, 1e-12);
  EXPECT_NEAR(pld[1], 0.5, 1e-12);
  EXPECT_NEAR(pld[2], 0.2, 1e-12);
  EXPECT_THROW(perfq::sub_bolus_delays({0.5, 0.0}, 0.2), InvalidArgument);
  EXPECT_THROW(perfq::sub_bolus_delays({0.5}, 0.0), InvalidArgument);
  EXPECT_THROW(perfq::sub_bolus_delays({}, 0.2), InvalidArgument);

  const auto m = perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 4);
  const perfq::TimeEncoding e = perfq::make_time_encoding(m, {0.5, 0.4, 0.3}, 0.2, "x.json");
  EXPECT_EQ(e.sub_bolus_pld, pld);
  expect_input_error(
      [&] {
        perfq::make_time_encoding(m, {0.5, 0.4}, 0.2, "x.json");
      },
      "LabelingDuration", "one duration per sub-bolus (3)");
  expect_input_error(
      [&] {
        perfq::make_time_encoding(m, {0.5, -0.4, 0.3}, 0.2, "x.json");
      },
      "LabelingDuration", "sub-bolus 1");
  expect_input_error(
      [&] {
        perfq::make_time_encoding(m, {0.5, 0.4, 0.3}, 0.0, "x.json");
      },
      "PostLabelingDelay", "last sub-bolus");
}

/// Encoded images of one block built from known sub-bolus images: cycle i is the control
/// signal minus every sub-bolus labelled (−1) in that cycle.
perfq::Series<float> encode(const EncodingMatrix& m, const std::vector<std::vector<float>>& dm,
                            const std::vector<float>& control, const perfq::Geometry& g,
                            std::size_t blocks) {
  const std::size_t voxels = g.voxel_count();
  perfq::Series<float> s(g, blocks * m.cycles);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t i = 0; i < m.cycles; ++i) {
      for (std::size_t v = 0; v < voxels; ++v) {
        double value = control[v];
        for (std::size_t k = 0; k < m.sub_boli(); ++k) {
          if (m.at(i, k) < 0) value -= dm[k][v];
        }
        s[(b * m.cycles + i) * voxels + v] = static_cast<float>(value);
      }
    }
  }
  return s;
}

TEST(TimeEncoded, DecodingRecoversKnownSubBolusImages) {
  perfq::Geometry g;
  g.dims = {3, 2, 1};
  const std::vector<float> control = {1000, 1020, 980, 1500, 0, 700};
  for (auto [type, n] :
       {std::pair{TimeEncodedMatrixType::Hadamard, 4u},
        std::pair{TimeEncodedMatrixType::Hadamard, 8u}, std::pair{TimeEncodedMatrixType::Walsh, 8u},
        std::pair{TimeEncodedMatrixType::Hadamard, 12u}}) {
    SCOPED_TRACE(std::string(perfq::to_string(type)) + " " + std::to_string(n));
    const EncodingMatrix m = perfq::encoding_matrix(type, n);
    std::vector<std::vector<float>> dm(n - 1, std::vector<float>(6));
    for (std::size_t k = 0; k < n - 1; ++k) {
      for (std::size_t v = 0; v < 6; ++v) dm[k][v] = static_cast<float>(k + 1) * 2.0f + v;
    }
    const auto encoded = encode(m, dm, control, g, 2);
    const auto decoded = perfq::decode_time_encoded(encoded, m);
    ASSERT_EQ(decoded.volumes(), 2 * (n - 1));
    for (std::size_t b = 0; b < 2; ++b) {
      for (std::size_t k = 0; k < n - 1; ++k) {
        for (std::size_t v = 0; v < 6; ++v) {
          // Integers: exact for N = 4 and 8 (2/N is a power of two); float rounding for 12.
          EXPECT_NEAR(decoded[(b * (n - 1) + k) * 6 + v], dm[k][v], n == 12 ? 1e-4 : 0.0)
              << "block " << b << " sub-bolus " << k << " voxel " << v;
        }
      }
    }
  }
  const EncodingMatrix m4 = perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 4);
  EXPECT_THROW(perfq::decode_time_encoded(perfq::Series<float>(g, 6), m4), InvalidArgument);
}

TEST(TimeEncoded, DecodedNoiseHasVarianceFourOverN) {
  // Independent noise of SD 1 per encoded image: ΔM_k = (2/N) Σ ± S_i has variance 4/N (a
  // control − label pair has 2), and sub-boli are uncorrelated (orthogonal columns).
  perfq::Geometry g;
  g.dims = {100, 100, 2};
  std::mt19937_64 rng(7);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  for (std::size_t n : {4u, 8u, 12u}) {
    SCOPED_TRACE(n);
    const EncodingMatrix m = perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, n);
    perfq::Series<float> s(g, n);
    for (float& v : s.values()) v = 500.0f + noise(rng);
    const auto d = perfq::decode_time_encoded(s, m);
    const std::size_t voxels = g.voxel_count();
    for (std::size_t k = 0; k < n - 1; ++k) {
      double sum = 0, sq = 0, cross = 0;
      for (std::size_t v = 0; v < voxels; ++v) {
        const double x = d[k * voxels + v], y = d[((k + 1) % (n - 1)) * voxels + v];
        sum += x;
        sq += x * x;
        cross += x * y;
      }
      const double mean = sum / voxels, var = sq / voxels - mean * mean;
      EXPECT_NEAR(mean, 0.0, 0.06);  // the static 500 cancels (4 standard errors)
      EXPECT_NEAR(var, 4.0 / n, 0.05 * 4.0 / n);
      EXPECT_NEAR(cross / voxels, 0.0, 0.05 * 4.0 / n);
    }
  }
}

TEST(TimeEncoded, PrepareAveragesBlocksAndOrdersByDelay) {
  perfq::Geometry g;
  g.dims = {2, 1, 1};
  const EncodingMatrix m = perfq::encoding_matrix(TimeEncodedMatrixType::Hadamard, 4);
  const perfq::TimeEncoding e = perfq::make_time_encoding(m, {0.5, 0.4, 0.3}, 0.2);
  // Block 1: ΔM = 3, 5, 7 (sub-boli 0, 1, 2); block 2: 5, 7, 9 → means 4, 6, 8.
  const auto b1 = encode(m, {{3, 3}, {5, 5}, {7, 7}}, {900, 900}, g, 1);
  const auto b2 = encode(m, {{5, 5}, {7, 7}, {9, 9}}, {910, 910}, g, 1);
  // Series: m0scan, block 1, noRF, block 2.
  perfq::Series<float> s(g, 10);
  std::vector<VolumeType> context;
  auto put = [&](std::size_t v, const float* src) { std::copy_n(src, 2, s.data() + v * 2); };
  const float m0[2] = {1200, 1300}, zero[2] = {0, 0};
  put(0, m0);
  context.push_back(VolumeType::M0Scan);
  for (std::size_t i = 0; i < 4; ++i) {
    put(1 + i, b1.data() + i * 2);
    context.push_back(i == 0 ? VolumeType::Control : VolumeType::Label);
  }
  put(5, zero);
  context.push_back(VolumeType::NoRf);
  for (std::size_t i = 0; i < 4; ++i) {
    put(6 + i, b2.data() + i * 2);
    context.push_back(VolumeType::Label);  // the types of encoded volumes are not used
  }
  perfq::AslProtocol p;
  p.post_labeling_delay = {0.2};
  p.labeling_duration = {1.2};
  const perfq::PreparedAsl out = perfq::prepare_time_encoded(s, context, p, e, {}, "ts.nii");
  ASSERT_EQ(out.delta_m.volumes(), 3u);
  // Increasing delay: sub-bolus 2 (PLD 0.2), 1 (0.5), 0 (0.9).
  EXPECT_NEAR(out.post_labeling_delay[0], 0.2, 1e-12);
  EXPECT_NEAR(out.post_labeling_delay[1], 0.5, 1e-12);
  EXPECT_NEAR(out.post_labeling_delay[2], 0.9, 1e-12);
  EXPECT_NEAR(out.labeling_duration[0], 0.3, 1e-12);
  EXPECT_NEAR(out.labeling_duration[2], 0.5, 1e-12);
  EXPECT_FLOAT_EQ(out.delta_m[0], 8.0f);
  EXPECT_FLOAT_EQ(out.delta_m[2], 6.0f);
  EXPECT_FLOAT_EQ(out.delta_m[5], 4.0f);
  EXPECT_EQ(out.repeats, (std::vector<std::size_t>{2, 2, 2}));
  ASSERT_TRUE(out.m0.has_value());
  EXPECT_FLOAT_EQ((*out.m0)[1], 1300.0f);
  ASSERT_FALSE(out.notes.empty());
  EXPECT_NE(out.notes.front().find("2 block(s) of 4"), std::string::npos) << out.notes.front();

  // Refusals: an incomplete block, deltam rows, PASL.
  std::vector<VolumeType> short_context = context;
  short_context[9] = VolumeType::NoRf;
  expect_input_error([&] { perfq::prepare_time_encoded(s, short_context, p, e, {}, "ts.nii"); },
                     "volume_type", "not a positive multiple of TimeEncodedMatrixSize (4)");
  std::vector<VolumeType> with_deltam = context;
  with_deltam[5] = VolumeType::DeltaM;
  expect_input_error([&] { perfq::prepare_time_encoded(s, with_deltam, p, e, {}, "ts.nii"); },
                     "volume_type", "deltam");
  perfq::AslProtocol pasl = p;
  pasl.labeling_type = perfq::LabelingType::Pasl;
  expect_input_error([&] { perfq::prepare_time_encoded(s, context, pasl, e, {}, "ts.nii"); },
                     "ArterialSpinLabelingType", "PASL");
}

}  // namespace
