// perfq resample end to end: maps, labels and masks onto a reference grid through transform
// files (a chain, an inverse: item) equal to the library's, and the tool's errors.
#include "cli_test_util.hpp"

#include <perfq/io/nifti.hpp>
#include <perfq/io/resample.hpp>
#include <perfq/io/transform.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;
using cli_test::run;
using perfq::Geometry;
using perfq::Image;
using perfq::io::compose;
using perfq::io::read_transform;
using perfq::io::Transform;

struct Files {
  fs::path dir;
  std::string image, labels, mask, reference, rigid, affine;
  Image<float> map;
  Image<std::int32_t> atlas;
  perfq::Mask brain;
  Geometry target;
};

/// A 2 mm source (map, labels, mask), a 3 × 3 × 4 mm 4D reference, a rigid .txt and an
/// affine .mat.
Files make_files(const std::string& name) {
  Files f;
  f.dir = cli_test::scratch_dir("resample-" + name);
  Geometry source;
  source.dims = {30, 32, 24};
  source.spacing = {2.0, 2.0, 2.0};
  source.origin = {-30.0, -32.0, -24.0};
  f.map = Image<float>(source);
  f.atlas = Image<std::int32_t>(source);
  f.brain = perfq::Mask(source);
  for (std::size_t k = 0; k < 24; ++k) {
    for (std::size_t j = 0; j < 32; ++j) {
      for (std::size_t i = 0; i < 30; ++i) {
        const double x = i - 14.5, y = j - 15.5, z = k - 11.5;
        const double r = std::sqrt(x * x + y * y + z * z);
        f.map.at(i, j, k) = static_cast<float>(50.0 + 20.0 * std::sin(0.3 * x) * std::cos(0.2 * y));
        f.brain.at(i, j, k) = r < 10.0 ? 1 : 0;
        f.atlas.at(i, j, k) = r < 10.0 ? (x < 0 ? 1 : 2) + (z < 0 ? 2 : 0) : 0;
      }
    }
  }
  f.target.dims = {18, 20, 10};
  f.target.spacing = {3.0, 3.0, 4.0};
  f.target.origin = {-26.0, -28.0, -18.0};
  const Image<float> reference(f.target, 3, 1.0f);
  f.image = (f.dir / "map.nii.gz").string();
  f.labels = (f.dir / "atlas.nii.gz").string();
  f.mask = (f.dir / "brain.nii.gz").string();
  f.reference = (f.dir / "asl.nii.gz").string();
  f.rigid = (f.dir / "from-T1w_to-asl_mode-image_xfm.txt").string();
  f.affine = (f.dir / "from-MNI_to-T1w_mode-image_xfm.mat").string();
  perfq::io::write_nifti(f.image, f.map.view());
  perfq::io::write_nifti(f.labels, f.atlas.view());
  perfq::io::write_nifti(f.mask, f.brain.view());
  perfq::io::write_nifti(f.reference, reference.view());
  perfq::io::write_transform(f.rigid, Transform::rigid({0.05, -0.1, 0.08}, {2.0, -1.5, 3.0}));
  perfq::io::write_transform(
      f.affine,
      Transform::affine({1.05, 0.02, 0.0, -0.01, 0.95, 0.03, 0.0, 0.02, 1.1}, {-1.0, 2.0, 0.5}));
  return f;
}

