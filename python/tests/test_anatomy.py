"""Rigid registration and a subject's fMRIPrep anatomy from Python (perfq.register_rigid,
perfq.find_anat_derivatives): a known rigid transform recovered, the files found by name."""

import numpy as np
import pytest

import perfq


def _head(shape, spacing):
    """A T1w-like head on a grid centred on the origin: a brain ellipsoid (bright), two
    dark ventricles, a dark sphere on one side (so no symmetry hides a rotation)."""
    idx = np.indices(shape, dtype=float)
    c = [(idx[a] - (shape[a] - 1) / 2) * spacing for a in range(3)]
    x, y, z = c
    image = np.zeros(shape, np.float32)
    brain = (x / 65) ** 2 + (y / 80) ** 2 + (z / 60) ** 2 <= 1
    image[brain] = 800
    for side in (-1, 1):
        ventricle = ((x - 12 * side) / 7) ** 2 + (y / 30) ** 2 + ((z - 5) / 12) ** 2 <= 1
        image[ventricle] = 200
    image[(x - 30) ** 2 + (y + 25) ** 2 + (z - 20) ** 2 <= 12 ** 2] = 350
    image[np.abs(z - 30) < 2] *= 0.8  # a layer that breaks the remaining symmetry
    return image


def _affine(shape, spacing):
    a = np.diag([spacing, spacing, spacing, 1.0])
    a[:3, 3] = -(np.asarray(shape) - 1) / 2 * spacing
    return a


def test_register_rigid_recovers_a_known_rigid_transform():
    fixed_shape, fixed_spacing = (72, 88, 68), 2.0
    fixed = _head(fixed_shape, fixed_spacing)
    fixed_affine = _affine(fixed_shape, fixed_spacing)
    # The "ASL" image: the head seen through a known rigid transform (it maps the moving grid's
    # points to the fixed image's), at 4 mm, in another contrast.
    angle = np.radians(6.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0],
                         [0, 0, 1]])
    truth = np.eye(4)
    truth[:3, :3] = rotation
    truth[:3, 3] = [4.0, -3.0, 2.5]
    moving_to_fixed = perfq.affine_transform(truth)
    moving_shape, moving_spacing = (40, 48, 36), 4.0
    moving_affine = _affine(moving_shape, moving_spacing)
    contrast = np.where(fixed > 0, 1000.0 - fixed, 0).astype(np.float32)  # inverted, as an M0
    moving = perfq.resample(contrast, np.zeros(moving_shape), moving_to_fixed,
                            affine=fixed_affine, reference_affine=moving_affine)
    result = perfq.register_rigid(moving, fixed, moving_affine=moving_affine,
                                  fixed_affine=fixed_affine, threads=1)
    assert isinstance(result, perfq.Registration)
    assert result.final_metric < result.initial_metric
    # The result maps fixed points to moving points: the inverse of the truth.
    points = np.array([[0, 0, 0], [50, 0, 0], [0, 60, 0], [0, 0, 45], [-30, 40, -20.0]])
    expected = moving_to_fixed.inverse().map(points)
    got = result.transform.map(points)
    assert np.max(np.linalg.norm(got - expected, axis=1)) < 1.0
    # One thread: the same result bit for bit.
    again = perfq.register_rigid(moving, fixed, moving_affine=moving_affine,
                                 fixed_affine=fixed_affine, threads=1)
    assert np.array_equal(again.transform.map(points), got)
    with pytest.raises(perfq.InvalidArgumentError, match="start"):
        perfq.register_rigid(moving, fixed, moving_affine=moving_affine,
                             fixed_affine=fixed_affine, start="centre")
    with pytest.raises(perfq.InvalidArgumentError, match="moving_mask"):
        perfq.register_rigid(moving, fixed, moving_affine=moving_affine,
                             fixed_affine=fixed_affine, moving_mask=np.ones((2, 2, 2)))


def test_find_anat_derivatives_reads_fmriprep_names(tmp_path):
    anat = tmp_path / "sub-07" / "anat"
    anat.mkdir(parents=True)
    for name in ("sub-07_desc-preproc_T1w.nii.gz", "sub-07_desc-brain_mask.nii.gz",
                 "sub-07_label-GM_probseg.nii.gz",
                 "sub-07_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5"):
        (anat / name).write_bytes(b"")
    a = perfq.find_anat_derivatives(tmp_path, "sub-07")
    assert a["t1w"] == str(anat / "sub-07_desc-preproc_T1w.nii.gz")
    assert a["gm"].endswith("label-GM_probseg.nii.gz") and a["wm"] == ""
    assert a["from_template"] == {
        "MNI152NLin6Asym": str(anat / "sub-07_from-MNI152NLin6Asym_to-T1w_mode-image_xfm.h5")}
    with pytest.raises(perfq.InputError, match="no anatomical derivatives"):
        perfq.find_anat_derivatives(tmp_path, "08")


def test_find_m0scan_follows_intended_for(tmp_path):
    perf = tmp_path / "sub-01" / "perf"
    perf.mkdir(parents=True)
    asl = perf / "sub-01_asl.nii.gz"
    asl.write_bytes(b"")
    assert perfq.find_m0scan(asl) == ""
    (perf / "sub-01_dir-AP_m0scan.nii.gz").write_bytes(b"")
    (perf / "sub-01_dir-AP_m0scan.json").write_text(
        '{"IntendedFor": "perf/sub-01_asl.nii.gz"}')
    assert perfq.find_m0scan(asl) == str(perf / "sub-01_dir-AP_m0scan.nii.gz")
    (perf / "sub-01_m0scan.nii.gz").write_bytes(b"")  # the series' own comes first
    assert perfq.find_m0scan(asl) == str(perf / "sub-01_m0scan.nii.gz")
    with pytest.raises(perfq.InputError, match="_asl.nii"):
        perfq.find_m0scan(perf / "sub-01_m0scan.nii.gz")
