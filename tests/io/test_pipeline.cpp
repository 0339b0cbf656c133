// The pipeline in the library (perfq/io/pipeline.hpp) against the perfq tool: for the
// phantom's single-delay, multi-delay (ATT prior, arterial component), time-encoded, PASL,
// reference-calibrated and partial-volume-corrected cases, quantify_series gives the maps
// perfq cbf writes bit for bit, and the same provenance record.
#include <perfq/errors.hpp>
#include <perfq/io/bids.hpp>
#include <perfq/io/nifti.hpp>
#include <perfq/io/pipeline.hpp>
#include <perfq/phantom.hpp>

#include <gtest/gtest.h>
#include <zlib.h>

#include "cli_test_util.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace cli_test;  // run, Result, read_text, scratch_dir

struct Case {
  std::string name;
  perfq::PhantomOptions phantom;
  std::string options;  ///< perfq cbf's options (the truth folder as {truth})
  perfq::io::SeriesRequest request;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name << ":" << c.options; }

/// The phantom's options with a small grid and `delays`.
perfq::PhantomOptions small(std::vector<double> delays) {
  perfq::PhantomOptions o;
  o.dims = {30, 36, 24};
  o.repeats = 2;
  o.snr = 10;
  o.delays = std::move(delays);
  return o;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

template <class T>
void expect_same_bits(const perfq::Volume<T>& library, const fs::path& file) {
  SCOPED_TRACE(file.string());
  ASSERT_TRUE(fs::exists(file));
  if constexpr (std::is_same_v<T, float>) {
    const perfq::Image<float> written = perfq::io::read_nifti(file.string());
    ASSERT_EQ(written.size(), library.size());
    EXPECT_EQ(std::memcmp(written.values().data(), library.values().data(),
                          library.size() * sizeof(float)),
              0);
  } else {
    const perfq::Image<std::int32_t> written = perfq::io::read_nifti_labels(file.string());
    ASSERT_EQ(written.size(), library.size());
    for (std::size_t i = 0; i < library.size(); ++i) {
      ASSERT_EQ(written[i], static_cast<std::int32_t>(library[i])) << "voxel " << i;
    }
  }
}

/// The phantom cases: single-delay, multi-delay (ATT prior, arterial component),
/// time-encoded, PASL, reference-calibrated, partial-volume-corrected.
std::vector<Case> phantom_cases() {
  std::vector<Case> cases;
  cases.push_back({"single", small({1.8}), "", {}});
  {
    Case c{"multi", small({0.5, 1.0, 1.5, 2.0, 2.5}), " --att-prior --arterial", {}};
    c.request.kinetic.att_prior = true;
    c.request.kinetic.arterial = true;
    cases.push_back(c);
  }
  {
    perfq::PhantomOptions o = small({0.2});
    o.time_encoded = 8;
    cases.push_back({"time-encoded", o, "", {}});
  }
  {
    perfq::PhantomOptions o = small({2.5});
    o.pasl = true;
    cases.push_back({"pasl", o, "", {}});
  }
  {
    Case c{"reference",
           small({1.8}),
           " --ref-tissue csf --ref-mask {truth}/sub-01_label-ventricles_mask.nii.gz --robust",
           {}};
    c.request.reference_tissue = perfq::ReferenceTissue::Csf;
    c.request.averaging.robust = true;
    cases.push_back(c);
  }
  {
    Case c{
        "pvc",
        small({1.8}),
        " --pvc-gm {truth}/sub-01_label-GM_mask.nii.gz --pvc-wm {truth}/sub-01_label-WM_mask.nii.gz"
        " --m0-smooth 6 --mask {truth}/sub-01_mask.nii.gz",
        {}};
    c.request.m0_smooth_fwhm = 6;
    cases.push_back(c);
  }
  return cases;
}

class PipelineCase : public ::testing::TestWithParam<Case> {};

TEST_P(PipelineCase, LibraryAndToolGiveTheSameMapsAndProvenance) {
  Case c = GetParam();
  const fs::path dir = scratch_dir("pipeline-" + c.name);
  const std::string asl =
      perfq::io::write_phantom_bids(perfq::make_phantom(c.phantom), (dir / "bids").string());
  const std::string truth = (dir / "bids" / "derivatives" / "truth" / "sub-01" / "perf").string();
  // The paths the options name, in the request too.
  if (c.name == "reference")
    c.request.reference_mask = truth + "/sub-01_label-ventricles_mask.nii.gz";
  if (c.name == "pvc") {
    c.request.pvc_grey = truth + "/sub-01_label-GM_mask.nii.gz";
    c.request.pvc_white = truth + "/sub-01_label-WM_mask.nii.gz";
    c.request.mask_path = truth + "/sub-01_mask.nii.gz";
  }
  c.request.execution.backend = perfq::Backend::Cpu;
  const fs::path out = dir / "out";
  const Result r = run("cbf " + asl + " --backend cpu -o " + out.string() +
                       replace_all(c.options, "{truth}", truth));
  ASSERT_EQ(r.status, 0) << r.output;

  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, c.request);
  std::vector<std::string> names;
  for (const auto& file : perfq::io::series_outputs(maps)) {
    names.push_back(file.name);
    if (file.map != nullptr) expect_same_bits(*file.map, out / file.name);
    if (file.codes != nullptr) expect_same_bits(*file.codes, out / file.name);
    if (file.text != nullptr) EXPECT_EQ(*file.text, read_text(out / file.name));
  }
  // The tool wrote exactly these files.
  std::vector<std::string> listed;
  for (const auto& e : fs::directory_iterator(out)) listed.push_back(e.path().filename().string());
  std::sort(listed.begin(), listed.end());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(listed, names);
  for (const auto& warning : maps.warnings) {  // returned by the library, printed by the tool
    EXPECT_NE(r.output.find("perfq cbf: warning: " + warning), std::string::npos) << r.output;
  }
}

