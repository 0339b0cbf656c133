/// @file
/// @brief Time-encoded (Hadamard) PCASL: encoding matrices, decoding of the encoded volumes
/// into sub-bolus ΔM images, and the timing of each sub-bolus.
///
/// A time-encoded PCASL acquisition splits the labeling train into K = N − 1 sub-boli. Each
/// of N encoding cycles labels some sub-boli and leaves the others in control; the pattern is
/// an N × (N − 1) matrix E:
///
/// - rows are encoding cycles, in the order they are acquired within a block of N volumes;
/// - columns are sub-boli, in labeling order: column 0 is the sub-bolus labelled first (the
///   one with the longest delay before the readout), column K − 1 the one labelled last;
/// - **E[i][k] = +1: sub-bolus k is in control in cycle i; −1: it is labelled.**
///
/// With this sign convention the acquired image of cycle i is
/// `S_i = C − Σ_{k : E[i][k] = −1} ΔM_k`, C the control (static tissue) signal, and the columns
/// of E are orthogonal to each other and to a column of ones (Eᵀ E = N I, Σ_i E[i][k] = 0), so
///
///     ΔM_k = (2 / N) Σ_i E[i][k] S_i        (decoded ΔM = control − label, positive)
///
/// removes C exactly. This is the convention of ExploreASL's `TimeEncodedMatrix` for Siemens
/// data (1 control, −1 label); a matrix written with the opposite sign decodes to negative ΔM
/// and must be negated first.
///
/// Generated matrices (each has cycle 0 all control, a normalised Hadamard matrix H of order
/// N with its all-ones first column removed):
/// - `Hadamard` (natural / Sylvester order), N = 4 or 8: H[i][j] = (−1)^popcount(i AND j);
/// - `Walsh` (sequency order), N = 4 or 8: the rows of the natural matrix sorted by their
///   number of sign changes (a symmetric matrix);
/// - `Hadamard`, N = 12 (not a power of two, so not Sylvester): Paley's construction from the
///   quadratic residues modulo 11, normalised so that its first row and column are all +1.
///
/// Timing: sub-bolus k has its own labeling duration τ_k and is followed by the later
/// sub-boli and the final post-labeling delay, so its effective PLD is
/// `PLD_k = PLD_final + Σ_{j > k} τ_j`. Each decoded ΔM_k is then an ordinary PCASL image of
/// duration τ_k and delay PLD_k, fitted by the multi-delay kinetic model (kinetic.hpp).
#pragma once

#include <perfq/asl_series.hpp>
#include <perfq/image.hpp>
#include <perfq/protocol.hpp>

#include <cstddef>
#include <string>
#include <vector>

PERFQ_NAMESPACE_BEGIN

/// @brief The named encoding schemes perfq can generate (BIDS-like `TimeEncodedMatrixType`).
enum class TimeEncodedMatrixType {
  Hadamard,  ///< natural (Sylvester) order for N = 4, 8; Paley for N = 12
  Walsh      ///< sequency order, N = 4, 8
};

/// @brief Parses a matrix type: "Hadamard" (or "natural") and "Walsh", any letter case.
/// @throws InvalidArgument for any other text.
PERFQ_API TimeEncodedMatrixType parse_time_encoded_matrix_type(const std::string& text);
/// @brief The name of a matrix type, "Hadamard" or "Walsh" (as parse_time_encoded_matrix_type
/// reads it back and as a BIDS sidecar's `TimeEncodedMatrixType` holds it); "unknown" for
/// any other value.
PERFQ_API const char* to_string(TimeEncodedMatrixType type) noexcept;

/// @brief An N × (N − 1) time-encoding matrix: rows are encoding cycles, columns sub-boli in
/// labeling order, +1 control, −1 label (see the file's description).
struct EncodingMatrix {
  std::size_t cycles = 0;    ///< N, the encoded volumes of one block
  std::vector<int> entries;  ///< row-major, cycles × (cycles − 1), each +1 or −1

  /// @brief Number of sub-boli, N − 1 (0 for an empty matrix).
  std::size_t sub_boli() const noexcept { return cycles > 0 ? cycles - 1 : 0; }
  /// @brief Entry of cycle `cycle` for sub-bolus `sub_bolus`.
  int at(std::size_t cycle, std::size_t sub_bolus) const noexcept {
    return entries[cycle * sub_boli() + sub_bolus];
  }
};

/// @brief Generates a standard encoding matrix.
/// @param type the row order: Hadamard (natural) or Walsh (sequency)
/// @param size N: 4 or 8 for either type, 12 for Hadamard only
/// @throws InvalidArgument for any other size (naming `TimeEncodedMatrixSize`).
PERFQ_API EncodingMatrix encoding_matrix(TimeEncodedMatrixType type, std::size_t size);

