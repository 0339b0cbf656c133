"""The building blocks on arrays: values derived independently, zero copy, errors, nibabel."""

import math

import numpy as np
import pytest

import perfq
from perfq import _perfq
from perfq._geometry import image_array

PCASL = {"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": 1.8,
         "LabelingDuration": 1.8, "M0Type": "Separate", "MRAcquisitionType": "3D",
         "BackgroundSuppression": False, "MagneticFieldStrength": 3}


def white_paper_cbf(dm, m0, pld=1.8, tau=1.8, t1b=1.65, alpha=0.85, lam=0.9):
    """The white paper's PCASL formula, written out here (ml/100 g/min)."""
    return 6000 * lam * dm * math.exp(pld / t1b) / (2 * alpha * t1b * m0 * (1 - math.exp(-tau / t1b)))


def test_quantify_cbf_follows_the_white_paper():
    dm = np.full((3, 2, 2), 10.0, dtype=np.float32, order="F")
    dm[1, 0, 0] = 5.0
    m0 = np.full(dm.shape, 1000.0, dtype=np.float32, order="F")
    maps = perfq.quantify_cbf(dm, m0, PCASL, backend="cpu")
    assert maps["cbf"].shape == (3, 2, 2) and maps["cbf"].dtype == np.float32
    assert maps["cbf"][0, 0, 0] == pytest.approx(white_paper_cbf(10.0, 1000.0), rel=1e-5)
    assert maps["cbf"][1, 0, 0] == pytest.approx(white_paper_cbf(5.0, 1000.0), rel=1e-5)
    assert np.all(maps["status"] == 0)
    # One M0 value, and the constants by perfq cbf's names.
    by_value = perfq.quantify_cbf(dm, 1000.0, PCASL, backend="cpu", t1b=1.5, lambda_=0.98)
    assert by_value["cbf"][0, 0, 0] == pytest.approx(
        white_paper_cbf(10.0, 1000.0, t1b=1.5, lam=0.98), rel=1e-5)


def test_fit_kinetic_recovers_a_noise_free_voxel():
    protocol = dict(PCASL, PostLabelingDelay=[0.5, 1.0, 1.5, 2.0, 2.5])
    # The white-paper PCASL model (T1 of blood throughout) for CBF 60, ATT 1.2 s, written out
    # (M0 1000, α 0.85, λ 0.9).
    f, att, t1b, tau, alpha, lam = 60 / 6000, 1.2, 1.65, 1.8, 0.85, 0.9
    dm = []
    for pld in protocol["PostLabelingDelay"]:
        t = pld + tau
        if t < att:
            value = 0.0
        elif t < att + tau:
            value = 2 * alpha * 1000 * f / lam * t1b * math.exp(-att / t1b) * (1 - math.exp(-(t - att) / t1b))
        else:
            value = 2 * alpha * 1000 * f / lam * t1b * math.exp(-att / t1b) * (1 - math.exp(-tau / t1b)) * math.exp(-(t - tau - att) / t1b)
        dm.append(value)
    series = np.asfortranarray(np.tile(np.asarray(dm, dtype=np.float32), (2, 1, 1, 1)))
    maps = perfq.fit_kinetic(series, 1000.0, protocol, backend="cpu", model="whitepaper")
    assert maps["cbf"].shape == (2, 1, 1)
    assert maps["cbf"][0, 0, 0] == pytest.approx(60.0, rel=5e-3)
    assert maps["att"][0, 0, 0] == pytest.approx(1.2, abs=5e-3)
    assert "abv" not in maps
    assert "abv" in perfq.fit_kinetic(series, 1000.0, protocol, backend="cpu", arterial=True)


def test_distance_map_equals_brute_force_in_millimetres():
    mask = np.zeros((5, 4, 3), dtype=np.uint8, order="F")
    mask[1, 2, 0] = mask[4, 0, 2] = 1
    spacing = (1.5, 2.0, 3.0)
    d = perfq.distance_map(mask, spacing=spacing)["distance"]
    on = np.argwhere(mask)
    for x, y, z in np.ndindex(mask.shape):
        expected = min(math.dist(np.multiply((x, y, z), spacing), np.multiply(p, spacing))
                       for p in on)
        assert d[x, y, z] == pytest.approx(expected, rel=1e-6)
    signed = perfq.distance_map(mask, spacing=spacing, signed=True)["distance"]
    assert signed[1, 2, 0] < 0 and signed[0, 0, 0] == pytest.approx(d[0, 0, 0])