TEST(ResampleCli, MapLabelsAndMaskEqualTheLibrary) {
  const Files f = make_files("kinds");
  const Transform t = read_transform(f.rigid);
  const std::string common = " --reference " + f.reference + " --transform " + f.rigid;

  const std::string map_out = (f.dir / "out" / "map.nii.gz").string();
  auto r = run("resample " + f.image + common + " -o " + map_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("wrote " + map_out), std::string::npos) << r.output;
  EXPECT_EQ(perfq::io::read_nifti_info(map_out).stored_type, "float32");
  const Image<float> map = perfq::io::read_nifti(map_out);
  EXPECT_TRUE(map.geometry().same_grid(f.target));
  EXPECT_EQ(map.volumes(), 1u);
  EXPECT_EQ(map.values(), perfq::io::resample(f.map, f.target, t).values());

  const std::string labels_out = (f.dir / "labels.nii.gz").string();
  r = run("resample " + f.labels + common + " --labels -o " + labels_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("majority vote"), std::string::npos) << r.output;
  EXPECT_EQ(perfq::io::read_nifti_info(labels_out).stored_type, "int32");
  EXPECT_EQ(perfq::io::read_nifti_labels(labels_out).values(),
            perfq::io::resample_labels(f.atlas, f.target, t).values());

  const std::string nearest_out = (f.dir / "nearest.nii.gz").string();
  r = run("resample " + f.labels + common + " --labels --interpolation nearest -o " + nearest_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(
      perfq::io::read_nifti_labels(nearest_out).values(),
      perfq::io::resample_labels(f.atlas, f.target, t, perfq::io::LabelRule::Nearest).values());

  const std::string mask_out = (f.dir / "mask.nii").string();
  r = run("resample " + f.mask + common + " --mask --min-fraction 0.25 --threads 1 -o " + mask_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(perfq::io::read_nifti_info(mask_out).stored_type, "uint8");
  EXPECT_EQ(perfq::io::read_nifti_mask(mask_out).values(),
            perfq::io::resample_mask(f.brain, f.target, t, 0.25).values());

  // An existing output is kept unless --overwrite.
  r = run("resample " + f.image + common + " -o " + map_out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  r = run("resample " + f.image + common + " --footprint 1 --overwrite -o " + map_out);
  ASSERT_EQ(r.status, 0) << r.output;
  perfq::io::ResampleOptions one;
  one.footprint = 1;
  EXPECT_EQ(perfq::io::read_nifti(map_out).values(),
            perfq::io::resample(f.map, f.target, t, one).values());
}

TEST(ResampleCli, ChainAndInverseItemsEqualTheLibrarysCompose) {
  const Files f = make_files("chain");
  const Transform rigid = read_transform(f.rigid), affine = read_transform(f.affine);

  // Image-mode order: the affine (MNI → T1w) first, then the rigid (T1w → ASL).
  const std::string chain_out = (f.dir / "chain.nii.gz").string();
  auto r = run("resample " + f.image + " --reference " + f.reference + " --transform " + f.affine +
               "," + f.rigid + " -o " + chain_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(perfq::io::read_nifti(chain_out).values(),
            perfq::io::resample(f.map, f.target, compose({affine, rigid})).values());
  // Not the other order.
  EXPECT_NE(perfq::io::read_nifti(chain_out).values(),
            perfq::io::resample(f.map, f.target, compose({rigid, affine})).values());

  const std::string inverse_out = (f.dir / "inverse.nii.gz").string();
  r = run("resample " + f.labels + " --reference " + f.reference + " --transform " + f.affine +
          ",inverse:" + f.rigid + " --labels -o " + inverse_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(
      perfq::io::read_nifti_labels(inverse_out).values(),
      perfq::io::resample_labels(f.atlas, f.target, compose({affine, rigid.inverse()})).values());

  // No --transform: the image and the reference share one space.
  const std::string same_out = (f.dir / "same.nii.gz").string();
  r = run("resample " + f.image + " --reference " + f.reference + " -o " + same_out);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(perfq::io::read_nifti(same_out).values(),
            perfq::io::resample(f.map, f.target, Transform()).values());
}

TEST(ResampleCli, UsageErrorsExitTwo) {
  const Files f = make_files("usage");
  const std::string in = f.image + " --reference " + f.reference;
  const std::string out = " -o " + (f.dir / "o.nii.gz").string();
  for (const std::string& args :
       {"resample " + in, "resample " + f.image + out, "resample" + out,
        "resample " + in + " -o out.txt", "resample " + in + out + " --labels --mask",
        "resample " + in + out + " --interpolation cubic",
        "resample " + in + out + " --labels --interpolation linear",
        "resample " + in + out + " --mask --interpolation nearest",
        "resample " + in + out + " --footprint 9", "resample " + in + out + " --footprint -1",
        "resample " + in + out + " --min-fraction 0.5",
        "resample " + in + out + " --mask --min-fraction 0",
        "resample " + in + out + " --labels --outside 3",
        "resample " + in + out + " --transform " + f.rigid + ",",
        "resample " + in + out + " --transform inverse:", "resample " + in + out + " --threads -2",
        "resample " + in + out + " --bogus"}) {
    const auto r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("perfq resample:"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(f.dir / "o.nii.gz"));
  const auto help = run("resample --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.output.find("inverse:"), std::string::npos);
}

TEST(ResampleCli, InputErrorsExitOneNamingTheFile) {
  const Files f = make_files("input");
  const std::string out = " -o " + (f.dir / "o.nii.gz").string();
  const std::string missing = (f.dir / "missing_xfm.h5").string();
  auto r =
      run("resample " + f.image + " --reference " + f.reference + " --transform " + missing + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(missing), std::string::npos) << r.output;

  r = run("resample " + (f.dir / "nothing.nii.gz").string() + " --reference " + f.reference + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("nothing.nii.gz"), std::string::npos) << r.output;

  r = run("resample " + f.image + " --reference " + (f.dir / "noref.nii").string() + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("noref.nii"), std::string::npos) << r.output;

  // A map that is not made of labels.
  r = run("resample " + f.image + " --reference " + f.reference + " --labels" + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(f.image), std::string::npos) << r.output;

  // A text file that is not a transform.
  const std::string notes = (f.dir / "notes.txt").string();
  cli_test::write_text(notes, "not a transform\n");
  r = run("resample " + f.image + " --reference " + f.reference + " --transform inverse:" + notes +
          out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(notes), std::string::npos) << r.output;

  // The inverse of a displacement field (ITK's text format of a 2 × 2 × 2 field).
  const std::string field = (f.dir / "warp.txt").string();
  std::string parameters;
  for (int i = 0; i < 24; ++i) parameters += i % 3 == 0 ? " 0.5" : " 0";
  cli_test::write_text(field,
                       "#Insight Transform File V1.0\n#Transform 0\n"
                       "Transform: DisplacementFieldTransform_double_3_3\n"
                       "Parameters:" +
                           parameters + "\nFixedParameters: 2 2 2 0 0 0 1 1 1 1 0 0 0 1 0 0 0 1\n");
  r = run("resample " + f.image + " --reference " + f.reference + " --transform " + field + out);
  EXPECT_EQ(r.status, 0) << r.output;  // forwards, a field is fine
  r = run("resample " + f.image + " --reference " + f.reference + " --transform inverse:" + field +
          " --overwrite" + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find(field + ": cannot be inverted"), std::string::npos) << r.output;
}

}  // namespace
