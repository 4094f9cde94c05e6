"""A built-in, procedurally drawn face dataset, so the notebook can train offline.

CelebA cannot be downloaded everywhere (CI, classrooms without internet), so the notebook's
"Get the data" step can draw its own faces instead: simple cartoon head-and-shoulders portraits
in the spirit of Udacity's ``processed_celeba_small`` (64x64 RGB, the face centred and filling
most of the frame). A DCGAN learns them in minutes on a CPU.

    from helpers.faces import BUILTIN_DIR, make_faces
    root = make_faces(BUILTIN_DIR)   # data/generated_faces/faces/000001.png ... 010000.png
    # torchvision.datasets.ImageFolder(root) now reads them, like processed_celeba_small.

Command line: ``python -m helpers faces --help``.
"""

from __future__ import annotations

import argparse
import json
import numbers
import os
import pathlib
import re
import sys
from collections.abc import Iterable, Sequence
from functools import partial
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from helpers.files import (
    NoSpaceError,
    NotWritableError,
    atomic_write,
    check_writable_folder,
    no_space_message,
    positive_int,
)

__all__ = [
    "ATTRIBUTES",
    "BUILTIN_DIR",
    "DEFAULT_N",
    "DEFAULT_SIZE",
    "FACES_VERSION",
    "draw_face",
    "face_attributes",
    "is_builtin_set",
    "main",
    "make_faces",
]

# Bump whenever the drawing changes: a folder made by an older version is then redrawn.
FACES_VERSION = 1
# The built-in set, defined only here: helpers.data.find_data_dir and `python -m helpers faces`
# both use it. data/ is git-ignored.
BUILTIN_DIR = "data/generated_faces"
# 10,000 faces are enough for a DCGAN to learn this simple distribution at 32x32 or 64x64
# in a few CPU minutes, yet take well under a minute to draw on two cores.
DEFAULT_N = 10_000
# 64x64 matches processed_celeba_small, so the notebook's transforms work unchanged on either.
DEFAULT_SIZE = 64
# PIL's ImageDraw draws hard, aliased edges; drawing 3x larger and box-filtering down gives
# clean anti-aliased shapes (4x looks the same at 64x64 and draws twice as slowly). The head
# tilt is a nearest-neighbour rotation at this scale, smoothed by the same downsampling
# (a bicubic rotation would cost more than all the rest of the drawing).
_SUPERSAMPLE = 3
_MARKER = ".complete.json"
# What draw_face can report about a face (part 2 measures latent arithmetic with them).
ATTRIBUTES = ("smiling", "glasses", "beard", "masculine")
_IMAGE_NAME = re.compile(r"^\d{6}\.png$")

# Skin tones from very light to very deep; a face picks a random point between two neighbours.
_SKIN_TONES = np.array(
    [
        (255, 228, 208),
        (247, 211, 180),
        (237, 192, 152),
        (224, 172, 128),
        (203, 146, 100),
        (176, 118, 78),
        (141, 90, 58),
        (105, 66, 44),
        (78, 50, 36),
    ],
    dtype=float,
)
# (colour, weight): natural hair colours, with a few dyed ones drawn separately.
_HAIR_COLOURS = [
    ((28, 24, 24), 0.26),
    ((62, 42, 30), 0.2),
    ((104, 68, 42), 0.14),
    ((150, 108, 68), 0.08),
    ((215, 180, 110), 0.09),
    ((236, 222, 180), 0.03),
    ((150, 62, 30), 0.05),
    ((196, 98, 44), 0.03),
    ((140, 138, 136), 0.05),
    ((214, 212, 208), 0.03),
]
_HAIR_WEIGHTS = np.array([w for _, w in _HAIR_COLOURS]) / sum(w for _, w in _HAIR_COLOURS)
_DYED_HAIR = [(220, 80, 150), (70, 110, 210), (130, 70, 190), (50, 160, 120), (230, 120, 40)]
_IRIS_COLOURS = [
    (62, 36, 20),
    (98, 62, 30),
    (120, 96, 48),
    (70, 112, 64),
    (64, 104, 170),
    (110, 124, 138),
]
_GLASSES_FRAMES = [(20, 20, 22), (70, 40, 25), (150, 120, 60), (120, 120, 128), (140, 30, 40)]