INSTANTIATE_TEST_SUITE_P(Phantom, PipelineCase, ::testing::ValuesIn(phantom_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.name;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(Pipeline, WritesWhatItReturnsAndRefusesAnIncompleteRequest) {
  const fs::path dir = scratch_dir("pipeline-write");
  const std::string asl =
      perfq::io::write_phantom_bids(perfq::make_phantom(small({1.8})), (dir / "bids").string());
  perfq::io::SeriesRequest request;
  request.execution.backend = perfq::Backend::Cpu;
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, request);
  EXPECT_EQ(maps.prefix, "sub-01");
  EXPECT_EQ(maps.delays, 1u);
  EXPECT_GT(maps.median_cbf, 10.0);
  EXPECT_FALSE(maps.att);
  fs::create_directories(dir / "out");
  for (const auto& file : perfq::io::series_outputs(maps)) {
    perfq::io::write_series_output(file, (dir / "out" / file.name).string());
  }
  expect_same_bits(maps.cbf, dir / "out" / "sub-01_cbf.nii.gz");
  EXPECT_EQ(read_text(dir / "out" / "sub-01_cbf.json"), maps.provenance_json);

  // All together or not at all: refused when outputs exist (without overwrite), and when a
  // folder lies where an output file goes (even with it), nothing written either way.
  const fs::path out = dir / "set";
  const auto written = perfq::io::write_series_outputs(maps, out.string(), false);
  EXPECT_EQ(written.size(), perfq::io::series_outputs(maps).size());
  EXPECT_THROW(perfq::io::write_series_outputs(maps, out.string(), false), perfq::Error);
  EXPECT_NO_THROW(perfq::io::write_series_outputs(maps, out.string(), true));
  const fs::path blocked = dir / "blocked";
  fs::create_directories(blocked / "sub-01_cbf.json");
  try {
    perfq::io::write_series_outputs(maps, blocked.string(), true);
    ADD_FAILURE() << "a folder was replaced";
  } catch (const perfq::Error& e) {
    EXPECT_NE(std::string(e.what()).find((blocked / "sub-01_cbf.json").string() + ": is a folder"),
              std::string::npos)
        << e.what();
  }
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(blocked))
    left.push_back(e.path().filename().string());
  EXPECT_EQ(left, std::vector<std::string>{"sub-01_cbf.json"});

  // Half a partial-volume request is a programming error, not bad data.
  request.pvc_grey = "gm.nii.gz";
  EXPECT_THROW(perfq::io::quantify_series(asl, request), perfq::InvalidArgument);
  // Bad data names the file, as perfq cbf's errors do.
  request.pvc_grey.reset();
  request.mask_path = (dir / "missing.nii.gz").string();
  try {
    perfq::io::quantify_series(asl, request);
    ADD_FAILURE() << "no error";
  } catch (const perfq::InputError& e) {
    EXPECT_EQ(e.file(), *request.mask_path);
  }
}

/// The InvalidArgument message of `f`, or "" when it throws none.
std::string refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const perfq::InvalidArgument& e) {
    return e.what();
  }
  return {};
}

