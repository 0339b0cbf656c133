// Time-encoded (Hadamard) PCASL: encoding matrices, decoding, sub-bolus timing
// (see include/perfq/time_encoded.hpp for the conventions).
#include <perfq/errors.hpp>
#include <perfq/time_encoded.hpp>

#include "parallel.hpp"
#include "text_util.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <sstream>

PERFQ_NAMESPACE_BEGIN

namespace {

using strings::format_number;

/// Natural-order (Sylvester) Hadamard matrix of order n (a power of two), row-major.
std::vector<int> sylvester(std::size_t n) {
  std::vector<int> h(n * n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < n; ++j) {
      std::size_t bits = i & j, ones = 0;
      for (; bits != 0; bits &= bits - 1) ++ones;
      h[i * n + j] = ones % 2 == 0 ? 1 : -1;
    }
  }
  return h;
}

/// Paley (type I) Hadamard matrix of order 12 from the quadratic residues modulo 11,
/// normalised so that its first row and first column are all +1.
std::vector<int> paley12() {
  constexpr int q = 11;
  std::vector<int> chi(q, -1);  // quadratic character modulo 11
  chi[0] = 0;
  for (int x = 1; x < q; ++x) chi[(x * x) % q] = 1;
  const std::size_t n = q + 1;
  std::vector<int> h(n * n, 0);
  // H = I + S, S = [[0, 1ᵀ], [−1, Q]] with Q[i][j] = χ(j − i) (antisymmetric since 11 ≡ 3 mod 4).
  for (std::size_t j = 1; j < n; ++j) {
    h[j] = 1;       // first row
    h[j * n] = -1;  // first column
  }
  for (int i = 0; i < q; ++i) {
    for (int j = 0; j < q; ++j) h[(i + 1) * n + (j + 1)] = chi[((j - i) % q + q) % q];
  }
  for (std::size_t i = 0; i < n; ++i) h[i * n + i] += 1;
  // Normalise: every row with −1 in the first column is negated (orthogonality is kept).
  for (std::size_t i = 0; i < n; ++i) {
    if (h[i * n] < 0) {
      for (std::size_t j = 0; j < n; ++j) h[i * n + j] = -h[i * n + j];
    }
  }
  return h;
}

/// Drops the all-ones first column of a normalised n × n Hadamard matrix.
EncodingMatrix without_first_column(const std::vector<int>& h, std::size_t n) {
  EncodingMatrix m;
  m.cycles = n;
  m.entries.reserve(n * (n - 1));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 1; j < n; ++j) m.entries.push_back(h[i * n + j]);
  }
  return m;
}

}  // namespace

TimeEncodedMatrixType parse_time_encoded_matrix_type(const std::string& text) {
  const std::string t = strings::lower(text);
  if (t == "hadamard" || t == "natural") return TimeEncodedMatrixType::Hadamard;
  if (t == "walsh") return TimeEncodedMatrixType::Walsh;
  throw InvalidArgument("unknown time-encoded matrix type '" + text +
                        "' (expected Hadamard, Natural or Walsh)");
}

const char* to_string(TimeEncodedMatrixType type) noexcept {
  switch (type) {
    case TimeEncodedMatrixType::Hadamard:
      return "Hadamard";
    case TimeEncodedMatrixType::Walsh:
      return "Walsh";
  }
  return "unknown";
}

EncodingMatrix encoding_matrix(TimeEncodedMatrixType type, std::size_t size) {
  if (size == 12) {
    if (type != TimeEncodedMatrixType::Hadamard) {
      throw InvalidArgument(
          "TimeEncodedMatrixSize: 12 exists only as a Hadamard (Paley) matrix, not Walsh");
    }
    return without_first_column(paley12(), 12);
  }
  if (size != 4 && size != 8) {
    throw InvalidArgument("TimeEncodedMatrixSize: " + std::to_string(size) +
                          " is not supported (expected 4, 8 or 12)");
  }
  std::vector<int> h = sylvester(size);
  if (type == TimeEncodedMatrixType::Walsh) {
    // Sequency order: rows sorted by their number of sign changes (each count occurs once).
    std::vector<std::size_t> changes(size, 0), order(size);
    for (std::size_t i = 0; i < size; ++i) {
      for (std::size_t j = 1; j < size; ++j) {
        if (h[i * size + j] != h[i * size + j - 1]) ++changes[i];
      }
    }
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return changes[a] < changes[b]; });
    std::vector<int> w(size * size);
    for (std::size_t r = 0; r < size; ++r) {
      std::copy_n(h.begin() + static_cast<std::ptrdiff_t>(order[r] * size), size,
                  w.begin() + static_cast<std::ptrdiff_t>(r * size));
    }
    h = std::move(w);
  }
  return without_first_column(h, size);
}