def _mix(a, b, t):
    """Blend colour a toward colour b by t in [0, 1]; returns an int RGB tuple."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _scale(c, f):
    """Darken (f < 1) or lighten (f > 1) a colour, clipped to 0..255."""
    return tuple(int(min(255, max(0, round(x * f)))) for x in c)


def _jitter(rng, c, amount):
    return tuple(int(min(255, max(0, x + rng.integers(-amount, amount + 1)))) for x in c)


def _luma(c):
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _random_colour(rng, sat, val):
    """A colour from HSV ranges (each a (low, high) pair in 0..1)."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val)
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return tuple(int(round(255 * x)) for x in rgb)


def _clip_box(box, W, H):
    """Round a float box outward to ints inside a W x H image (for paste and crop)."""
    x0, y0, x1, y1 = box
    return (max(0, int(x0)), max(0, int(y0)), min(W, int(x1) + 2), min(H, int(y1) + 2))


def _ellipse(draw, cx, cy, rx, ry, **kwargs):
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), **kwargs)


class _Head:
    """Pixel geometry of one head on the supersampled canvas (all lengths in pixels)."""

    def __init__(self, rng, S):
        shape = rng.choice(["round", "oval", "long"], p=[0.3, 0.45, 0.25])
        ratio = {"round": (1.1, 1.2), "oval": (1.22, 1.34), "long": (1.36, 1.48)}[shape]
        self.rx = S * 0.255 * rng.uniform(0.92, 1.08) * (0.94 if shape == "long" else 1.0)
        self.ry = self.rx * rng.uniform(*ratio)
        self.cx = S * (0.5 + rng.uniform(-0.035, 0.035))
        self.cy = S * (0.47 + rng.uniform(-0.025, 0.025))
        self.jaw = rng.uniform(0.72, 0.92)  # chin width relative to the cheeks
        self.chin = self.cy + self.ry * 1.04
        # Eyes sit about halfway down the whole head, nose and mouth in the lower third.
        self.eye_y = self.cy + self.ry * rng.uniform(-0.06, 0.06)
        self.nose_y = self.eye_y + (self.chin - self.eye_y) * rng.uniform(0.38, 0.48)
        self.mouth_y = self.nose_y + (self.chin - self.nose_y) * rng.uniform(0.34, 0.46)
        self.eye_dx = self.rx * rng.uniform(0.36, 0.46)
        self.eye_rx = self.rx * rng.uniform(0.15, 0.21)
        self.eye_ry = self.eye_rx * rng.uniform(0.55, 0.78)
        self.brow_y = self.eye_y - self.eye_ry - self.ry * rng.uniform(0.09, 0.17)
        self.mouth_rx = self.rx * rng.uniform(0.26, 0.42)
        self.neck = self.rx * rng.uniform(0.42, 0.56)

    def face(self, draw, fill):
        # Union of the skull ellipse and a narrower, lower one gives cheeks and a chin.
        _ellipse(draw, self.cx, self.cy, self.rx, self.ry, fill=fill)
        _ellipse(
            draw, self.cx, self.cy + self.ry * 0.1, self.rx * self.jaw, self.ry * 0.94, fill=fill
        )


def _skin_and_hair_colours(rng):
    """A skin tone anywhere from very light to very deep, and a hair colour that shows on it."""
    t = rng.uniform(0, len(_SKIN_TONES) - 1)
    lighter, darker = _SKIN_TONES[int(t)], _SKIN_TONES[min(int(t) + 1, len(_SKIN_TONES) - 1)]
    skin = _jitter(rng, _mix(lighter, darker, t - int(t)), 5)
    if rng.uniform() < 0.03:
        hair = _jitter(rng, _DYED_HAIR[rng.integers(len(_DYED_HAIR))], 20)
    else:
        k = rng.choice(len(_HAIR_COLOURS), p=_HAIR_WEIGHTS)
        hair = _jitter(rng, _HAIR_COLOURS[k][0], 10)
    if abs(_luma(hair) - _luma(skin)) < 45:  # keep the hairline visible
        darker = _luma(hair) < 120  # brown hair on dark skin turns black, blonde gets paler
        hair = _mix(hair, (8, 6, 6), 0.75) if darker else _mix(hair, (245, 240, 230), 0.5)
    return skin, hair


