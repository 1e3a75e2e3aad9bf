"""Write a generated stand-in for CelebA: cartoon faces in CelebA's exact file layout.

The slice lets every notebook, test and command run without the 1.4 GB download.
Each 178x218 JPEG is a face drawn from random parameters (skin tone, face shape,
hair colour and style, hat, glasses, smile, beard, age, background, lighting);
the attributes the drawing controls are written truthfully to the attribute file,
and every other attribute is written as -1 (see ``DRAWN_ATTRIBUTES``).

Typical use::

    from vaelab.synthetic import make_slice
    root = make_slice("data/slice", n=1000)           # official layout
    python -m vaelab make-slice --out data/slice --n 1000 --layout kaggle

Image k depends only on (seed, k), so a larger slice starts with the same faces.
"""

from __future__ import annotations

import csv
import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from helpers.celeba import (
    ATTRIBUTE_NAMES,
    GENERATED_MARKER,
    IMAGE_SIZE,
    LAYOUTS,
    CelebAFiles,
)
from helpers.errors import DataError

WIDTH, HEIGHT = IMAGE_SIZE
SCALE = 2  # faces are drawn at twice the size, then averaged down (antialiasing)
JPEG_QUALITY = 90
MARKER = GENERATED_MARKER
GENERATOR_VERSION = 1

# The attributes the drawing decides; all others are written as -1.
DRAWN_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Bags_Under_Eyes Bald Bangs Big_Nose Black_Hair "
    "Blond_Hair Brown_Hair Bushy_Eyebrows Eyeglasses Goatee Gray_Hair Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Pale_Skin Rosy_Cheeks Smiling "
    "Wearing_Earrings Wearing_Hat Wearing_Lipstick Young"
).split()

HAIR_COLOURS = {
    "black": (30, 24, 22),
    "brown": (105, 66, 38),
    "blond": (226, 192, 122),
    "gray": (178, 176, 172),
}
_HAIR_ATTRIBUTE = {
    "black": "Black_Hair",
    "brown": "Brown_Hair",
    "blond": "Blond_Hair",
    "gray": "Gray_Hair",
}
# Skin tones from pale (index 0, written as Pale_Skin) to deep brown.
SKIN_TONES = (
    (247, 226, 212),
    (236, 196, 164),
    (214, 162, 122),
    (184, 130, 90),
    (140, 92, 62),
    (96, 62, 42),
)
_SKIN_P = (0.15, 0.3, 0.2, 0.15, 0.12, 0.08)
_FRAMES = ((20, 20, 20), (90, 55, 30), (180, 150, 60))  # black, tortoise, gold
_IRIS = ((70, 45, 25), (40, 90, 150), (60, 110, 70), (30, 25, 20))


@dataclass(frozen=True)
class FaceParams:
    """Everything that decides one drawn face (coordinates in 178x218 pixels)."""

    cx: float  # face centre, x
    eye_y: float  # eye line, y
    rx: float  # face half-width
    ry: float  # face half-height
    skin: tuple[int, int, int]
    pale: bool
    male: bool
    young: bool
    hair: str | None  # key of HAIR_COLOURS, None when bald
    hair_rgb: tuple[int, int, int]
    long_hair: bool
    bangs: bool
    hat: bool
    hat_rgb: tuple[int, int, int]
    glasses: str | None  # None, "clear" or "sun"
    frame_rgb: tuple[int, int, int]
    smiling: bool
    mouth_open: bool
    mouth_w: float
    eye_sep: float
    narrow_eyes: bool
    iris_rgb: tuple[int, int, int]
    bushy_brows: bool
    arched_brows: bool
    big_nose: bool
    stubble: bool
    beard: bool
    goatee: bool
    mustache: bool
    lipstick: bool
    rosy: bool
    earrings: bool
    bags: bool
    background: tuple[int, int, int]
    shirt_rgb: tuple[int, int, int]
    light_angle: float
    light_strength: float


