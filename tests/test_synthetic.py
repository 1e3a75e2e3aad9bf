"""Tests for vaelab.synthetic: the generated slice is deterministic and truthful."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from helpers.celeba import ATTRIBUTE_NAMES, find_celeba, read_attributes
from vaelab.cli import main
from helpers.errors import DataError
from vaelab.synthetic import (
    DRAWN_ATTRIBUTES,
    FaceParams,
    attributes,
    draw_face,
    make_slice,
    sample_params,
    split_counts,
)

HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]


def test_image_size_and_mode(slice_dir):
    with Image.open(slice_dir / "img_align_celeba" / "000001.jpg") as image:
        assert image.format == "JPEG"
        assert image.size == (178, 218)
        assert image.mode == "RGB"


def test_draw_face_accepts_params_or_generator():
    rng = np.random.default_rng(3)
    params = sample_params(np.random.default_rng(3))
    assert isinstance(params, FaceParams)
    a, b = draw_face(params), draw_face(rng)
    assert a.size == (178, 218) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()


def _bytes(root, name="000002.jpg"):
    return (root / "img_align_celeba" / name).read_bytes()


def test_same_seed_same_bytes_and_index_independent_of_n(tmp_path, slice_dir):
    a = make_slice(tmp_path / "a", n=3, seed=0)
    b = make_slice(tmp_path / "b", n=3, seed=0)
    c = make_slice(tmp_path / "c", n=3, seed=1)
    assert _bytes(a) == _bytes(b) == _bytes(slice_dir)  # slice_dir: n=200, seed 0
    assert _bytes(a) != _bytes(c)
    assert _bytes(a, "000001.jpg") != _bytes(a, "000002.jpg")
    assert (a / "list_attr_celeba.txt").read_text() == (
        b / "list_attr_celeba.txt"
    ).read_text()


@pytest.mark.parametrize(
    "n, counts",
    [
        (1, (1, 0, 0)),
        (2, (2, 0, 0)),
        (3, (1, 1, 1)),
        (10, (8, 1, 1)),
        (200, (160, 20, 20)),
        (1000, (800, 100, 100)),
        (1234, (988, 123, 123)),
    ],
)
def test_split_counts(n, counts):
    assert split_counts(n) == counts


def test_rerun_is_noop_and_other_slice_is_refused(tmp_path):
    out = make_slice(tmp_path / "s", n=4, seed=2)
    stamp = (out / "img_align_celeba" / "000001.jpg").stat().st_mtime_ns
    assert make_slice(tmp_path / "s", n=4, seed=2) == out
    assert (out / "img_align_celeba" / "000001.jpg").stat().st_mtime_ns == stamp
    with pytest.raises(
        DataError,
        match="already holds a different generated slice "
        "\\(n=4, seed=2, layout=official",
    ):
        make_slice(out, n=5, seed=2)
    with pytest.raises(DataError, match="different generated slice"):
        make_slice(out, n=4, seed=2, layout="kaggle")
    (tmp_path / "other" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="is not empty and holds no generated slice"):
        make_slice(tmp_path / "other", n=4)


def test_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="unknown layout 'tfds'"):
        make_slice(tmp_path, n=3, layout="tfds")
    with pytest.raises(DataError, match="at least 1 image"):
        make_slice(tmp_path, n=0)


def test_readme_says_it_is_generated(slice_dir):
    text = (slice_dir / "README.txt").read_text()
    assert text.startswith("GENERATED STAND-IN, NOT CelebA.")
    assert "Smiling" in text


def test_cli_make_slice(tmp_path, capsys):
    assert (
        main(
            [
                "make-slice",
                "--out",
                str(tmp_path / "k"),
                "--n",
                "3",
                "--layout",
                "kaggle",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"3 generated faces in the kaggle layout to {tmp_path / 'k'}" in out
    assert "NOT CelebA" in out
    assert find_celeba(tmp_path / "k").layout == "kaggle"
    assert main(["make-slice", "--out", str(tmp_path / "k"), "--n", "4"]) == 2
    assert "different generated slice" in capsys.readouterr().err


def test_attribute_logic_is_consistent():
    for k in range(1500):
        params = sample_params(np.random.default_rng([7, k]))
        a = attributes(params)
        assert list(a) == list(ATTRIBUTE_NAMES)
        hair = sum(a[h] == 1 for h in HAIR)
        assert hair == (0 if a["Bald"] == 1 else 1), params
        if a["Male"] == -1:
            assert a["No_Beard"] == 1 and a["Mustache"] == a["Goatee"] == -1
            assert a["Bald"] == -1
        if a["Wearing_Hat"] == 1:
            assert a["Bangs"] == -1 and a["Bald"] == -1
        for name in set(ATTRIBUTE_NAMES) - set(DRAWN_ATTRIBUTES):
            assert a[name] == -1


def test_attribute_rates_are_varied(slice_dir):
    _, attrs = read_attributes(find_celeba(slice_dir))
    rate = dict(zip(ATTRIBUTE_NAMES, (attrs == 1).mean(axis=0)))
    for name in ["Smiling", "Male", "Young", "Eyeglasses", "Black_Hair", "Blond_Hair"]:
        assert 0.1 < rate[name] < 0.9, (name, rate[name])
    for name in ["Wearing_Hat", "Bald", "Gray_Hair", "Pale_Skin", "Bangs"]:
        assert 0.02 < rate[name] < 0.5, (name, rate[name])


# Labels agree with the pixels, measured on the crop the model sees ---------------
@pytest.fixture(scope="module")
def crops_and_labels(slice_dir):
    """(200, 64, 64, 3) float32 crops in [0, 1] and the attributes by name."""
    files = find_celeba(slice_dir)
    ids, attrs = read_attributes(files)
    crops = []
    for image_id in ids:
        with Image.open(files.image_path(image_id)) as image:
            crop = image.crop((19, 39, 159, 179)).resize((64, 64))
            crops.append(np.asarray(crop, dtype=np.float32) / 255)
    labels = {name: attrs[:, i] == 1 for i, name in enumerate(ATTRIBUTE_NAMES)}
    return np.stack(crops), labels


def _spread(region):
    """Mean absolute deviation from the region's median colour, per image."""
    median = np.median(region, axis=(1, 2), keepdims=True)
    return np.abs(region - median).mean(axis=(1, 2, 3))