def _background(rng, size, skin, hair):
    """(size, size, 3) float array: a flat colour or a soft vertical gradient."""
    for _ in range(8):  # resample until it stands out from both skin and hair
        top = _random_colour(rng, (0.0, 0.6), (0.15, 0.98))
        if abs(_luma(top) - _luma(skin)) > 50 and abs(_luma(top) - _luma(hair)) > 25:
            break
    if rng.uniform() < 0.45:
        bottom = top
    else:
        bottom = _scale(top, rng.uniform(0.6, 1.25))
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    column = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return np.broadcast_to(column, (size, size, 3))


def _draw_body(draw, rng, h, S, skin):
    shadow = _scale(skin, 0.78)  # the head shades the neck, which keeps the chin readable
    neck = h.neck
    draw.rectangle((h.cx - neck, h.cy, h.cx + neck, S), fill=shadow)
    clothes = _random_colour(rng, (0.15, 0.8), (0.2, 0.9))
    top = h.chin + S * rng.uniform(0.04, 0.09)
    half = S * rng.uniform(0.4, 0.52)
    _ellipse(draw, h.cx, top + S * 0.32, half, S * 0.32, fill=clothes)
    neckline = rng.choice(["round", "v", "high"])
    if neckline == "round":
        _ellipse(draw, h.cx, top, neck * 1.1, S * 0.05, fill=shadow)
    elif neckline == "v":
        draw.polygon(
            [(h.cx - neck * 1.1, top - 2), (h.cx + neck * 1.1, top - 2), (h.cx, top + S * 0.09)],
            fill=shadow,
        )


def _hair_style(rng, masculine):
    lengths = ["bald", "short", "medium", "long"]
    odds = [0.12, 0.6, 0.18, 0.1] if masculine else [0.02, 0.18, 0.3, 0.5]
    length = rng.choice(lengths, p=odds)
    top = rng.choice(["plain", "bangs", "parted", "curly"], p=[0.35, 0.2, 0.3, 0.15])
    return str(length), str(top)


def _draw_hair(head_img, rng, h, S, colour, length, top):
    """Hair in two passes: the back (behind the head) now, the front returned for later."""
    W, H = head_img.size
    curly = top == "curly"
    # Curls stand out from the head; short hair hugs it, or it reads as a woolly hat.
    grow = 1.2 if curly else (0.96 if length == "short" else 1.0)
    hrx = h.rx * rng.uniform(1.06, 1.16) * grow
    hry = h.ry * rng.uniform(1.03, 1.11) * (1.08 if curly else 1.0)
    hcy = h.cy - h.ry * rng.uniform(0.04, 0.12)
    bump = h.rx * rng.uniform(0.12, 0.2)

    def outline(draw, y_max, fill):
        _ellipse(draw, h.cx, hcy, hrx, hry, fill=fill)
        if curly:  # a bumpy outline of circles reads as curls
            for a in np.linspace(0, 2 * np.pi, 18, endpoint=False):
                x, y = h.cx + hrx * np.cos(a), hcy + hry * np.sin(a)
                if y < y_max:
                    _ellipse(draw, x, y, bump, bump, fill=fill)

    # The back hair is the first thing on the empty head layer, so drawing transparent
    # pixels cuts it to shape (cheaper than a mask).
    d = ImageDraw.Draw(head_img)
    clear = (0, 0, 0, 0)
    if length == "bald":
        if rng.uniform() < 0.6:  # a fringe of hair around the sides
            _ellipse(d, h.cx, h.cy, h.rx * 1.07, h.ry * 0.95, fill=_scale(colour, 0.9))
            d.rectangle((0, 0, W, h.eye_y - h.ry * 0.12), fill=clear)
            d.rectangle((0, h.nose_y + h.ry * 0.08, W, H), fill=clear)
        return None

    back = _scale(colour, 0.75)  # the back is in shade
    if length == "medium":  # a bob with a rounded end
        bottom = h.cy + h.ry * rng.uniform(0.6, 0.95)
        brx = hrx * rng.uniform(0.95, 1.08)
        d.rounded_rectangle((h.cx - brx, hcy, h.cx + brx, bottom), radius=brx * 0.6, fill=back)
        outline(d, bottom, back)
    elif length == "long":  # two curtains that widen a little toward the ends
        bottom = rng.uniform(h.chin + S * 0.04, S * 1.05)
        brx = hrx * rng.uniform(1.0, 1.2)
        d.polygon(
            [(h.cx - hrx, hcy), (h.cx + hrx, hcy), (h.cx + brx, bottom), (h.cx - brx, bottom)],
            fill=back,
        )
        outline(d, bottom, back)
        # Leave the neck free below the chin, or the hair reads as a hood.
        gap = h.neck * rng.uniform(1.0, 1.3)
        d.rectangle((h.cx - gap, h.chin - h.ry * 0.2, h.cx + gap, H), fill=clear)
    else:
        outline(d, h.eye_y, back)
        d.rectangle((0, h.eye_y, W, H), fill=clear)

    # The front goes over the face, so it needs a mask; only its bounding box is pasted.
    front = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(front)
    outline(d, h.cy + h.ry * 0.4, 255)
    reach = bump if curly else 0
    box = _clip_box(
        (h.cx - hrx - reach, hcy - hry - reach, h.cx + hrx + reach, hcy + hry + reach), W, H
    )
    # Cut out the face below the hairline; its shape decides the style.
    if top == "bangs":
        fringe = h.brow_y - h.ry * rng.uniform(0.04, 0.1)
        teeth = int(rng.integers(0, 2)) * 7  # a straight or a jagged fringe
        xs = np.linspace(h.cx - h.rx * 0.9, h.cx + h.rx * 0.9, max(teeth, 1) + 1)
        edge = [(x, fringe - (h.ry * 0.05 if k % 2 else 0)) for k, x in enumerate(xs)]
        d.polygon(edge + [(h.cx + h.rx * 0.92, H), (h.cx - h.rx * 0.92, H)], fill=0)
    else:
        hairline = h.cy - h.ry * rng.uniform(0.42, 0.62)
        shift = h.rx * rng.uniform(0.15, 0.3) * rng.choice([-1, 1]) if top == "parted" else 0
        wrx, wry = h.rx * rng.uniform(0.95, 1.08), h.ry * rng.uniform(1.0, 1.3)
        _ellipse(d, h.cx + shift, hairline + wry, wrx, wry, fill=0)
    if length == "short":
        # Sideburns end around the ears.
        d.rectangle((0, h.eye_y - h.ry * rng.uniform(0.0, 0.15), W, H), fill=0)
    elif length == "medium":
        d.rectangle((0, h.cy + h.ry * 0.6, W, H), fill=0)
    part = None
    if top == "parted" or (top == "plain" and length != "short"):  # a side or centre parting
        x = h.cx + shift * 1.3
        part = [(x, hcy - hry * 0.75), (x - shift * 0.15, hairline + h.ry * 0.02)]
    return front, box, part


