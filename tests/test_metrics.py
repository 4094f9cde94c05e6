"""Specification of helpers/metrics.py: the SWD ranks image sets in a known order, and the
nearest-neighbour tools spot copied training images.

The test data are procedural images made here (smooth colour blobs over a gradient, stripes,
a little noise), so every expected order is known in advance.
"""

import math

import pytest
import torch
import torchvision.transforms.functional as TF

from helpers.metrics import (laplacian_pyramid, memorisation_report, nearest_neighbour_distance,
                             sliced_wasserstein_distance, spread, verdict)

# Small settings for tests that check plumbing, not the statistics (fast on a CPU).
QUICK = {"descriptors_per_image": 16, "directions": 64}


def structured_images(n, size=32, seed=0):
    """n images (n, 3, size, size) in [-1, 1]: gradient + 3 colour blobs + stripes + noise."""
    g = torch.Generator().manual_seed(seed)
    coords = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    angle = torch.rand(n, generator=g)[:, None, None] * 2 * math.pi
    gradient = torch.cos(angle) * xx + torch.sin(angle) * yy
    images = 0.4 * gradient[:, None] * (torch.rand(n, 3, 1, 1, generator=g) * 2 - 1)
    for _ in range(3):
        cx = torch.rand(n, 1, 1, generator=g) * 1.6 - 0.8
        cy = torch.rand(n, 1, 1, generator=g) * 1.6 - 0.8
        radius = torch.rand(n, 1, 1, generator=g) * 0.3 + 0.15
        blob = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius ** 2))
        images = images + 0.6 * blob[:, None] * (torch.rand(n, 3, 1, 1, generator=g) * 2 - 1)
    frequency = torch.rand(n, 1, 1, generator=g) * 6 + 3
    phase = torch.rand(n, 1, 1, generator=g) * 2 * math.pi
    images = images + 0.2 * torch.sin(frequency * math.pi * xx + phase)[:, None]
    images = images + 0.05 * torch.randn(images.shape, generator=g)
    return images.clamp(-1, 1)


@pytest.fixture(scope="module")
def images():
    return structured_images(300)


