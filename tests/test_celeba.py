"""Tests for helpers.celeba: layouts, detection, list-file parsing and errors."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from helpers import celeba
from helpers.celeba import (
    ATTRIBUTE_NAMES,
    CelebAFiles,
    count_images,
    detect_layout,
    find_celeba,
    read_attributes,
    read_partitions,
    split_ids,
)
from helpers.errors import DataError
from vaelab.synthetic import attributes, face, make_slice


def test_constants_match_celeba():
    assert len(ATTRIBUTE_NAMES) == 40 == len(set(ATTRIBUTE_NAMES))
    assert ATTRIBUTE_NAMES[0] == "5_o_Clock_Shadow"
    assert ATTRIBUTE_NAMES[31] == "Smiling"
    assert ATTRIBUTE_NAMES[39] == "Young"
    assert sum(celeba.CELEBA_COUNTS.values()) == celeba.CELEBA_TOTAL == 202599
    assert celeba.SPLITS == {"train": 0, "validation": 1, "test": 2}
    assert celeba.IMAGE_SIZE == (178, 218)


@pytest.mark.parametrize(
    "fixture, layout", [("slice_dir", "official"), ("kaggle_slice_dir", "kaggle")]
)
def test_find_celeba_both_layouts(request, fixture, layout):
    root = request.getfixturevalue(fixture)
    files = find_celeba(root)
    assert files == CelebAFiles.at(root, layout)
    assert files.layout == layout
    if layout == "kaggle":
        assert files.image_dir == root / "img_align_celeba" / "img_align_celeba"
        assert files.attr_file.name == "list_attr_celeba.csv"
    else:
        assert files.image_dir == root / "img_align_celeba"
        assert files.partition_file.name == "list_eval_partition.txt"
    assert count_images(files) == 200
    assert files.image_path("000001.jpg").is_file()


def test_find_celeba_one_level_below(tmp_path):
    make_slice(tmp_path / "celeba-dataset", n=3, layout="kaggle")
    (tmp_path / "notes.txt").write_text("unrelated")
    (tmp_path / "other").mkdir()
    files = find_celeba(tmp_path)
    assert files.root == tmp_path / "celeba-dataset"
    assert files.layout == "kaggle"


def test_find_celeba_not_two_levels_below(tmp_path):
    make_slice(tmp_path / "a" / "b", n=3)
    with pytest.raises(DataError, match="No CelebA found"):
        find_celeba(tmp_path)


@pytest.mark.parametrize(
    "names, expected",
    [
        (
            [
                "celeba/img_align_celeba/img_align_celeba/000001.jpg",
                "celeba/img_align_celeba/",
                "celeba/list_attr_celeba.csv",
                "celeba/list_eval_partition.csv",
                "celeba/list_bbox_celeba.csv",
            ],
            ("celeba/", "kaggle"),
        ),
        (
            [
                "img_align_celeba/000001.jpg",
                "list_attr_celeba.txt",
                "list_eval_partition.txt",
            ],
            ("", "official"),
        ),
        # the shallowest complete layout wins
        (
            [
                "x/y/img_align_celeba/1.jpg",
                "x/y/list_attr_celeba.txt",
                "x/y/list_eval_partition.txt",
                "img_align_celeba/img_align_celeba/2.JPG",
                "list_attr_celeba.csv",
                "list_eval_partition.csv",
            ],
            ("", "kaggle"),
        ),
        # no partition file, or no image: nothing
        (["img_align_celeba/000001.jpg", "list_attr_celeba.txt"], None),
        (
            ["img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt"],
            None,
        ),
        # kaggle images with official list files do not make a layout
        (
            [
                "img_align_celeba/img_align_celeba/000001.jpg",
                "list_attr_celeba.txt",
                "list_eval_partition.txt",
            ],
            None,
        ),
    ],
)
def test_detect_layout_on_zip_names(names, expected):
    assert detect_layout(iter(names)) == expected


def test_detected_prefix_builds_member_names():
    names = [
        "celeba/img_align_celeba/img_align_celeba/000001.jpg",
        "celeba/list_attr_celeba.csv",
        "celeba/list_eval_partition.csv",
    ]
    prefix, layout = detect_layout(names)
    assert prefix + celeba.LAYOUTS[layout].attr_file == names[1]


def test_attributes_parsed_in_order(slice_dir):
    ids, attrs = read_attributes(find_celeba(slice_dir))
    assert ids[0] == "000001.jpg" and ids[-1] == "000200.jpg" and len(ids) == 200
    assert attrs.shape == (200, 40) and attrs.dtype == np.int8
    assert set(np.unique(attrs)) == {-1, 1}
    for k in (0, 7, 199):
        _, params = face(0, k)
        assert attrs[k].tolist() == list(attributes(params).values())


def test_txt_and_csv_agree(slice_dir, kaggle_slice_dir):
    ids_a, attrs_a = read_attributes(find_celeba(slice_dir))
    ids_b, attrs_b = read_attributes(find_celeba(kaggle_slice_dir))
    assert ids_a == ids_b
    np.testing.assert_array_equal(attrs_a, attrs_b)
    assert read_partitions(find_celeba(slice_dir)) == read_partitions(
        find_celeba(kaggle_slice_dir)
    )


def test_real_file_spacing(tmp_path):
    # As in CelebA: two spaces before a positive value, one before -1.
    files = CelebAFiles.at(tmp_path, "official")
    values = ["-1", " 1"] * 20
    files.attr_file.write_text(
        "1\n" + " ".join(ATTRIBUTE_NAMES) + " \n000001.jpg " + " ".join(values) + "\n"
    )
    ids, attrs = read_attributes(files)
    assert ids == ["000001.jpg"]
    assert attrs[0].tolist() == [-1, 1] * 20


def test_partitions_and_splits(slice_dir):
    files = find_celeba(slice_dir)
    partitions = read_partitions(files)
    codes = list(partitions.values())
    assert codes == [0] * 160 + [1] * 20 + [2] * 20
    ids, _ = read_attributes(files)
    splits = split_ids(ids, partitions)
    assert {k: len(v) for k, v in splits.items()} == {
        "train": 160,
        "validation": 20,
        "test": 20,
    }
    assert splits["train"][0] == "000001.jpg" and splits["train"][-1] == "000160.jpg"
    assert splits["validation"][0] == "000161.jpg"
    assert splits["test"][-1] == "000200.jpg"


def test_split_ids_unknown_id():
    with pytest.raises(DataError, match="image 000009.jpg has attributes but no"):
        split_ids(["000001.jpg", "000009.jpg"], {"000001.jpg": 0})


# Malformed files ---------------------------------------------------------------
def _official(tmp_path, n_line: str, names: list[str], rows: list[str]):
    files = CelebAFiles.at(tmp_path, "official")
    files.attr_file.write_text("\n".join([n_line, " ".join(names), *rows]) + "\n")
    return files


ROW = "000001.jpg " + " ".join(["-1"] * 40)


def test_wrong_attribute_name(tmp_path):
    names = list(ATTRIBUTE_NAMES)
    names[1], names[2] = names[2], names[1]
    files = _official(tmp_path, "1", names, [ROW])
    with pytest.raises(
        DataError,
        match="line 2: attribute 2 is 'Attractive', " "expected 'Arched_Eyebrows'",
    ):
        read_attributes(files)


def test_missing_attribute_name(tmp_path):
    files = _official(tmp_path, "1", list(ATTRIBUTE_NAMES[:39]), [ROW])
    with pytest.raises(DataError, match="line 2: 39 attribute names, expected 40"):
        read_attributes(files)


def test_short_row(tmp_path):
    files = _official(tmp_path, "2", list(ATTRIBUTE_NAMES), [ROW, ROW[:-3]])
    with pytest.raises(
        DataError, match="line 4: expected an image id and 40 values" ".* got 39 values"
    ):
        read_attributes(files)


def test_bad_value(tmp_path):
    files = _official(tmp_path, "1", list(ATTRIBUTE_NAMES), [ROW[:-2] + " 0"])
    with pytest.raises(DataError, match="line 3: .*40 values of 1 or -1"):
        read_attributes(files)


def test_count_mismatch(tmp_path):
    files = _official(tmp_path, "3", list(ATTRIBUTE_NAMES), [ROW, ROW])
    with pytest.raises(DataError, match="line 1 says 3 images but the file has 2 rows"):
        read_attributes(files)


def test_csv_header_checked(tmp_path):
    files = CelebAFiles.at(tmp_path, "kaggle")
    header = ["image_id", *ATTRIBUTE_NAMES[:-1], "Old"]
    files.attr_file.write_text(",".join(header) + "\n")
    with pytest.raises(
        DataError, match="line 1: attribute 40 is 'Old', expected " "'Young'"
    ):
        read_attributes(files)


@pytest.mark.parametrize(
    "layout, text, line",
    [
        ("official", "000001.jpg 0\n000002.jpg 3\n", 2),
        ("official", "000001.jpg\n", 1),
        ("kaggle", "image_id,partition\n000001.jpg,0\n000002.jpg,-1\n", 3),
    ],
)
def test_bad_partition(tmp_path, layout, text, line):
    files = CelebAFiles.at(tmp_path, layout)
    files.partition_file.write_text(text)
    with pytest.raises(DataError, match=f"line {line}: expected .*partition 0, 1 or 2"):
        read_partitions(files)


# Wrong folders ----------------------------------------------------------------
def test_wrong_folder_says_looked_for_and_found(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "img_align_celeba" / "000001.jpg").write_bytes(b"")
    (tmp_path / "list_attr_celeba.txt").write_text("0\n")
    for i in range(12):
        (tmp_path / f"junk{i:02d}.txt").write_text("")
    with pytest.raises(DataError) as info:
        find_celeba(tmp_path)
    message = str(info.value)
    assert f"No CelebA found in {tmp_path}" in message
    assert (
        "official: img_align_celeba/*.jpg, list_attr_celeba.txt, "
        "list_eval_partition.txt"
    ) in message
    assert (
        "img_align_celeba/img_align_celeba/*.jpg, list_attr_celeba.csv, "
        "list_eval_partition.csv"
    ) in message
    assert "Found in" in message and "img_align_celeba/, junk00.txt" in message
    assert "... (14 entries)" in message and "junk11.txt" not in message
    assert "official: missing list_eval_partition.txt\n" in message


def test_empty_missing_file_and_image_folders(tmp_path):
    with pytest.raises(DataError, match="nothing \\(the folder is empty\\)"):
        find_celeba(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        find_celeba(tmp_path / "nope")
    (tmp_path / "celeba.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match="is a file, not a folder: unzip it"):
        find_celeba(tmp_path / "celeba.zip")


def test_image_folder_passed_directly(slice_dir):
    with pytest.raises(
        DataError, match="it looks like the image folder.*" f"probably {slice_dir}\\)"
    ):
        find_celeba(slice_dir / "img_align_celeba")


def test_find_celeba_does_not_list_every_image(tmp_path, monkeypatch):
    root = tmp_path / "celeba"
    make_slice(root, n=3)
    image_dir = root / "img_align_celeba"
    for i in range(4, 500):
        shutil.copy(image_dir / "000001.jpg", image_dir / f"{i:06d}.jpg")
    seen = []
    real_scandir = os.scandir

    class Counting:
        def __init__(self, path):
            self.inner = real_scandir(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.inner.close()

        def __iter__(self):
            for entry in self.inner:
                seen.append(entry.name)
                yield entry

    monkeypatch.setattr(celeba.os, "scandir", Counting)
    assert find_celeba(root).layout == "official"
    assert len(seen) < 20