def _draw_ears(draw, h, skin):
    for side in (-1, 1):
        x, y = h.cx + side * h.rx * 0.96, (h.eye_y + h.nose_y) / 2
        _ellipse(draw, x, y, h.rx * 0.16, h.ry * 0.2, fill=_scale(skin, 0.95))
        _ellipse(draw, x + side * h.rx * 0.03, y, h.rx * 0.08, h.ry * 0.12, fill=_scale(skin, 0.78))


def _draw_eyes(draw, rng, h, lash):
    sclera = _jitter(rng, (242, 240, 234), 6)
    iris = _jitter(rng, _IRIS_COLOURS[rng.integers(len(_IRIS_COLOURS))], 12)
    look = h.eye_rx * rng.uniform(-0.25, 0.25)  # both eyes look the same way
    r = h.eye_ry * rng.uniform(0.78, 0.95)
    lid = max(2, int(h.eye_ry * rng.uniform(0.25, 0.4)))
    for side in (-1, 1):
        x, y = h.cx + side * h.eye_dx, h.eye_y
        _ellipse(draw, x, y, h.eye_rx, h.eye_ry, fill=sclera)
        _ellipse(draw, x + look, y, r, r, fill=iris)
        _ellipse(draw, x + look, y, r * 0.48, r * 0.48, fill=(12, 10, 10))
        _ellipse(draw, x + look - r * 0.35, y - r * 0.35, r * 0.22, r * 0.22, fill=(255, 255, 255))
        box = (x - h.eye_rx, y - h.eye_ry, x + h.eye_rx, y + h.eye_ry)
        draw.arc(box, 180, 360, fill=lash, width=lid)  # the upper lid and lashes


def _draw_brows(draw, rng, h, colour):
    width = max(2, int(h.ry * rng.uniform(0.035, 0.075)))
    tilt = h.ry * rng.uniform(-0.05, 0.05)  # inner end raised (worried) or lowered (cross)
    arch = h.ry * rng.uniform(0.0, 0.05)
    for side in (-1, 1):
        x = h.cx + side * h.eye_dx
        inner = (x - side * h.eye_rx * 0.9, h.brow_y + tilt)
        middle = (x + side * h.eye_rx * 0.2, h.brow_y - arch)
        outer = (x + side * h.eye_rx * 1.25, h.brow_y + h.ry * 0.02)
        draw.line([inner, middle, outer], fill=colour, width=width, joint="curve")


