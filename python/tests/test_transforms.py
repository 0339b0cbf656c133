"""Transforms and resampling from Python: RAS conventions, an affine resampling re-derived in
NumPy (trilinear and nearest written out here), majority votes and mask fractions over
footprints, and the errors."""

import numpy as np
import pytest

import perfq

FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_itk_affine(path, matrix_lps):
    """An ITK text transform file of a 4 x 4 LPS matrix (as ANTs/fMRIPrep write affines)."""
    params = list(matrix_lps[:3, :3].ravel()) + list(matrix_lps[:3, 3])
    path.write_text("#Insight Transform File V1.0\n#Transform 0\n"
                    "Transform: AffineTransform_double_3_3\n"
                    f"Parameters: {' '.join(repr(float(v)) for v in params)}\n"
                    "FixedParameters: 0 0 0\n")
    return str(path)


def trilinear(volume, index):
    """Trilinear interpolation at a continuous index, perfq's edge rule: inside when within
    half a voxel of the edge centres (the edge value there), else None."""
    n = np.array(volume.shape)
    if np.any(index < -0.5) or np.any(index > n - 0.5):
        return None
    lo = np.floor(index).astype(int)
    f = index - lo
    value = 0.0
    for corner in range(8):
        bits = np.array([(corner >> a) & 1 for a in range(3)])
        w = np.prod(np.where(bits, f, 1 - f))
        idx = np.clip(lo + bits, 0, n - 1)
        value += w * volume[tuple(idx)]
    return value


def grid_points(shape, affine):
    """RAS points of every voxel centre, [x, y, z] order, (N, 3), N in Fortran order."""
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    ijk = ijk.reshape(-1, 3, order="F")
    return (affine[:3, :3] @ ijk.T).T + affine[:3, 3], ijk


def test_affine_resampling_matches_numpy():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(12, 11, 10)).astype(np.float32)
    source_affine = np.array([[-2.0, 0, 0, 10], [0, 2.0, 0, -12], [0, 0, 2.5, -9], [0, 0, 0, 1]])
    c, s = np.cos(0.2), np.sin(0.2)
    target_affine = np.array([[3 * c, -3 * s, 0, 2], [3 * s, 3 * c, 0, -5], [0, 0, 3, -4],
                              [0, 0, 0, 1]])
    shape = (5, 6, 4)
    ras = np.array([[1.02, 0.05, 0, 1.5], [-0.03, 0.98, 0.02, -0.5], [0, 0.04, 1.01, 0.8],
                    [0, 0, 0, 1]])
    t = perfq.affine_transform(ras)
    assert t.linear
    np.testing.assert_allclose(t.matrix, ras, atol=1e-12)
    np.testing.assert_allclose(t.matrix_lps, FLIP @ ras @ FLIP, atol=1e-12)

    for interpolation in ("linear", "nearest"):
        out = perfq.resample(source, shape, t, affine=source_affine,
                             reference_affine=target_affine, footprint=1, outside=-9.0,
                             interpolation=interpolation)
        assert out.shape == shape and out.dtype == np.float32
        points, ijk = grid_points(shape, target_affine)
        mapped = (ras[:3, :3] @ points.T).T + ras[:3, 3]
        index = (np.linalg.inv(source_affine) @ np.c_[mapped, np.ones(len(mapped))].T).T[:, :3]
        for (i, j, k), x in zip(ijk, index):
            if interpolation == "linear":
                want = trilinear(source, x)
            else:
                inside = np.all(x >= -0.5) and np.all(x <= np.array(source.shape) - 0.5)
                near = np.clip(np.floor(x + 0.5).astype(int), 0, np.array(source.shape) - 1)
                want = source[tuple(near)] if inside else None
            want = -9.0 if want is None else want
            assert out[i, j, k] == pytest.approx(want, abs=1e-4), (interpolation, i, j, k)