def _jitter(rng: np.random.Generator, rgb, amount: int) -> tuple[int, int, int]:
    noisy = np.asarray(rgb) + rng.integers(-amount, amount + 1, 3)
    return tuple(int(v) for v in np.clip(noisy, 0, 255))


def _mix(a, b, t: float) -> tuple[int, int, int]:
    """Blend two colours: t=0 gives a, t=1 gives b."""
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


def _rgb(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def sample_params(rng: np.random.Generator) -> FaceParams:
    """Draw random face parameters (attribute rates roughly like CelebA's).

    Args:
        rng: the generator to draw from; the same state gives the same face.

    Returns:
        The parameters of one face.
    """
    u = rng.random
    male, young = bool(u() < 0.45), bool(u() < 0.7)
    tone = int(rng.choice(len(SKIN_TONES), p=_SKIN_P))
    hat = bool(u() < 0.12)
    bald = male and not hat and u() < (0.12 if young else 0.35)
    if bald:
        hair = None
    elif not young and u() < 0.55:
        hair = "gray"
    else:
        hair = str(rng.choice(["black", "brown", "blond"], p=[0.38, 0.34, 0.28]))
    beard_roll = u() if male else 1.0
    beard, goatee = beard_roll < 0.18, 0.18 <= beard_roll < 0.28
    smiling = bool(u() < 0.5)
    return FaceParams(
        cx=89 + rng.uniform(-4, 4),
        eye_y=112 + rng.uniform(-3, 3),
        rx=rng.uniform(32, 42) + (2 if male else 0),
        ry=rng.uniform(45, 55),
        skin=_jitter(rng, SKIN_TONES[tone], 8),
        pale=tone == 0,
        male=male,
        young=young,
        hair=hair,
        hair_rgb=_jitter(rng, HAIR_COLOURS[hair or "brown"], 12),
        long_hair=not bald and u() < (0.15 if male else 0.75),
        bangs=not bald and not hat and u() < (0.15 if male else 0.35),
        hat=hat,
        hat_rgb=_rgb(rng, 30, 226),
        glasses=(None if u() >= 0.25 else "sun" if u() < 0.2 else "clear"),
        frame_rgb=_jitter(rng, _FRAMES[int(rng.integers(len(_FRAMES)))], 10),
        smiling=smiling,
        mouth_open=bool(u() < (0.7 if smiling else 0.2)),
        mouth_w=rng.uniform(12, 17),
        eye_sep=rng.uniform(15, 18.5),
        narrow_eyes=bool(u() < 0.12),
        iris_rgb=_IRIS[int(rng.integers(len(_IRIS)))],
        bushy_brows=bool(u() < (0.4 if male else 0.1)),
        arched_brows=bool(u() < (0.1 if male else 0.5)),
        big_nose=bool(u() < (0.35 if male else 0.12)),
        stubble=male and not beard and 0.28 <= beard_roll < 0.5,
        beard=beard,
        goatee=goatee,
        mustache=beard or (male and u() < 0.12),
        lipstick=not male and u() < 0.5,
        rosy=bool(u() < (0.05 if male else 0.2)),
        earrings=not male and u() < 0.3,
        bags=bool(u() < (0.08 if young else 0.6)),
        background=_mix(
            _rgb(rng, 30, 250), (rng.uniform(60, 220),) * 3, rng.uniform(0.3, 0.8)
        ),  # muted, like photo backdrops
        shirt_rgb=_rgb(rng, 20, 230),
        light_angle=rng.uniform(0, 2 * np.pi),
        light_strength=rng.uniform(0.0, 0.3),
    )


def attributes(params: FaceParams) -> dict[str, int]:
    """Return all 40 CelebA attributes of a face, +1 or -1, in CelebA's order."""
    on = {
        "5_o_Clock_Shadow": params.stubble,
        "Arched_Eyebrows": params.arched_brows,
        "Bags_Under_Eyes": params.bags,
        "Bald": params.hair is None,
        "Bangs": params.bangs,
        "Big_Nose": params.big_nose,
        "Bushy_Eyebrows": params.bushy_brows,
        "Eyeglasses": params.glasses is not None,
        "Goatee": params.goatee,
        "Male": params.male,
        "Mouth_Slightly_Open": params.mouth_open,
        "Mustache": params.mustache,
        "Narrow_Eyes": params.narrow_eyes,
        "No_Beard": not (params.beard or params.goatee),
        "Pale_Skin": params.pale,
        "Rosy_Cheeks": params.rosy,
        "Smiling": params.smiling,
        "Wearing_Earrings": params.earrings,
        "Wearing_Hat": params.hat,
        "Wearing_Lipstick": params.lipstick,
        "Young": params.young,
    }
    if params.hair is not None:
        on[_HAIR_ATTRIBUTE[params.hair]] = True
    return {name: 1 if on.get(name, False) else -1 for name in ATTRIBUTE_NAMES}


# Drawing -------------------------------------------------------------------------
class _Pen:
    """ImageDraw in 178x218 coordinates on a SCALE-times larger canvas."""

    def __init__(self, image: Image.Image):
        self.draw = ImageDraw.Draw(image)

    @staticmethod
    def _xy(points):
        return [v * SCALE for v in points]

    def ellipse(self, box, fill=None, outline=None, width=1):
        width *= SCALE
        self.draw.ellipse(self._xy(box), fill=fill, outline=outline, width=width)

    def chord(self, box, start, end, fill):
        self.draw.chord(self._xy(box), start, end, fill=fill)

    def pieslice(self, box, start, end, fill):
        self.draw.pieslice(self._xy(box), start, end, fill=fill)

    def arc(self, box, start, end, fill, width=1):
        self.draw.arc(self._xy(box), start, end, fill=fill, width=round(width * SCALE))

    def rect(self, box, fill, radius=0):
        self.draw.rounded_rectangle(self._xy(box), radius=radius * SCALE, fill=fill)

    def polygon(self, points, fill):
        self.draw.polygon(self._xy([v for p in points for v in p]), fill=fill)

    def line(self, points, fill, width=1):
        flat = self._xy([v for p in points for v in p])
        self.draw.line(flat, fill=fill, width=round(width * SCALE), joint="curve")


def _hair_back(pen: _Pen, p: FaceParams, top: float) -> None:
    """Long hair falls behind the face to the shoulders; short hair hugs the head."""
    if p.hair is None:
        return
    if p.long_hair:
        pen.rect(
            (p.cx - p.rx - 10, top - 8, p.cx + p.rx + 10, p.eye_y + 78),
            p.hair_rgb,
            radius=26,
        )
    else:
        pen.ellipse(
            (p.cx - p.rx - 5, top - 8, p.cx + p.rx + 5, p.eye_y + 22), fill=p.hair_rgb
        )


def _hair_front(pen: _Pen, p: FaceParams, top: float) -> None:
    """Draw the hair over the forehead: a hairline cap, or a fringe of bangs."""
    if p.hair is None:
        return
    hairline = top + (20 if p.young else 14)
    cap = (p.cx - p.rx - 3, top - 8, p.cx + p.rx + 3, 2 * hairline - top + 8)
    pen.chord(cap, 180, 360, p.hair_rgb)
    # darker strands and edge, so hair stays visible against a similar skin tone
    shade = _mix(p.hair_rgb, (0, 0, 0), 0.4)
    pen.arc(cap, 185, 355, shade, width=1.5)
    for dx in (-0.6, -0.25, 0.1, 0.45):
        x = p.cx + dx * p.rx
        pen.line(
            [(x, top - 5), (x + dx * 6, top + 4), (x + dx * 9, hairline)],
            shade,
            width=1.2,
        )
    if p.bangs:
        fringe_y = p.eye_y - 16
        left, right = p.cx - p.rx + 2, p.cx + p.rx - 2
        points = [(left - 4, hairline - 6)]
        for i in range(9):
            x = left + (right - left) * (i + 0.5) / 9
            points.append((x, fringe_y + (3 if i % 2 else -2)))
        points.append((right + 4, hairline - 6))
        pen.polygon(points, p.hair_rgb)


def _hat(pen: _Pen, p: FaceParams, top: float) -> None:
    """Draw a cap: a crown over the head and a brim across the forehead."""
    brim_y = top + 16
    dark = _mix(p.hat_rgb, (0, 0, 0), 0.35)
    pen.chord(
        (p.cx - p.rx - 6, top - 22, p.cx + p.rx + 6, brim_y + 30), 180, 360, p.hat_rgb
    )
    pen.rect(
        (p.cx - p.rx - 10, brim_y - 2, p.cx + p.rx + 10, brim_y + 6), dark, radius=3
    )


def _eyes_and_brows(pen: _Pen, p: FaceParams, skin_dark) -> None:
    eye_h = 2.2 if p.narrow_eyes else 4.2
    for side in (-1, 1):
        x, y = p.cx + side * p.eye_sep, p.eye_y
        if p.bags:
            pen.arc((x - 7, y - 2, x + 7, y + 8), 20, 160, skin_dark, width=1)
        pen.ellipse((x - 7, y - eye_h, x + 7, y + eye_h), fill=(250, 250, 248))
        iris = min(3.6, eye_h + 0.6)
        pen.ellipse((x - 3.6, y - iris, x + 3.6, y + iris), fill=p.iris_rgb)
        pen.ellipse((x - 1.6, y - 1.6, x + 1.6, y + 1.6), fill=(10, 10, 10))
        pen.ellipse((x + 0.6, y - 1.8, x + 1.8, y - 0.6), fill=(255, 255, 255))
        pen.arc(
            (x - 7.5, y - eye_h - 0.5, x + 7.5, y + eye_h + 0.5),
            180,
            360,
            (40, 30, 30),
            width=1.2,
        )
        brow_rgb = _mix(p.hair_rgb if p.hair else (70, 55, 45), (0, 0, 0), 0.25)
        lift = 4 if p.arched_brows else 1
        by = y - 9 - (2 if p.arched_brows else 0)
        inner, outer = x - side * 6, x + side * 8
        pen.line(
            [(inner, by + 1), (x + side * 1, by - lift), (outer, by + 1.5)],
            brow_rgb,
            width=3.2 if p.bushy_brows else 1.8,
        )


def _nose(pen: _Pen, p: FaceParams, skin_dark) -> None:
    half = 6.5 if p.big_nose else 4.5
    tip = p.eye_y + (25 if p.big_nose else 22)
    pen.line(
        [(p.cx + 1, p.eye_y + 5), (p.cx + 2.5, tip - 3), (p.cx, tip)],
        skin_dark,
        width=1.2,
    )
    pen.arc((p.cx - half, tip - 4, p.cx + half, tip + 3), 20, 160, skin_dark, width=1.4)


def _mouth(pen: _Pen, p: FaceParams, lip) -> None:
    y, w = p.eye_y + 40, p.mouth_w
    if p.smiling and p.mouth_open:
        pen.chord((p.cx - w, y - 9, p.cx + w, y + 9), 0, 180, (110, 25, 35))
        pen.chord((p.cx - w + 2, y - 8, p.cx + w - 2, y + 4), 0, 180, (245, 242, 235))
        pen.arc((p.cx - w, y - 9, p.cx + w, y + 9), 0, 180, lip, width=2)
        pen.line([(p.cx - w, y), (p.cx + w, y)], lip, width=1.5)
    elif p.smiling:
        pen.arc((p.cx - w, y - 9, p.cx + w, y + 6), 15, 165, lip, width=2.8)
        pen.line([(p.cx - w - 1, y - 3), (p.cx - w + 3, y)], lip, width=1.5)
        pen.line([(p.cx + w + 1, y - 3), (p.cx + w - 3, y)], lip, width=1.5)
    elif p.mouth_open:
        pen.ellipse(
            (p.cx - w * 0.6, y - 3, p.cx + w * 0.6, y + 4),
            fill=(90, 25, 30),
            outline=lip,
            width=2,
        )
    else:
        pen.line(
            [(p.cx - w * 0.85, y + 1), (p.cx, y + 1.5), (p.cx + w * 0.85, y + 1)],
            lip,
            width=2.6,
        )


def _beard(pen: _Pen, p: FaceParams, skin) -> None:
    jaw_top, chin = p.eye_y + 28, p.eye_y + 10 + p.ry
    shade = _mix(skin, (40, 40, 45), 0.2)
    if p.stubble:
        pen.chord((p.cx - p.rx + 3, jaw_top - 20, p.cx + p.rx - 3, chin), 0, 180, shade)
    if p.beard:
        pen.chord(
            (p.cx - p.rx, jaw_top - 24, p.cx + p.rx, chin + 3), 0, 180, p.hair_rgb
        )
        pen.ellipse(
            (p.cx - p.mouth_w - 3, p.eye_y + 33, p.cx + p.mouth_w + 3, p.eye_y + 49),
            fill=skin,
        )
    if p.goatee:
        pen.ellipse((p.cx - 9, p.eye_y + 46, p.cx + 9, chin + 2), fill=p.hair_rgb)
    if p.mustache:
        y = p.eye_y + 33
        pen.polygon(
            [
                (p.cx - p.mouth_w - 2, y + 5),
                (p.cx - 4, y - 1),
                (p.cx, y + 1),
                (p.cx + 4, y - 1),
                (p.cx + p.mouth_w + 2, y + 5),
                (p.cx, y + 3.5),
            ],
            p.hair_rgb,
        )


def _wrinkles(pen: _Pen, p: FaceParams, skin_dark) -> None:
    top = p.eye_y + 10 - p.ry
    for i in range(3):
        y = top + 22 + i * 4
        pen.arc((p.cx - 16, y, p.cx + 16, y + 8), 200, 340, skin_dark, width=0.9)
    for side in (-1, 1):
        x0 = p.cx + side * 9
        pen.line(
            [
                (x0, p.eye_y + 22),
                (x0 + side * 6, p.eye_y + 34),
                (x0 + side * 7, p.eye_y + 42),
            ],
            skin_dark,
            width=1.1,
        )
        x1 = p.cx + side * (p.eye_sep + 9)
        for dy in (-2, 1, 4):
            pen.line(
                [(x1, p.eye_y + dy / 2), (x1 + side * 4, p.eye_y + dy)],
                skin_dark,
                width=0.8,
            )


_GRID = np.mgrid[-0.5:0.5:23j, -0.5:0.5:19j]  # (y, x) on a coarse 23x19 grid


def _lighting(image: Image.Image, p: FaceParams) -> Image.Image:
    """Darken along a linear gradient, as if lit from one side."""
    ys, xs = _GRID
    along = np.cos(p.light_angle) * xs + np.sin(p.light_angle) * ys  # in +-0.71
    gain = 255 * (1 - p.light_strength * (0.71 + along))
    coarse = Image.fromarray(np.clip(gain, 0, 255).astype(np.uint8))
    fine = coarse.resize(image.size, Image.Resampling.BILINEAR)
    return ImageChops.multiply(image, Image.merge("RGB", (fine, fine, fine)))


def draw_face(params: FaceParams | np.random.Generator) -> Image.Image:
    """Draw one face.

    Args:
        params: face parameters, or a generator to sample them from.

    Returns:
        A 178x218 (width x height) RGB image.
    """
    p = params if isinstance(params, FaceParams) else sample_params(params)
    image = Image.new("RGB", (WIDTH * SCALE, HEIGHT * SCALE), p.background)
    pen = _Pen(image)
    face_cy = p.eye_y + 10
    top = face_cy - p.ry
    skin_dark = _mix(p.skin, (60, 30, 20), 0.35)
    neck_rgb = _mix(p.skin, (0, 0, 0), 0.15)
    _hair_back(pen, p, top)
    pen.ellipse((p.cx - 85, HEIGHT - 26, p.cx + 85, HEIGHT + 60), fill=p.shirt_rgb)
    pen.rect((p.cx - p.rx * 0.45, face_cy, p.cx + p.rx * 0.45, HEIGHT - 12), neck_rgb)
    for side in (-1, 1):
        ex = p.cx + side * p.rx
        pen.ellipse((ex - 6, p.eye_y - 4, ex + 6, p.eye_y + 18), fill=p.skin)
    pen.ellipse((p.cx - p.rx, top, p.cx + p.rx, face_cy + p.ry), fill=p.skin)
    if p.male:  # a squarer jaw
        pen.rect(
            (p.cx - p.rx * 0.88, face_cy, p.cx + p.rx * 0.88, face_cy + p.ry - 1),
            p.skin,
            radius=16,
        )
    if p.rosy:
        rose = _mix(p.skin, (230, 90, 100), 0.45)
        for side in (-1, 1):
            x = p.cx + side * (p.eye_sep + 4)
            pen.ellipse((x - 7, p.eye_y + 15, x + 7, p.eye_y + 25), fill=rose)
    if not p.young:
        _wrinkles(pen, p, skin_dark)
    _beard(pen, p, p.skin)
    _hair_front(pen, p, top)
    if p.hat:
        _hat(pen, p, top)
    _eyes_and_brows(pen, p, skin_dark)
    _nose(pen, p, skin_dark)
    lip = (170, 25, 45) if p.lipstick else _mix(p.skin, (120, 40, 40), 0.5)
    _mouth(pen, p, lip)
    if p.glasses:
        _glasses(pen, p)
    if p.earrings:
        for side in (-1, 1):
            ex = p.cx + side * (p.rx + 1)
            pen.ellipse(
                (ex - 2.5, p.eye_y + 18, ex + 2.5, p.eye_y + 23), fill=(225, 190, 60)
            )
    return _lighting(image.reduce(SCALE), p)  # reduce: SCALExSCALE box average


def _glasses(pen: _Pen, p: FaceParams) -> None:
    for side in (-1, 1):
        x, y = p.cx + side * p.eye_sep, p.eye_y
        lens = (x - 10, y - 8, x + 10, y + 8)
        if p.glasses == "sun":
            pen.ellipse(lens, fill=(25, 25, 30), outline=p.frame_rgb, width=2)
        else:
            pen.ellipse(lens, outline=p.frame_rgb, width=2)
        pen.line(
            [(x + side * 10, y - 2), (p.cx + side * (p.rx + 1), y - 4)],
            p.frame_rgb,
            width=1.6,
        )
    gap = p.eye_sep - 10
    pen.arc(
        (p.cx - gap, p.eye_y - 5, p.cx + gap, p.eye_y + 3),
        200,
        340,
        p.frame_rgb,
        width=1.6,
    )


def face(seed: int, index: int) -> tuple[Image.Image, FaceParams]:
    """Return face number ``index`` (0-based) of the slice made with ``seed``."""
    params = sample_params(np.random.default_rng([seed, index]))
    return draw_face(params), params


# Writing a slice -----------------------------------------------------------------
def split_counts(n: int) -> tuple[int, int, int]:
    """Return (train, validation, test) sizes, about 80/10/10 like CelebA.

    Every split gets at least one image when n >= 3.
    """
    if n < 3:
        return n, 0, 0
    val = test = max(1, round(n * 0.1))
    return n - val - test, val, test


def _partition_codes(n: int) -> list[int]:
    train, val, _ = split_counts(n)
    return [0 if i < train else 1 if i < train + val else 2 for i in range(n)]


def _write_lists(files, ids: list[str], attrs: list[list[int]], parts: list[int]):
    if files.attr_file.suffix == ".csv":
        with open(files.attr_file, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["image_id", *ATTRIBUTE_NAMES])
            writer.writerows([i, *a] for i, a in zip(ids, attrs))
        with open(files.partition_file, "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(["image_id", "partition"])
            writer.writerows(zip(ids, parts))
        return
    # CelebA's own spacing: values right-aligned in two characters.
    rows = [f"{i} " + " ".join(f"{v:2d}" for v in a) for i, a in zip(ids, attrs)]
    files.attr_file.write_text(
        "\n".join([str(len(ids)), " ".join(ATTRIBUTE_NAMES), *rows]) + "\n"
    )
    files.partition_file.write_text("".join(f"{i} {p}\n" for i, p in zip(ids, parts)))


_DRAWN_TEXT = textwrap.fill(", ".join(DRAWN_ATTRIBUTES), 78)
_README = """\
GENERATED STAND-IN, NOT CelebA.

These {n} images are cartoon faces drawn procedurally by vaelab/synthetic.py
(seed {seed}), written in CelebA's {layout} file layout so that every notebook,
test and command can run without downloading CelebA. They contain no real
people and say nothing about how a model does on real faces.

Truthful attributes (decided by the drawing):
{drawn}.
Every other CelebA attribute is written as -1 (not drawn).
Partition: the first 80% of files are train (0), the next 10% validation (1),
the rest test (2), as in CelebA.
"""


def _check_out_dir(out: Path, spec: dict) -> bool:
    """Return True when ``out`` already holds this exact slice (nothing to do)."""
    if not out.exists() or not any(out.iterdir()):
        return False
    marker = out / MARKER
    if not marker.exists():
        raise DataError(
            f"{out} is not empty and holds no generated slice ({MARKER} is missing): "
            "choose an empty or new folder for --out."
        )
    found = json.loads(marker.read_text())
    same = {k: found.get(k) for k in spec} == spec
    if not same:
        have = ", ".join(f"{k}={found.get(k)}" for k in spec)
        want = ", ".join(f"{k}={v}" for k, v in spec.items())
        raise DataError(
            f"{out} already holds a different generated slice ({have}); you asked "
            f"for {want}. Choose another --out folder or delete {out} first."
        )
    return bool(found.get("complete"))


def make_slice(
    out_dir: str | os.PathLike,
    n: int,
    layout: str = "official",
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Write ``n`` generated faces and their list files in a CelebA layout.

    Running it again with the same n, seed and layout does nothing; an
    interrupted run is finished. Image k is the same whatever n is.

    Args:
        out_dir: folder to write into (created; must be empty or hold this slice).
        n: number of images, >= 1.
        layout: "official" or "kaggle" (see helpers.celeba.LAYOUTS).
        seed: seed of the faces.
        progress: print progress every 10%.

    Returns:
        out_dir, as a Path (pass it to helpers.celeba.find_celeba).

    Raises:
        DataError: out_dir holds something else, or a bad n or layout.
    """
    if layout not in LAYOUTS:
        choices = ", ".join(LAYOUTS)
        raise DataError(f"unknown layout {layout!r}: choose one of {choices}")
    if int(n) < 1:
        raise DataError(f"n={n}: a slice needs at least 1 image")
    n, seed = int(n), int(seed)
    out = Path(out_dir).expanduser()
    spec = {"n": n, "seed": seed, "layout": layout, "version": GENERATOR_VERSION}
    if _check_out_dir(out, spec):
        if progress:
            print(f"{out} already holds this slice; nothing to do.")
        return out
    files = CelebAFiles.at(out, layout)
    files.image_dir.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({**spec, "complete": False}) + "\n")
    ids, attrs = [], []
    for k in range(n):
        image, params = face(seed, k)
        ids.append(f"{k + 1:06d}.jpg")
        image.save(files.image_dir / ids[-1], quality=JPEG_QUALITY)
        attrs.append(list(attributes(params).values()))
        if progress and (k + 1) % max(1, n // 10) == 0:
            print(f"  {k + 1}/{n} faces", flush=True)
    _write_lists(files, ids, attrs, _partition_codes(n))
    (out / "README.txt").write_text(
        _README.format(n=n, seed=seed, layout=layout, drawn=_DRAWN_TEXT)
    )
    (out / MARKER).write_text(json.dumps({**spec, "complete": True}) + "\n")
    return out