def _draw_nose(draw, rng, h, skin):
    shade = _scale(skin, rng.uniform(0.72, 0.84))
    w = h.rx * rng.uniform(0.1, 0.17)
    top = h.nose_y - (h.nose_y - h.eye_y) * rng.uniform(0.5, 0.8)
    style = rng.choice(["line", "triangle", "nostrils"])
    line = max(2, int(h.rx * 0.035))
    if style == "triangle":
        draw.polygon([(h.cx, top), (h.cx - w, h.nose_y), (h.cx + w, h.nose_y)], fill=shade)
    elif style == "line":
        side = rng.choice([-1, 1])
        draw.line(
            [
                (h.cx + side * w * 0.3, top),
                (h.cx + side * w * 0.6, h.nose_y),
                (h.cx - side * w * 0.4, h.nose_y + w * 0.2),
            ],
            fill=shade,
            width=line,
            joint="curve",
        )
    else:
        _ellipse(draw, h.cx, h.nose_y - w * 0.3, w * 0.8, w * 0.9, fill=_scale(skin, 0.9))
        for side in (-1, 1):
            _ellipse(
                draw, h.cx + side * w * 0.45, h.nose_y, w * 0.28, w * 0.2, fill=_scale(skin, 0.55)
            )


def _draw_mouth(draw, rng, h, skin, lips):
    x, y, w = h.cx, h.mouth_y, h.mouth_rx
    dark = (70, 22, 28)
    line = max(2, int(h.rx * rng.uniform(0.03, 0.05)))
    mood = rng.choice(["grin", "smile", "neutral", "open", "frown"], p=[0.3, 0.25, 0.25, 0.1, 0.1])
    if mood == "grin":  # an open smile showing teeth
        hgt = w * rng.uniform(0.45, 0.7)
        box = (x - w, y - hgt, x + w, y + hgt)
        draw.chord(box, 0, 180, fill=dark)
        draw.chord(
            (x - w * 0.9, y - hgt * 0.4, x + w * 0.9, y + hgt * 0.55), 0, 180, fill=(246, 244, 236)
        )
        draw.line([(x - w, y), (x + w, y)], fill=lips, width=line)
        draw.arc(box, 0, 180, fill=lips, width=line)
    elif mood == "smile":
        hgt = w * rng.uniform(0.3, 0.55)
        draw.arc((x - w, y - hgt, x + w, y + hgt), 10, 170, fill=lips, width=line * 2)
    elif mood == "neutral":
        _ellipse(draw, x, y + line, w * 0.8, w * 0.22, fill=lips)
        draw.line([(x - w * 0.85, y), (x + w * 0.85, y)], fill=_scale(lips, 0.6), width=line)
    elif mood == "open":
        _ellipse(draw, x, y, w * 0.55, w * 0.45, fill=dark, outline=lips, width=line * 2)
    else:
        hgt = w * rng.uniform(0.25, 0.45)
        draw.arc((x - w * 0.85, y, x + w * 0.85, y + 2 * hgt), 200, 340, fill=lips, width=line * 2)
    return mood


def _draw_beard(head_img, rng, h, colour):
    W, H = head_img.size
    mask = Image.new("L", (W, H), 0)
    d = ImageDraw.Draw(mask)
    if rng.uniform() < 0.65:  # a full beard along the jaw
        _ellipse(d, h.cx, h.cy + h.ry * 0.1, h.rx * h.jaw * 1.05, h.ry * 1.0, fill=255)
        _ellipse(
            d, h.cx, h.eye_y, h.rx * 0.86, (h.mouth_y - h.eye_y) * rng.uniform(0.85, 1.0), fill=0
        )
        d.rectangle((0, 0, W, h.eye_y + h.ry * 0.1), fill=0)
    else:  # a goatee
        _ellipse(d, h.cx, h.chin - h.ry * 0.2, h.mouth_rx * 0.9, h.ry * 0.28, fill=255)
    _ellipse(d, h.cx, h.mouth_y, h.mouth_rx * 1.1, h.mouth_rx * 0.55, fill=0)
    box = _clip_box((h.cx - h.rx, h.eye_y, h.cx + h.rx, h.chin + h.ry * 0.1), W, H)
    head_img.paste(colour + (255,), box, mask.crop(box))