def test_read_transform_speaks_ras_and_lps(tmp_path):
    lps = np.array([[0.9, 0.1, 0, 4.0], [-0.1, 1.1, 0, -2.0], [0, 0, 1.0, 3.0], [0, 0, 0, 1]])
    t = perfq.read_transform(write_itk_affine(tmp_path / "from-T1w_to-asl_mode-image_xfm.txt", lps))
    assert t.parts == ["AffineTransform_double_3_3"]
    p_lps = np.array([[1.0, 2.0, 3.0], [-4.0, 0.5, 7.0]])
    np.testing.assert_allclose(t.map(p_lps, lps=True), (lps[:3, :3] @ p_lps.T).T + lps[:3, 3])
    p_ras = p_lps * [-1, -1, 1]
    np.testing.assert_allclose(t.map(p_ras), t.map(p_lps, lps=True) * [-1, -1, 1])
    np.testing.assert_allclose(t.map(p_ras[0]), t.map(p_ras)[0])
    np.testing.assert_allclose(t.inverse().map(t.map(p_ras)), p_ras, atol=1e-9)
    # Image-mode order: the last step acts on a point first.
    shift = perfq.affine_transform(np.array([[1, 0, 0, 10.0], [0, 1, 0, 0], [0, 0, 1, 0],
                                             [0, 0, 0, 1]]))
    chain = perfq.compose_transforms([shift, t])
    np.testing.assert_allclose(chain.map(p_ras), shift.map(t.map(p_ras)))


def test_majority_vote_and_mask_fraction_over_3mm_blocks():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, size=(9, 6, 3)).astype(np.int32)
    mask = rng.random((9, 6, 3)) < 0.5
    one_mm = np.diag([1.0, 1.0, 1.0, 1.0])
    three_mm = np.diag([3.0, 3.0, 3.0, 1.0])
    three_mm[:3, 3] = 1.0  # block centres on source voxels 1, 4, 7
    out = perfq.resample_labels(labels, (3, 2, 1), affine=one_mm, reference_affine=three_mm)
    fraction_out = perfq.resample_mask(mask, (3, 2, 1), affine=one_mm, reference_affine=three_mm)
    assert out.dtype == np.int32 and fraction_out.dtype == np.uint8
    for i in range(3):
        for j in range(2):
            block = labels[3 * i:3 * i + 3, 3 * j:3 * j + 3, 0:3]
            counts = np.bincount(block.ravel(), minlength=3)
            tied = np.flatnonzero(counts == counts.max())
            centre = block[1, 1, 1]
            want = centre if centre in tied else tied.min()
            assert out[i, j, 0] == want
            inside = mask[3 * i:3 * i + 3, 3 * j:3 * j + 3, 0:3].mean()
            assert fraction_out[i, j, 0] == (inside >= 0.5)
    nearest = perfq.resample_labels(labels, (3, 2, 1), affine=one_mm, reference_affine=three_mm,
                                    rule="nearest")
    np.testing.assert_array_equal(nearest[:, :, 0], labels[1::3, 1::3, 1])
    probability = perfq.resample(mask.astype(np.float32), (3, 2, 1), affine=one_mm,
                                 reference_affine=three_mm)
    for i in range(3):
        for j in range(2):
            assert probability[i, j, 0] == pytest.approx(
                mask[3 * i:3 * i + 3, 3 * j:3 * j + 3, 0:3].mean(), abs=1e-6)


def test_four_dimensional_and_nibabel_reference():
    nibabel = pytest.importorskip("nibabel")
    series = np.stack([np.full((4, 4, 4), float(v), dtype=np.float32) for v in (1, 2)], -1)
    reference_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    reference_affine[:3, 3] = 0.5
    reference = nibabel.Nifti1Image(np.zeros((2, 2, 2, 3), dtype=np.float32), reference_affine)
    image = nibabel.Nifti1Image(series, np.eye(4))
    out = perfq.resample(image, reference)
    assert out.shape == (2, 2, 2, 2)
    np.testing.assert_allclose(out[..., 0], 1.0)
    np.testing.assert_allclose(out[..., 1], 2.0)


def test_errors(tmp_path):
    with pytest.raises(perfq.InputError) as error:
        perfq.read_transform(tmp_path / "missing_xfm.h5")
    assert error.value.file.endswith("missing_xfm.h5")
    image = np.zeros((3, 3, 3), dtype=np.float32)
    with pytest.raises(perfq.InvalidArgumentError):
        perfq.resample(image, (2, 2, 2), reference_affine=np.eye(4), interpolation="cubic")
    with pytest.raises(perfq.InvalidArgumentError):
        perfq.resample(image, (2, 2, 2))  # no reference affine
    with pytest.raises(perfq.InvalidArgumentError):
        perfq.resample(image, (2, 2, 2), reference_affine=np.eye(4), footprint=9)
    with pytest.raises(perfq.InvalidArgumentError):
        perfq.resample_mask(image, (2, 2, 2), reference_affine=np.eye(4), min_fraction=0.0)
    with pytest.raises(perfq.InvalidArgumentError):
        perfq.resample_labels(image + 0.5, (2, 2, 2), reference_affine=np.eye(4))
