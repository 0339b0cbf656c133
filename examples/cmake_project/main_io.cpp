// Writes and reads back a NIfTI image through the installed perfq::io.
#include <perfq/io/nifti.hpp>

#include <cstdio>

int main() {
  perfq::Geometry g;
  g.dims = {4, 3, 2};
  g.spacing = {2.0, 2.0, 3.0};
  perfq::Volume<float> image(g, 1, 7.5f);
  perfq::io::write_nifti("consumer_io.nii.gz", image.view());
  const auto back = perfq::io::read_nifti("consumer_io.nii.gz");
  std::printf("read back %zu voxels, first %.2f\n", back.size(), back[0]);
  return back.size() == 24 && back[0] == 7.5f && back.geometry().same_grid(g) ? 0 : 1;
}