def _draw_moustache(draw, h, colour):
    top = h.nose_y + (h.mouth_y - h.nose_y) * 0.25
    w = h.mouth_rx * 1.05
    draw.chord(
        (h.cx - w, top, h.cx + w, h.mouth_y + (h.mouth_y - top) * 0.6), 180, 360, fill=colour
    )


def _draw_glasses(draw, rng, h):
    sun = rng.uniform() < 0.15
    frame = _GLASSES_FRAMES[rng.integers(len(_GLASSES_FRAMES))]
    width = max(2, int(h.rx * rng.uniform(0.03, 0.05)))
    rx, ry = h.eye_rx * rng.uniform(1.45, 1.7), h.eye_ry * rng.uniform(1.7, 2.3)
    fill = (28, 30, 36) if sun else None
    square = rng.uniform() < 0.5
    for side in (-1, 1):
        x = h.cx + side * h.eye_dx
        box = (x - rx, h.eye_y - ry, x + rx, h.eye_y + ry)
        if square:
            draw.rounded_rectangle(box, radius=ry * 0.35, fill=fill, outline=frame, width=width)
        else:
            draw.ellipse(box, fill=fill, outline=frame, width=width)
        # The arm runs from the lens to the ear.
        draw.line(
            [(x + side * rx, h.eye_y - ry * 0.5), (h.cx + side * h.rx, h.eye_y - ry * 0.3)],
            fill=frame,
            width=width,
        )
    bridge_y = h.eye_y - ry * 0.3
    draw.line(
        [(h.cx - h.eye_dx + rx, bridge_y), (h.cx + h.eye_dx - rx, bridge_y)],
        fill=frame,
        width=width,
    )