void validate_encoding_matrix(const EncodingMatrix& m, const std::string& source,
                              const std::string& field) {
  if (m.cycles < 2) {
    throw InputError(source, field,
                     "needs at least 2 encoding cycles (rows), found " + std::to_string(m.cycles));
  }
  const std::size_t k = m.sub_boli();
  if (m.entries.size() != m.cycles * k) {
    throw InputError(source, field,
                     "expected " + std::to_string(m.cycles) + " x " + std::to_string(k) +
                         " entries, found " + std::to_string(m.entries.size()));
  }
  for (std::size_t i = 0; i < m.cycles; ++i) {
    for (std::size_t j = 0; j < k; ++j) {
      const int e = m.at(i, j);
      if (e != 1 && e != -1) {
        throw InputError(source, field,
                         "row " + std::to_string(i) + ", column " + std::to_string(j) + " is " +
                             std::to_string(e) + "; entries must be +1 (control) or -1 (label)");
      }
    }
  }
  for (std::size_t a = 0; a < k; ++a) {
    long sum = 0;
    for (std::size_t i = 0; i < m.cycles; ++i) sum += m.at(i, a);
    if (sum != 0) {
      throw InputError(source, field,
                       "sub-bolus column " + std::to_string(a) + " sums to " + std::to_string(sum) +
                           "; each sub-bolus must be labelled in exactly half of the cycles "
                           "(orthogonal to the all-control column), or static tissue remains");
    }
    for (std::size_t b = a + 1; b < k; ++b) {
      long dot = 0;
      for (std::size_t i = 0; i < m.cycles; ++i) dot += m.at(i, a) * m.at(i, b);
      if (dot != 0) {
        throw InputError(source, field,
                         "sub-bolus columns " + std::to_string(a) + " and " + std::to_string(b) +
                             " are not orthogonal (dot product " + std::to_string(dot) +
                             "); not a Hadamard encoding");
      }
    }
  }
}

EncodingMatrix encoding_matrix_from_rows(const std::vector<std::vector<double>>& rows,
                                         const std::string& source, const std::string& field) {
  if (rows.size() < 2) {
    throw InputError(
        source, field,
        "needs at least 2 rows (encoding cycles), found " + std::to_string(rows.size()));
  }
  const std::size_t n = rows.size();
  if (n > 64) {
    // Also bounds the O(N³) orthogonality check on untrusted input.
    throw InputError(source, field,
                     std::to_string(n) + " rows; at most 64 encoding cycles are supported");
  }
  const std::size_t width = rows.front().size();
  for (std::size_t i = 0; i < n; ++i) {
    if (rows[i].size() != width) {
      throw InputError(source, field,
                       "row " + std::to_string(i) + " has " + std::to_string(rows[i].size()) +
                           " entries but row 0 has " + std::to_string(width));
    }
    for (std::size_t j = 0; j < width; ++j) {
      const double v = rows[i][j];
      if (v != 1.0 && v != -1.0) {
        throw InputError(source, field,
                         "row " + std::to_string(i) + ", column " + std::to_string(j) + " is " +
                             format_number(v) + "; entries must be +1 (control) or -1 (label)");
      }
    }
  }
  std::size_t skip = 0;
  if (width == n) {
    // The full normalised matrix: its first column is the all-control reference.
    for (std::size_t i = 0; i < n; ++i) {
      if (rows[i][0] != 1.0) {
        throw InputError(source, field,
                         "a square matrix must have +1 in its whole first column (the "
                         "all-control column, dropped); row " +
                             std::to_string(i) + " has -1");
      }
    }
    skip = 1;
  } else if (width != n - 1) {
    throw InputError(source, field,
                     std::to_string(n) + " rows of " + std::to_string(width) +
                         " entries; expected N rows (encoding cycles) of N - 1 entries "
                         "(sub-boli), or of N entries with an all +1 first column");
  }
  EncodingMatrix m;
  m.cycles = n;
  for (const auto& row : rows) {
    for (std::size_t j = skip; j < width; ++j) m.entries.push_back(row[j] > 0 ? 1 : -1);
  }
  validate_encoding_matrix(m, source, field);
  return m;
}