def _t(feature, mask):
    a, b = feature[mask], feature[~mask]
    return (a.mean() - b.mean()) / np.sqrt(a.var() / len(a) + b.var() / len(b))


def test_face_sits_in_the_default_crop():
    # crop box (left=19, top=39, width=140, height=140), as VAEConfig.crop
    for k in range(500):
        p = sample_params(np.random.default_rng([0, k]))
        top, chin = p.eye_y + 10 - p.ry, p.eye_y + 10 + p.ry
        assert 19 <= p.cx - p.rx - 6 and p.cx + p.rx + 6 <= 159  # ears included
        assert 39 <= top - 22 and chin <= 181  # hat crown to chin
        assert 109 <= p.eye_y <= 115 and 149 <= p.eye_y + 40 <= 155  # eyes, mouth


def test_every_crop_shows_eyes(crops_and_labels):
    crops, _ = crops_and_labels
    assert crops.shape == (200, 64, 64, 3)
    assert (_spread(crops[:, 28:39, 18:46]) > 0.02).all()


def test_smiling_shows_in_the_mouth_region(crops_and_labels):
    crops, labels = crops_and_labels
    feature = _spread(crops[:, 46:56, 24:40])
    assert labels["Smiling"].sum() > 50 and (~labels["Smiling"]).sum() > 50
    assert _t(feature, labels["Smiling"]) > 4
    assert abs(_t(feature, labels["Eyeglasses"])) < 3  # unrelated label: no signal


def test_eyeglasses_show_in_the_eye_band(crops_and_labels):
    crops, labels = crops_and_labels
    feature = _spread(crops[:, 28:39, 18:46])
    assert labels["Eyeglasses"].sum() > 25
    assert _t(feature, labels["Eyeglasses"]) > 4
    assert abs(_t(feature, labels["Smiling"])) < 3


def test_blond_hair_is_brighter_than_black(crops_and_labels):
    crops, labels = crops_and_labels
    brightness = crops[:, 10:20, 22:42].mean(axis=(1, 2, 3))
    no_hat = ~labels["Wearing_Hat"]
    blond = brightness[labels["Blond_Hair"] & no_hat]
    black = brightness[labels["Black_Hair"] & no_hat]
    assert len(blond) > 20 and len(black) > 20
    assert blond.mean() - black.mean() > 0.3
    assert np.median(blond) > np.percentile(black, 95)