TEST(Pipeline, OptionsAreSetByTheToolsNamesAndCheckedWhereverTheyComeFrom) {
  const perfq::io::SeriesRequest r = perfq::io::parse_series_options(
      {"--att-prior", "--lambda", "0.95", "--grid-points", "48", "--ref-tissue", "csf",
       "--ref-mask", "v.nii.gz", "--t2-blood", "0.2", "--model", "whitepaper", "--robust"});
  EXPECT_TRUE(r.kinetic.att_prior);
  EXPECT_EQ(r.blood_brain_partition, 0.95);
  EXPECT_EQ(r.kinetic.grid_points, 48);
  EXPECT_EQ(r.reference_tissue, perfq::ReferenceTissue::Csf);
  EXPECT_EQ(r.reference_mask, std::optional<std::string>("v.nii.gz"));
  EXPECT_EQ(r.blood_t2, 0.2);
  EXPECT_EQ(r.kinetic.variant, perfq::KineticVariant::WhitePaper);
  EXPECT_TRUE(r.averaging.robust);
  // Every option the tool's --help lists but the output and execution ones.
  std::vector<std::string> names;
  for (const auto& o : perfq::io::series_options()) names.push_back(o.name);
  const Result help = run("cbf --help");
  for (const auto& name : names) {
    EXPECT_NE(help.output.find(name), std::string::npos) << name << " is not in perfq cbf --help";
  }
  // Out of range, unknown, doubled, missing values and bad combinations: refused naming the
  // options, in the tool's words.
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--lambda", "0"}, "--lambda: expected a value in (0, 2] ml/g, got 0"},
      {{"--grid-points", "2.5"}, "--grid-points: expected a whole number, got '2.5'"},
      {{"--alpha", "x"}, "--alpha: expected a number, got 'x'"},
      {{"--ref-t1", "3"}, "belong to reference-region calibration: give --ref-tissue"},
      {{"--t2-blood", "0.15"}, "belong to reference-region calibration: give --ref-tissue"},
      {{"--att-min", "2", "--att-max", "1"}, "--att-min (2 s) must be below --att-max (1 s)"},
      {{"--pvc-wm", "wm.nii.gz"}, "--pvc-gm and --pvc-wm go together"},
      {{"--frobnicate"}, "unknown option '--frobnicate'"},
      {{"--lambda", "1", "--lambda", "1"}, "--lambda given twice"},
      {{"--lambda"}, "--lambda needs a value"}};
  for (const auto& [options, message] : bad) {
    const std::string what = refusal([&] { perfq::io::parse_series_options(options); });
    EXPECT_NE(what.find(message), std::string::npos) << options.front() << ": " << what;
  }
  perfq::io::SeriesRequest request;
  EXPECT_NE(refusal([&] { perfq::io::set_series_option(request, "--att-prior", "yes"); }), "");
  EXPECT_NE(refusal([&] { perfq::io::set_series_option(request, "--mask"); }), "");
  // A combination set field by field is checked by the pipeline itself.
  request.reference_tissue = perfq::ReferenceTissue::Csf;
  EXPECT_NE(refusal([&] {
              perfq::io::quantify_series("absent_asl.nii.gz", request);
            }).find("--ref-tissue needs --ref-mask"),
            std::string::npos);
}

}  // namespace