def draw_face(
    rng: np.random.Generator, size: int = DEFAULT_SIZE, attributes: dict[str, bool] | None = None
) -> Image.Image:
    """Draw one random cartoon portrait; the building block of :func:`make_faces`.

    Every choice (face shape and size, skin tone, hair style and colour, eyes, brows, nose,
    mouth, glasses, beard, head tilt, lighting, background) comes from ``rng``, so the same
    generator state always gives the same picture.

    Args:
        rng: a ``numpy.random.Generator``, e.g. ``numpy.random.default_rng(0)``.
        size: width and height in pixels, at least 16 (64 matches processed_celeba_small).
        attributes: a dict to fill with what was drawn (the keys of ATTRIBUTES: True/False),
            the labels part 2's attribute classifier learns from; None to skip.

    Returns:
        A ``size`` x ``size`` RGB ``PIL.Image.Image`` (values 0..255).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"draw_face needs a numpy Generator such as numpy.random.default_rng(0), "
            f"got {type(rng).__name__}."
        )
    _check_size(size, "draw_face")
    S = size * _SUPERSAMPLE
    h = _Head(rng, S)
    skin, hair = _skin_and_hair_colours(rng)
    # A loose styling switch, like CelebA's mix: it only makes short hair and beards, or long
    # hair and lipstick, more likely together.
    masculine = rng.uniform() < 0.5
    length, top = _hair_style(rng, masculine)

    body = Image.new("RGBA", (S, S), (0, 0, 0, 0))
    _draw_body(ImageDraw.Draw(body), rng, h, S, skin)

    # The head is drawn on its own, taller layer so that long hair survives the tilt.
    head = Image.new("RGBA", (S, int(S * 1.25)), (0, 0, 0, 0))
    d = ImageDraw.Draw(head)
    front = _draw_hair(head, rng, h, S, hair, length, top)
    if length in ("bald", "short"):  # longer hair covers the ears
        _draw_ears(d, h, skin)
    h.face(d, skin)
    if rng.uniform() < 0.3:  # rosy cheeks
        blush = _mix(skin, (225, 110, 110), rng.uniform(0.12, 0.25))
        for side in (-1, 1):
            _ellipse(
                d, h.cx + side * h.eye_dx * 1.1, h.nose_y, h.rx * 0.16, h.ry * 0.09, fill=blush
            )
    _draw_nose(d, rng, h, skin)
    lash = _mix(hair, (20, 14, 12), 0.7)
    _draw_eyes(d, rng, h, lash)
    brow = hair if length != "bald" else _scale(skin, 0.45)
    _draw_brows(d, rng, h, _mix(brow, (35, 25, 20), rng.uniform(0.25, 0.6)))
    lipstick = not masculine and rng.uniform() < 0.4
    lips = _mix(skin, (190, 30, 60) if lipstick else (160, 70, 70), rng.uniform(0.35, 0.55))
    mood = _draw_mouth(d, rng, h, skin, lips)
    beard = masculine and rng.uniform() < 0.3
    if beard:
        stubble = rng.uniform() < 0.3
        _draw_beard(head, rng, h, _mix(skin, hair, 0.4) if stubble else _scale(hair, 0.92))
    if masculine and rng.uniform() < 0.2:
        _draw_moustache(d, h, _scale(hair, 0.92))
    if front is not None:
        mask, box, part = front
        head.paste(hair + (255,), box, mask.crop(box))
        if part is not None:
            d.line(part, fill=_scale(hair, 0.7), width=max(2, int(h.rx * 0.04)))
    glasses = rng.uniform() < 0.18
    if glasses:
        _draw_glasses(d, rng, h)
    if attributes is not None:
        attributes.update(
            smiling=mood in ("grin", "smile"),
            glasses=bool(glasses),
            beard=bool(beard),
            masculine=bool(masculine),
        )

    tilt = float(np.clip(rng.normal(0.0, 5.0), -12.0, 12.0))
    head = head.rotate(tilt, resample=Image.Resampling.NEAREST, center=(h.cx, h.cy))
    layer = Image.alpha_composite(body, head.crop((0, 0, S, S))).reduce(_SUPERSAMPLE)

    # Light from one side: the far side of the person is a little darker.
    rgba = np.asarray(layer, dtype=float) / 255.0
    x = np.arange(size) / size - h.cx / S
    light = 1.0 + rng.uniform(0.15, 0.35) * rng.choice([-1, 1]) * np.clip(x / 0.3, -1, 1) * 0.5
    fg = rgba[..., :3] * 255.0 * light[None, :, None]
    alpha = rgba[..., 3:]
    out = fg * alpha + _background(rng, size, skin, hair) * (1 - alpha)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def face_attributes(indices: Iterable[int], seed: int = 0, size: int = DEFAULT_SIZE) -> np.ndarray:
    """The attributes of built-in faces number `indices` (1-based, as in 000001.png) of the set
    drawn with `seed` and `size`, read by drawing them again: a (len(indices), len(ATTRIBUTES))
    bool array, columns in ATTRIBUTES' order. For part 2's attribute classifier."""
    rows = []
    for i in indices:
        found: dict[str, bool] = {}
        draw_face(np.random.default_rng([seed, int(i)]), size, attributes=found)
        rows.append([found[name] for name in ATTRIBUTES])
    return np.array(rows, dtype=bool).reshape(len(rows), len(ATTRIBUTES))


def _check_size(size, who):
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 16:
        raise ValueError(
            f"{who}: size must be a whole number of pixels, at least 16 "
            f"(64 matches processed_celeba_small); got {size!r}."
        )


def _draw_and_save(index, folder, seed, size):
    """Draw image ``index`` (1-based) from its own generator and write it atomically."""
    image = draw_face(np.random.default_rng([seed, index]), size)
    path = folder / f"{index:06d}.png"
    # Through a temporary file, so an interrupted run never leaves half a PNG.
    with atomic_write(path) as f:
        image.save(f, format="PNG")
    return index


def make_faces(
    root: str | os.PathLike[str],
    n: int = DEFAULT_N,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> pathlib.Path:
    """Draw ``n`` faces into ``root/faces/000001.png ...`` for the notebook's "Get the data" step.

    The layout is what ``torchvision.datasets.ImageFolder(root)`` expects (one class, ``faces``).
    Image i is drawn from ``numpy.random.default_rng([seed, i])``, so the files are byte-identical
    whatever ``workers`` is. A finished set is marked by ``root/faces/.complete.json``; calling
    again with the same n, size and seed returns at once, and only redraws files that went
    missing. Any other n, size, seed or drawing version redraws the whole set.

    Args:
        root: folder to fill (created if needed).
        n: number of images, at least 1.
        size: width and height in pixels, at least 16.
        seed: base seed; different seeds give different faces.
        workers: processes to draw with (default: ``os.cpu_count()``); 1 draws in this process.
        progress: show a tqdm progress bar.

    Returns:
        ``root`` as a ``pathlib.Path``.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(
            f"make_faces: n is the number of images to draw and must be a whole "
            f"number of at least 1; got {n!r}."
        )
    _check_size(size, "make_faces")
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"make_faces: seed must be a whole number >= 0; got {seed!r}.")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1:
        raise ValueError(
            f"make_faces: workers must be at least 1 (or None for one per CPU "
            f"core); got {workers!r}."
        )
    n, size, seed, workers = int(n), int(size), int(seed), int(workers)

    root = pathlib.Path(root)
    folder = root / "faces"
    marker = folder / _MARKER
    wanted = {"n": n, "size": size, "seed": seed, "version": FACES_VERSION}
    finished = _read_marker(marker) == wanted
    if finished:  # the files present are right; redraw only any that went missing
        todo = [i for i in range(1, n + 1) if not (folder / f"{i:06d}.png").exists()]
        if not todo:
            return root  # a finished set is only read: a read-only kit folder is fine
    # a file in the way or a read-only kit folder: one clear error with what to do
    check_writable_folder(folder, "the built-in faces (builtin_dir, or faces --root)")
    if not finished:
        # Remove the marker first: if this redraw is interrupted, the folder must not look
        # finished. Files from another seed or size are overwritten, extra ones removed below.
        marker.unlink(missing_ok=True)
        todo = list(range(1, n + 1))
    for path in folder.iterdir():
        extra = not finished and _IMAGE_NAME.match(path.name) and int(path.name[:6]) > n
        if extra or path.name.endswith(".tmp"):  # .tmp: left by an interrupted run
            path.unlink()

    job = partial(_draw_and_save, folder=folder, seed=seed, size=size)
    if progress:  # the bar alone says nothing of why, or that it happens once
        print(f"Drawing {len(todo):,} built-in faces into {folder} (once: later runs reuse them).")
    bar = tqdm(total=len(todo), desc="Drawing faces", unit="img", disable=not progress)
    done = 0
    try:
        with bar:
            if workers == 1 or len(todo) < 2 * workers:
                for i in todo:
                    job(i)
                    done += 1
                    bar.update()
            else:
                with Pool(min(workers, len(todo))) as pool:
                    for _ in pool.imap_unordered(job, todo, chunksize=16):
                        done += 1
                        bar.update()
        with atomic_write(marker, "w") as f:
            f.write(json.dumps(wanted))
    except NoSpaceError:
        # The faces drawn so far are whole files (atomic writes) and the set has no marker, so
        # it never looks finished: a rerun after freeing space completes it.
        needed = (len(todo) - done) * size * size * 3 // 4 + 2**20  # a PNG face: ~0.75 B/px
        raise NoSpaceError(no_space_message(folder, needed)) from None
    return root