std::vector<double> sub_bolus_delays(const std::vector<double>& durations, double final_pld) {
  if (durations.empty()) throw InvalidArgument("sub-bolus durations: the list is empty");
  if (!(std::isfinite(final_pld) && final_pld > 0.0)) {
    throw InvalidArgument("final post-labeling delay must be > 0 s, found " +
                          format_number(final_pld));
  }
  std::vector<double> pld(durations.size());
  double after = final_pld;  // time from the end of sub-bolus k to the readout
  for (std::size_t k = durations.size(); k-- > 0;) {
    if (!(std::isfinite(durations[k]) && durations[k] > 0.0)) {
      throw InvalidArgument("sub-bolus duration " + std::to_string(k) + " must be > 0 s, found " +
                            format_number(durations[k]));
    }
    pld[k] = after;
    after += durations[k];
  }
  return pld;
}

TimeEncoding make_time_encoding(EncodingMatrix matrix, const std::vector<double>& durations,
                                double final_pld, const std::string& source) {
  validate_encoding_matrix(matrix, source);
  if (durations.size() != matrix.sub_boli()) {
    throw InputError(source, "LabelingDuration",
                     "has " + std::to_string(durations.size()) +
                         " values; a time-encoded series with " + std::to_string(matrix.cycles) +
                         " encoding cycles needs one duration per sub-bolus (" +
                         std::to_string(matrix.sub_boli()) + ")");
  }
  for (std::size_t k = 0; k < durations.size(); ++k) {
    if (!(std::isfinite(durations[k]) && durations[k] > 0.0)) {
      throw InputError(source, "LabelingDuration",
                       "sub-bolus " + std::to_string(k) + " has a duration of " +
                           format_number(durations[k]) + " s; expected > 0");
    }
  }
  if (!(std::isfinite(final_pld) && final_pld > 0.0)) {
    throw InputError(
        source, "PostLabelingDelay",
        "the delay after the last sub-bolus must be > 0 s, found " + format_number(final_pld));
  }
  TimeEncoding e;
  e.sub_bolus_pld = sub_bolus_delays(durations, final_pld);
  e.sub_bolus_duration = durations;
  e.matrix = std::move(matrix);
  return e;
}

Series<float> decode_time_encoded(View<const float> encoded, const EncodingMatrix& matrix) {
  try {
    validate_encoding_matrix(matrix);
  } catch (const InputError& e) {
    throw InvalidArgument(std::string("decode_time_encoded: ") + e.what());
  }
  const std::size_t n = matrix.cycles, k = matrix.sub_boli();
  if (encoded.empty() || encoded.volumes % n != 0) {
    throw InvalidArgument("decode_time_encoded: " + std::to_string(encoded.volumes) +
                          " encoded volumes is not a positive multiple of the " +
                          std::to_string(n) + " encoding cycles");
  }
  const std::size_t blocks = encoded.volumes / n;
  const std::size_t voxels = encoded.voxel_count();
  Series<float> out(encoded.geometry, blocks * k);
  const double scale = 2.0 / static_cast<double>(n);
  float* dst = out.data();
  cpu::parallel_for(voxels, 0, [&](std::size_t v) {
    for (std::size_t b = 0; b < blocks; ++b) {
      for (std::size_t j = 0; j < k; ++j) {
        double sum = 0.0;
        for (std::size_t i = 0; i < n; ++i) {
          sum += matrix.at(i, j) * static_cast<double>(encoded.volume(b * n + i)[v]);
        }
        dst[(b * k + j) * voxels + v] = static_cast<float>(scale * sum);
      }
    }
  });
  return out;
}