namespace {

/// The bytes of a NIfTI file as stored, a `.nii.gz` inflated.
std::string nifti_bytes(const fs::path& file) {
  gzFile in = gzopen(file.string().c_str(), "rb");  // reads a .nii as it is
  std::string bytes;
  if (in == nullptr) return bytes;
  std::vector<char> buffer(1 << 16);
  int got = 0;
  while ((got = gzread(in, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) {
    bytes.append(buffer.data(), static_cast<std::size_t>(got));
  }
  gzclose(in);
  return bytes;
}

}  // namespace

TEST(Pipeline, UncompressedOutputsHoldTheSameImagesAsCompressedOnes) {
  namespace fs = std::filesystem;
  using cli_test::read_text;
  using cli_test::scratch_dir;
  const fs::path dir = scratch_dir("pipeline-uncompressed");
  // Multi-delay without a mask: CBF, ATT, their errors, fit status and the brain mask.
  const std::string asl = perfq::io::write_phantom_bids(
      perfq::make_phantom(small({0.5, 1.0, 1.5, 2.0})), (dir / "bids").string());
  perfq::io::SeriesRequest request;
  request.execution.backend = perfq::Backend::Cpu;
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, request);
  ASSERT_TRUE(maps.att && maps.brain_mask);

  perfq::io::SeriesOutputOptions nii;
  nii.compressed = false;
  const auto gz_files = perfq::io::series_outputs(maps);
  const auto nii_files = perfq::io::series_outputs(maps, nii);
  ASSERT_EQ(gz_files.size(), nii_files.size());
  EXPECT_EQ(
      perfq::io::series_output_names("sub-01", nii),
      (std::vector<std::string>{"sub-01_cbf.nii", "sub-01_cbf.json", "sub-01_fitstatus.nii"}));

  const auto gz_written = perfq::io::write_series_outputs(maps, (dir / "gz").string(), false);
  const auto nii_written =
      perfq::io::write_series_outputs(maps, (dir / "nii").string(), false, nii);
  ASSERT_EQ(gz_written.size(), nii_written.size());
  std::size_t images = 0;
  for (std::size_t k = 0; k < gz_written.size(); ++k) {
    const fs::path gz = gz_written[k], plain = nii_written[k];
    SCOPED_TRACE(plain.string());
    EXPECT_EQ(plain.filename().string(), nii_files[k].name);
    if (gz.extension() == ".json" || gz.extension() == ".tsv") {  // text: the same name and text
      EXPECT_EQ(plain.filename(), gz.filename());
      EXPECT_EQ(read_text(plain), read_text(gz));
      continue;
    }
    ++images;
    const std::string gz_name = gz.filename().string();
    ASSERT_TRUE(gz_name.size() > 7 && gz_name.compare(gz_name.size() - 7, 7, ".nii.gz") == 0);
    EXPECT_EQ(plain.filename().string(), gz_name.substr(0, gz_name.size() - 3));  // .nii
    // Read back: the same voxel values and geometry, exactly.
    const perfq::Image<float> a = perfq::io::read_nifti(gz.string());
    const perfq::Image<float> b = perfq::io::read_nifti(plain.string());
    EXPECT_EQ(a.geometry().dims, b.geometry().dims);
    EXPECT_EQ(a.geometry().spacing, b.geometry().spacing);
    EXPECT_EQ(a.geometry().origin, b.geometry().origin);
    EXPECT_EQ(a.geometry().direction, b.geometry().direction);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
    // And as stored: the .nii is the .nii.gz inflated, header included, byte for byte; and
    // it is not compressed (starts with the header's size, 348, not gzip's magic).
    const std::string raw = read_text(plain);
    EXPECT_EQ(raw, nifti_bytes(gz));
    ASSERT_GE(raw.size(), 352u);
    std::int32_t header_size = 0;
    std::memcpy(&header_size, raw.data(), sizeof header_size);
    EXPECT_EQ(header_size, 348);
  }
  EXPECT_EQ(images,
            gz_written.size() - 3);  // all but _cbf.json and the quality table (.tsv, .json)

  // Refusing existing outputs looks at the names of the format asked for.
  EXPECT_THROW(perfq::io::write_series_outputs(maps, (dir / "nii").string(), false, nii),
               perfq::Error);
  EXPECT_NO_THROW(perfq::io::write_series_outputs(maps, (dir / "nii").string(), true, nii));
}

TEST(Pipeline, CompressedOutputsAreTheSameBytesWhateverTheThreads) {
  // The images are deflated in 1 MiB gzip members side by side: the files must not depend on
  // how many threads did it. A grid of 1.3 M voxels makes each float map five members.
  namespace fs = std::filesystem;
  using cli_test::read_text;
  const fs::path dir = cli_test::scratch_dir("pipeline-compress-threads");
  perfq::PhantomOptions o = small({1.8});
  o.dims = {120, 120, 90};
  o.repeats = 1;
  const std::string asl =
      perfq::io::write_phantom_bids(perfq::make_phantom(o), (dir / "bids").string());
  perfq::io::SeriesRequest request;
  request.execution.backend = perfq::Backend::Cpu;
  const perfq::io::SeriesMaps maps = perfq::io::quantify_series(asl, request);
  std::vector<std::vector<std::string>> written;
  for (const int threads : {1, 2, 3}) {
    perfq::io::SeriesOutputOptions options;
    options.threads = threads;
    written.push_back(perfq::io::write_series_outputs(
        maps, (dir / ("t" + std::to_string(threads))).string(), false, options));
  }
  for (std::size_t k = 0; k < written[0].size(); ++k) {
    const fs::path a = written[0][k];
    if (a.extension() != ".gz") continue;
    const std::string bytes = read_text(a);
    for (std::size_t t = 1; t < written.size(); ++t) {
      EXPECT_TRUE(read_text(written[t][k]) == bytes) << written[t][k];
    }
  }
}