def test_border_zones_lie_along_the_border_of_two_territories():
    territories = np.ones((10, 3, 1), dtype=np.int32, order="F")
    territories[5:] = 2
    zones = perfq.border_zones(territories, 2.0)
    # Voxels with both territories within 2 mm / 2 (centre to centre): x = 4 and x = 5.
    assert zones["mask"][:, 0, 0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert list(zones["territories"]) == [1, 2]
    assert set(np.unique(zones["pairs"][zones["mask"] == 1])) == {int(zones["pairs"][4, 0, 0])}


def test_region_stats_equal_numpy():
    rng = np.random.default_rng(3)
    image = np.asfortranarray(rng.normal(50, 10, (6, 5, 4)).astype(np.float32))
    labels = np.zeros(image.shape, dtype=np.int32, order="F")
    labels[:3] = 1
    labels[3:, :2] = 2
    rows = perfq.region_stats(image, labels, percentiles=[50])
    assert [r["label"] for r in rows] == [1, 2]
    for row in rows:
        values = image[labels == row["label"]].astype(np.float64)
        assert row["count"] == values.size
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-9)
        assert row["sd"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        assert row["median"] == pytest.approx(np.median(values), rel=1e-9)
        assert row["min"] == pytest.approx(values.min()) and row["max"] == pytest.approx(values.max())
        assert row["volume_ml"] == pytest.approx(values.size / 1000)


def test_quality_indices_equal_numpy_and_the_qei_formula():
    rng = np.random.default_rng(5)
    shape = (12, 10, 8)
    gm = np.zeros(shape, dtype=np.float32, order="F")
    wm = np.zeros(shape, dtype=np.float32, order="F")
    csf = np.zeros(shape, dtype=np.float32, order="F")
    gm[:4], wm[4:9], csf[9:] = 1.0, 1.0, 1.0
    cbf = np.asfortranarray((60 * gm + 22 * wm + 4 * csf + rng.normal(0, 8, shape)).astype(np.float32))
    q = perfq.quality_indices(cbf, gm=gm, wm=wm, csf=csf, fwhm_mm=0.0)
    g, w, c = cbf[gm > 0.7].astype(np.float64), cbf[wm > 0.7].astype(np.float64), cbf[csf > 0.7]
    assert q["gm_mean_cbf"] == pytest.approx(g.mean(), rel=1e-9)
    assert q["gm_median_cbf"] == pytest.approx(np.median(g), rel=1e-9)
    assert q["gm_scov"] == pytest.approx(100 * g.std(ddof=1) / g.mean(), rel=1e-9)
    assert q["gm_wm_ratio"] == pytest.approx(g.mean() / w.mean(), rel=1e-9)
    assert q["gm_negative_fraction"] == pytest.approx(np.mean(g < 0))
    # The QEI from its definition (unsmoothed here), written with numpy.
    pooled = sum((x.size - 1) * x.astype(np.float64).var(ddof=1) for x in (g, w, c)) / (
        g.size + w.size + c.size - 3)
    v = pooled / abs(g.mean())
    n = np.mean(g < 0)
    r = max(0.0, np.corrcoef(cbf.ravel().astype(np.float64), (2.5 * gm + wm).ravel())[0, 1])
    qei = (np.exp(-0.054 * v ** 0.9272) * np.exp(-2.8478 * n ** 0.5196)
           * (1 - np.exp(-3.0126 * r ** 2.4419))) ** (1 / 3)
    assert q["qei_spatial_variability"] == pytest.approx(v, rel=1e-9)
    assert q["qei_structural_similarity"] == pytest.approx(r, rel=1e-9)
    assert q["qei"] == pytest.approx(qei, rel=1e-9)
    # Without tissue maps only the brain's indices.
    bare = perfq.quality_indices(cbf)
    assert bare["gm_mean_cbf"] is None and bare["qei"] is None
    assert bare["brain_mean_cbf"] == pytest.approx(cbf.astype(np.float64).mean(), rel=1e-9)
    with pytest.raises(perfq.InvalidArgumentError, match=r"probabilities in \[0, 1\]"):
        perfq.quality_indices(cbf, gm=gm * 3)


def test_fortran_float32_arrays_reach_the_library_without_a_copy():
    a = np.zeros((4, 3, 2), dtype=np.float32, order="F")
    same, _ = image_array(a, np.float32, "a")
    assert same is a
    assert _perfq._buffer_address(same) == a.ctypes.data
    c_order = np.zeros((4, 3, 2), dtype=np.float32)  # indexed [x, y, z] too, z fastest
    c_order[3, 2, 1] = 7
    converted, _ = image_array(c_order, np.float32, "a")
    assert converted.flags.f_contiguous and converted[3, 2, 1] == 7
    assert _perfq._buffer_address(converted) != c_order.ctypes.data
    with pytest.raises(TypeError):
        _perfq._buffer_address(c_order)  # never converted silently on the C++ side


def test_bad_arrays_raise_clear_errors():
    dm = np.ones((3, 2, 2), dtype=np.float32, order="F")
    with pytest.raises(perfq.InvalidArgumentError, match="delta_m: expected a 3D or 4D array"):
        perfq.quantify_cbf(np.ones((3, 2)), 1000.0, PCASL)
    with pytest.raises(perfq.InvalidArgumentError, match="got None"):
        perfq.quantify_cbf(None, 1000.0, PCASL)
    with pytest.raises(perfq.InvalidArgumentError, match="dtype"):
        perfq.quantify_cbf(np.ones((3, 2, 2), dtype=complex), 1000.0, PCASL)
    with pytest.raises(perfq.InvalidArgumentError, match="m0: shape"):
        perfq.quantify_cbf(dm, np.ones((2, 2, 2), dtype=np.float32), PCASL)
    with pytest.raises(perfq.InvalidArgumentError, match="m0"):
        perfq.quantify_cbf(dm, -1.0, PCASL)
    with pytest.raises(perfq.InputError) as missing:
        perfq.quantify_cbf(dm, 1000.0, {k: v for k, v in PCASL.items() if k != "M0Type"})
    assert missing.value.field == "M0Type"
    with pytest.raises(perfq.InvalidArgumentError, match="label image must hold integers"):
        perfq.border_zones(np.full((3, 3, 3), 1.5), 2.0)
    with pytest.raises(perfq.InvalidArgumentError, match="sheared"):
        perfq.distance_map(np.ones((2, 2, 2)), affine=[[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def test_nibabel_images_keep_their_affine():
    nibabel = pytest.importorskip("nibabel")
    affine = np.array([[-2.0, 0, 0, 30], [0, 2.5, 0, -40], [0, 0, 3.0, 12], [0, 0, 0, 1]])
    dm = nibabel.Nifti1Image(np.full((4, 3, 2), 10.0, dtype=np.float32), affine)
    m0 = nibabel.Nifti1Image(np.full((4, 3, 2), 1000.0, dtype=np.float32), affine)
    maps = perfq.quantify_cbf(dm, m0, PCASL, backend="cpu")
    assert np.allclose(maps.affine, affine)
    image = maps.to_nibabel("cbf")
    assert np.allclose(image.affine, affine)
    assert np.array_equal(np.asanyarray(image.dataobj), maps["cbf"])


def test_computations_release_the_gil():
    import threading
    import time

    rng = np.random.default_rng(1)
    protocol = dict(PCASL, PostLabelingDelay=[0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    series = np.asfortranarray(rng.normal(5, 2, (64, 64, 32, 6)).astype(np.float32))
    done = {}

    def fit():
        start = time.perf_counter()
        for _ in range(4):
            perfq.fit_kinetic(series, 1000.0, protocol, backend="cpu", threads=1)
        done["seconds"] = (time.perf_counter() - start) / 4  # one call

    worker = threading.Thread(target=fit)
    worker.start()
    last, longest = time.perf_counter(), 0.0
    while worker.is_alive():  # this thread runs while the fit computes, or stalls if not
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert done["seconds"] > 0.01  # long enough for a held GIL to show
    assert longest < 0.5 * done["seconds"], (longest, done["seconds"])