PreparedAsl prepare_time_encoded(View<const float> series, const std::vector<VolumeType>& context,
                                 const AslProtocol& protocol, const TimeEncoding& encoding,
                                 const AveragingOptions& options, const std::string& source) {
  if (series.empty()) throw InputError(source, "", "the ASL series is empty");
  if (protocol.labeling_type == LabelingType::Pasl) {
    throw InputError(source, "ArterialSpinLabelingType",
                     "time encoding is supported for PCASL and CASL, not PASL");
  }
  if (context.size() != series.volumes) {
    throw InputError(source, "volume_type",
                     "the aslcontext has " + std::to_string(context.size()) +
                         " rows but the series has " + std::to_string(series.volumes) + " volumes");
  }
  validate_encoding_matrix(encoding.matrix, source);
  const std::size_t n = encoding.matrix.cycles, k = encoding.matrix.sub_boli();
  if (encoding.sub_bolus_duration.size() != k || encoding.sub_bolus_pld.size() != k) {
    throw InputError(source, "LabelingDuration",
                     "the time encoding needs one duration and one delay per sub-bolus (" +
                         std::to_string(k) + ")");
  }
  for (std::size_t j = 0; j < k; ++j) {
    if (!(encoding.sub_bolus_duration[j] > 0.0)) {
      throw InputError(source, "LabelingDuration",
                       "sub-bolus " + std::to_string(j) + " has a non-positive duration");
    }
    if (!(encoding.sub_bolus_pld[j] > 0.0)) {
      throw InputError(source, "PostLabelingDelay",
                       "sub-bolus " + std::to_string(j) + " has a non-positive delay");
    }
  }

  std::vector<std::size_t> encoded, m0scans;
  std::size_t no_rf = 0;
  for (std::size_t v = 0; v < context.size(); ++v) {
    switch (context[v]) {
      case VolumeType::Control:
      case VolumeType::Label:
        encoded.push_back(v);
        break;
      case VolumeType::M0Scan:
        m0scans.push_back(v);
        break;
      case VolumeType::NoRf:
        ++no_rf;
        break;
      case VolumeType::DeltaM:
      case VolumeType::Cbf:
        throw InputError(source, "volume_type",
                         "row " + std::to_string(v) + " is '" + to_string(context[v]) +
                             "'; a time-encoded series holds only encoded volumes (listed as "
                             "control or label), m0scan and noRF");
    }
  }
  if (encoded.empty() || encoded.size() % n != 0) {
    throw InputError(source, "volume_type",
                     std::to_string(encoded.size()) +
                         " encoded (control/label) volumes is not a positive multiple of "
                         "TimeEncodedMatrixSize (" +
                         std::to_string(n) + "): blocks of " + std::to_string(n) +
                         " encoding cycles are decoded together");
  }

  // Gather the encoded volumes contiguously, decode block by block.
  const std::size_t voxels = series.voxel_count();
  std::vector<float> gathered(encoded.size() * voxels);
  for (std::size_t e = 0; e < encoded.size(); ++e) {
    std::copy_n(series.volume(encoded[e]), voxels, gathered.data() + e * voxels);
  }
  const Series<float> decoded = decode_time_encoded(
      View<const float>{gathered.data(), series.geometry, encoded.size()}, encoding.matrix);
  gathered = std::vector<float>();
  const std::size_t blocks = encoded.size() / n;

  // The decoded volumes are deltam volumes with their own timing; m0scan volumes follow.
  // prepare_asl then averages the blocks per sub-bolus and orders them by delay.
  const std::size_t total = blocks * k + m0scans.size();
  std::vector<float> data(total * voxels);
  std::copy(decoded.values().begin(), decoded.values().end(), data.begin());
  for (std::size_t m = 0; m < m0scans.size(); ++m) {
    std::copy_n(series.volume(m0scans[m]), voxels, data.data() + (blocks * k + m) * voxels);
  }
  std::vector<VolumeType> types(blocks * k, VolumeType::DeltaM);
  types.resize(total, VolumeType::M0Scan);
  AslProtocol timing = protocol;
  timing.post_labeling_delay.assign(total, 0.0);
  timing.labeling_duration.assign(total, 0.0);
  for (std::size_t b = 0; b < blocks; ++b) {
    for (std::size_t j = 0; j < k; ++j) {
      timing.post_labeling_delay[b * k + j] = encoding.sub_bolus_pld[j];
      timing.labeling_duration[b * k + j] = encoding.sub_bolus_duration[j];
    }
  }
  const Series<float> combined(series.geometry, total, std::move(data));
  PreparedAsl out = prepare_asl(combined, types, timing, options, source);
  out.notes.insert(
      out.notes.begin(),
      "time-encoded: " + std::to_string(blocks) + " block(s) of " + std::to_string(n) +
          " encoded volumes decoded into " + std::to_string(k) + " sub-bolus images each (" +
          (encoding.matrix_source.empty() ? std::string("given matrix") : encoding.matrix_source) +
          ")");
  if (no_rf > 0) out.notes.push_back(std::to_string(no_rf) + " noRF volume(s) ignored");
  return out;
}

PERFQ_NAMESPACE_END