/// @brief An encoding matrix from explicit rows (e.g. a sidecar's `TimeEncodedMatrix`).
/// Accepts N rows of N − 1 entries (perfq's form), or N rows of N entries whose first column
/// is all +1 (the full normalised Hadamard matrix, as ExploreASL stores it): that column is
/// dropped. The result is checked by validate_encoding_matrix.
/// @param rows the rows of the matrix, one per encoding cycle, each entry +1 or −1
/// @param source, field named in errors (file and BIDS field)
/// @throws InputError naming `source` and `field`: fewer than 2 or more than 64 rows, ragged
/// rows, a wrong number of columns, entries other than ±1, columns not orthogonal or not
/// balanced.
PERFQ_API EncodingMatrix encoding_matrix_from_rows(const std::vector<std::vector<double>>& rows,
                                                   const std::string& source = {},
                                                   const std::string& field = "TimeEncodedMatrix");

/// @brief Checks a matrix: at least 2 cycles, N × (N − 1) entries, each +1 or −1, every column
/// summing to 0 (static tissue cancels) and every pair of columns orthogonal (Eᵀ E = N I).
/// @throws InputError naming `source` and `field` with the first offending row/column.
PERFQ_API void validate_encoding_matrix(const EncodingMatrix& matrix,
                                        const std::string& source = {},
                                        const std::string& field = "TimeEncodedMatrix");

/// @brief Effective PLD of each sub-bolus: `PLD_k = final_pld + Σ_{j > k} τ_j`.
/// @param durations τ_k in labeling order (first labelled first), each > 0
/// @param final_pld delay after the last sub-bolus (> 0)
/// @throws InvalidArgument for an empty list, non-positive or non-finite values.
PERFQ_API std::vector<double> sub_bolus_delays(const std::vector<double>& durations,
                                               double final_pld);

/// @brief A time-encoded acquisition: its matrix and the timing of each sub-bolus.
struct TimeEncoding {
  EncodingMatrix matrix;  ///< the encoding matrix, N × (N − 1), checked
  std::vector<double> sub_bolus_duration;  ///< τ_k, s, labeling order (N − 1 values)
  std::vector<double> sub_bolus_pld;       ///< effective PLD_k, s, labeling order
  std::string matrix_source;  ///< how the matrix was obtained, e.g. "Hadamard 8 (generated)"
};

/// @brief Builds a TimeEncoding from the sub-bolus durations and the final PLD.
/// @throws InputError naming `source`: `LabelingDuration` when the number of durations is not
/// N − 1 or one is not positive, `PostLabelingDelay` when the final PLD is not positive, and
/// the matrix's field when it is invalid.
PERFQ_API TimeEncoding make_time_encoding(EncodingMatrix matrix,
                                          const std::vector<double>& durations, double final_pld,
                                          const std::string& source = {});

/// @brief Decodes blocks of N encoded volumes into sub-bolus ΔM images, block by block:
/// output volume `b (N − 1) + k` is `(2 / N) Σ_i E[i][k] · encoded[b N + i]` (sums in double).
/// @param encoded the encoded volumes only, N per block, blocks one after another
/// @param matrix the encoding matrix E (checked as by validate_encoding_matrix)
/// @throws InvalidArgument when the matrix is invalid or the volume count is not a positive
/// multiple of N.
PERFQ_API Series<float> decode_time_encoded(View<const float> encoded,
                                            const EncodingMatrix& matrix);

/// @brief From a time-encoded ASL series to averaged sub-bolus ΔM images.
///
/// Volume types (aslcontext): every `control` or `label` row is an encoded volume — its type
/// is not used; the encoded volumes, in series order, form blocks of N, and the i-th volume
/// of a block is encoding cycle i (row i of the matrix). `m0scan` rows are averaged into M0 and
/// `noRF` rows ignored, as for other series; `deltam` and `cbf` rows are refused. Each block
/// is decoded (decode_time_encoded); the blocks are the repeats of each sub-bolus, averaged
/// (with `options.robust`, outlier blocks are dropped per sub-bolus as in prepare_asl). The
/// result has one ΔM volume per sub-bolus, in order of increasing delay (the last-labelled
/// sub-bolus first), with its own PLD and duration.
/// @param series the acquired 4D series; its number of volumes must equal `context.size()`
/// @param context the type of each volume (BIDS aslcontext)
/// @param protocol labeling type (PCASL or CASL); other timing fields are not used
/// @param encoding the matrix and the timing (duration and effective PLD) of each sub-bolus,
///        which gives the timing of the output volumes
/// @param options averaging of the blocks and outlier rejection (as in prepare_asl)
/// @param source file name used in error messages
/// @throws InputError naming `source`: `ArterialSpinLabelingType` for PASL, `volume_type` for
/// rows ≠ volumes, deltam/cbf rows, or an encoded volume count that is not a positive multiple
/// of N; the matrix or timing fields when the encoding is invalid.
PERFQ_API PreparedAsl prepare_time_encoded(View<const float> series,
                                           const std::vector<VolumeType>& context,
                                           const AslProtocol& protocol,
                                           const TimeEncoding& encoding,
                                           const AveragingOptions& options = {},
                                           const std::string& source = {});

PERFQ_NAMESPACE_END