@pytest.fixture(scope="module")
def known_order(images):
    """SWD of one half against: the other half, its blurred copy, and uniform noise.

    Paper settings except 128 directions instead of 512: fewer directions only add a little
    noise to the estimate, and this keeps the fixture near a second on a laptop CPU.
    """
    first, second = images[:150], images[150:]
    blurred = TF.gaussian_blur(second, kernel_size=5, sigma=1.0)
    noise = torch.rand(second.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return {name: sliced_wasserstein_distance(first, other, directions=128)["average"]
            for name, other in (("halves", second), ("blurred", blurred), ("noise", noise))}


# --- Laplacian pyramid -------------------------------------------------------------------------

def test_laplacian_pyramid_is_finest_first_and_halves_each_level(images):
    pyramid = laplacian_pyramid(images[:4], 3)
    assert [tuple(level.shape) for level in pyramid] == [(4, 3, 32, 32), (4, 3, 16, 16),
                                                         (4, 3, 8, 8)]


def test_laplacian_pyramid_of_a_flat_image_has_empty_detail_bands():
    flat = torch.full((2, 3, 32, 32), 0.3)
    details, low_pass = laplacian_pyramid(flat, 2)
    assert details.abs().max() < 1e-6, "a flat image has no detail to keep"
    assert torch.allclose(low_pass, torch.full_like(low_pass, 0.3), atol=1e-6)


def test_laplacian_pyramid_rejects_sizes_it_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 4"):
        laplacian_pyramid(torch.zeros(1, 3, 30, 30), 3)


# --- Sliced Wasserstein distance: the known order ----------------------------------------------

def test_swd_two_halves_of_one_set_are_closer_than_a_blurred_copy(known_order):
    assert known_order["halves"] < known_order["blurred"], known_order


def test_swd_blurred_copy_is_closer_than_uniform_noise(known_order):
    assert known_order["blurred"] < known_order["noise"], known_order


def test_swd_of_a_set_with_itself_is_zero(images):
    result = sliced_wasserstein_distance(images[:50], images[:50].clone(), **QUICK)
    assert result["average"] == pytest.approx(0.0, abs=1e-6)


def test_swd_is_symmetric(images):
    forward = sliced_wasserstein_distance(images[:40], images[40:100], seed=3, **QUICK)
    backward = sliced_wasserstein_distance(images[40:100], images[:40], seed=3, **QUICK)
    assert forward["average"] == pytest.approx(backward["average"], rel=1e-5)


def test_swd_is_deterministic_for_a_seed_and_varies_with_it(images):
    a, b = images[:50], images[50:100]
    first = sliced_wasserstein_distance(a, b, seed=7, **QUICK)
    again = sliced_wasserstein_distance(a, b, seed=7, **QUICK)
    other = sliced_wasserstein_distance(a, b, seed=8, **QUICK)
    assert first == again
    assert first["average"] != other["average"]


def test_swd_levels_of_32_pixel_images_are_32_and_16(images):
    result = sliced_wasserstein_distance(images[:8], images[8:16], **QUICK)
    assert list(result["levels"]) == [32, 16]


def test_swd_levels_of_64_pixel_images_are_64_32_and_16():
    big = structured_images(16, size=64, seed=2)
    result = sliced_wasserstein_distance(big[:8], big[8:], **QUICK)
    assert list(result["levels"]) == [64, 32, 16]


def test_swd_average_is_the_mean_of_the_levels(images):
    result = sliced_wasserstein_distance(images[:20], images[20:40], **QUICK)
    levels = list(result["levels"].values())
    assert result["average"] == pytest.approx(sum(levels) / len(levels))
    assert all(value > 0 for value in levels), "different images should not score 0"


def test_swd_of_uint8_images_matches_their_float_version(images):
    as_uint8 = ((images[:30] + 1) * 127.5).round().to(torch.uint8)
    from_uint8 = sliced_wasserstein_distance(as_uint8, images[30:60], **QUICK)
    from_float = sliced_wasserstein_distance(as_uint8.float() / 127.5 - 1, images[30:60], **QUICK)
    assert from_uint8["average"] == pytest.approx(from_float["average"], rel=1e-4)


def test_swd_ignores_the_value_range_of_a_set(images):
    # each set is normalised per colour channel, so [0, 1] and [-1, 1] give the same number
    as_is = sliced_wasserstein_distance(images[:30], images[30:60], **QUICK)
    rescaled = sliced_wasserstein_distance(images[:30] * 0.5 + 0.5, images[30:60], **QUICK)
    assert rescaled["average"] == pytest.approx(as_is["average"], rel=1e-3)


@pytest.mark.parametrize("real, fake, message", [
    (torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 64, 64), "same size"),
    (torch.zeros(3, 32, 32), torch.zeros(4, 3, 32, 32), "4 dimensions"),
    (torch.zeros(4, 32, 32, 3), torch.zeros(4, 32, 32, 3), "channels-last"),
    (torch.zeros(4, 1, 32, 32), torch.zeros(4, 1, 32, 32), "3 colour channels"),
    (torch.zeros(1, 3, 32, 32), torch.zeros(4, 3, 32, 32), "at least 2"),
    (torch.zeros(4, 3, 8, 8), torch.zeros(4, 3, 8, 8), "smaller than min_resolution"),
    (torch.zeros(4, 3, 32, 32, dtype=torch.long), torch.zeros(4, 3, 32, 32), "dtype"),
    (torch.full((4, 3, 32, 32), float("nan")), torch.zeros(4, 3, 32, 32), "NaN"),
])
def test_swd_rejects_bad_inputs_with_a_plain_message(real, fake, message):
    with pytest.raises(ValueError, match=message):
        sliced_wasserstein_distance(real, fake)


# --- Nearest neighbours and memorisation -------------------------------------------------------