def is_builtin_set(root: str | os.PathLike[str]) -> bool:
    """True when ``root`` holds a set ``make_faces`` drew (its ``faces/`` folder is marked)."""
    return (pathlib.Path(root) / "faces" / _MARKER).is_file()


def _read_marker(marker):
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers faces",
        description="Draw the kit's built-in cartoon face dataset (an offline stand-in for "
        "processed_celeba_small) into ROOT/faces/000001.png ...",
    )
    parser.add_argument(
        "--root",
        default=None,
        help="folder to fill; torchvision's ImageFolder(ROOT) reads it (default: the kit's "
        f"{BUILTIN_DIR}, the built-in set the notebook trains on without CelebA, from any "
        "working directory)",
    )
    parser.add_argument(
        "--n",
        type=positive_int,
        default=DEFAULT_N,
        help="number of images to draw (default: %(default)s)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=DEFAULT_SIZE,
        help=f"width and height in pixels, at least 16 (default: {DEFAULT_SIZE})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="base seed; the same seed always gives the same images (default: 0)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="processes to draw with (default: one per CPU core)",
    )
    parser.add_argument("--quiet", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    from helpers import KIT_DIR

    try:
        root = make_faces(
            KIT_DIR / BUILTIN_DIR if args.root is None else args.root,
            n=args.n,
            size=args.size,
            seed=args.seed,
            workers=args.workers,
            progress=not args.quiet,
        )
    except ValueError as err:
        parser.error(str(err))
    except (NoSpaceError, NotWritableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.n} faces of {args.size}x{args.size} in {root / 'faces'}")
    return 0