def test_nearest_neighbour_of_exact_copies_is_zero_at_the_right_index(images):
    picked = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:40]
    result = nearest_neighbour_distance(images[picked], images, batch_size=64)
    assert result["mean"] == 0.0 and result["min"] == 0.0
    assert torch.equal(result["indices"], picked)


def test_nearest_neighbour_of_noise_is_far(images):
    new_sample = nearest_neighbour_distance(structured_images(40, seed=5), images)
    noise = nearest_neighbour_distance(torch.rand(40, 3, 32, 32) * 2 - 1, images)
    assert noise["min"] > 2 * new_sample["mean"], (noise["min"], new_sample["mean"])


def test_nearest_neighbour_reads_training_batches_from_a_dataloader(images):
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(images, torch.zeros(300)), batch_size=64)
    result = nearest_neighbour_distance(images[[5, 250]], loader)
    assert torch.equal(result["indices"], torch.tensor([5, 250]))
    assert result["mean"] == 0.0


def test_nearest_neighbour_rejects_images_outside_minus_one_to_one(images):
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        nearest_neighbour_distance(images[:4] * 100, images)


def test_memorisation_is_flagged_for_copies_of_the_training_set(images):
    report = memorisation_report(images[:100].clone(), images)
    assert report["memorised"] is True
    assert report["near_copy_fraction"] == 1.0
    assert "memorisation" in report["explanation"].lower()


def test_memorisation_is_not_flagged_for_a_new_sample_of_the_same_kind(images):
    report = memorisation_report(structured_images(100, seed=11), images,
                                 train_holdout=structured_images(100, seed=12))
    assert report["memorised"] is False
    assert 0.8 < report["ratio"] < 1.25, report["explanation"]


def test_memorisation_without_holdout_uses_leave_one_out_on_training(images):
    report = memorisation_report(structured_images(100, seed=11), images)
    assert report["memorised"] is False
    assert report["reference_median"] > 0, "a training image must not be matched to itself"



# --- The verdict: has G learned at all? ----------------------------------------------------------

def grey_squares(n, seed=0):
    """What one quick-mode epoch draws: nearly the same flat grey image for every z."""
    g = torch.Generator().manual_seed(seed)
    return (torch.full((n, 3, 32, 32), -0.1) + 0.01 * torch.randn(n, 3, 32, 32, generator=g)).clamp(-1, 1)


def test_spread_of_real_like_images_is_large_and_of_near_copies_small(images):
    assert spread(images) > 0.2
    assert spread(grey_squares(50)) < 0.02


def test_verdict_says_g_has_not_learned_for_grey_squares_and_skips_memorisation(images):
    real, generated = images[:100], grey_squares(100)
    swd_generated = sliced_wasserstein_distance(real, generated, **QUICK)
    swd_floor = sliced_wasserstein_distance(real, images[100:200], **QUICK)
    report = memorisation_report(generated, images[200:], train_holdout=real)
    text = verdict(generated, real, swd_generated, swd_floor, report)
    assert text.startswith("G has not learned to draw faces yet")
    assert "barely differ" in text and "more epochs" in text
    assert "No sign of memorisation" not in text


def test_verdict_names_an_swd_far_above_the_floor(images):
    text = verdict(images[:100], images[100:200], 215.0, 29.0)
    assert text.startswith("G has not learned to draw faces yet: its SWD, 215.0, is 7.4 times the "
                           "real floor of 29.0")
    assert "barely differ" not in text  # these images vary as much as real ones


def test_verdict_for_a_learned_generator_gives_the_swd_and_the_memorisation_sentence(images):
    report = memorisation_report(structured_images(100, seed=11), images[100:], train_holdout=images[:100])
    text = verdict(structured_images(100, seed=11), images[:100], {"average": 23.7}, {"average": 9.0}, report)
    assert text.startswith("G has learned: its SWD, 23.7, is 2.6 times the real floor of 9.0.")
    assert text.endswith(report["explanation"])
