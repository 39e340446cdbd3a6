"""The toys' measurement on known videos, and a short smoke run through our trainer."""
import numpy as np
import pytest
import torch

from model.video_io import to_tensor
from training.toy import PALETTE, colour_scores, core_colour, draw_clip, render, sprite_masks


def test_core_colour_reads_a_rendered_sprite_and_ignores_soft_edges():
    import random

    sprites, jitter = draw_clip(random.Random(0), binding=True)
    video = to_tensor(render(sprites, jitter))  # (3, F, H, W) in [-1, 1]
    masks = sprite_masks(sprites, jitter)
    follow, error, _ = colour_scores(video[None].repeat(2, 1, 1, 1, 1), masks, [s.colour for s in sprites])
    assert follow.all() and error.max() < 0.01
    # Soft edges: blur the frame; the core still reads the colour, the whole area does not.
    soft = torch.nn.functional.avg_pool2d(video.transpose(0, 1), 3, stride=1, padding=1,
                                          count_include_pad=False).transpose(0, 1)
    wanted = np.array(PALETTE[sprites[0].colour]) / 127.5 - 1
    core = np.linalg.norm(core_colour(soft, masks[0]) - wanted)
    whole = np.linalg.norm(soft[:, masks[0]].mean(dim=1).numpy() - wanted)
    assert core < whole


def test_core_colour_follows_a_sprite_that_jitters_differently_from_the_held_out_clip():
    """A generated sprite jitters on its own: read one frame-shifted by 1 px against the held-out
    clip's mask, the colour is still exact (a fixed-mask core would read background)."""
    import random

    sprites, jitter = draw_clip(random.Random(1), binding=True)
    shifted = [j + 1 if j < 1 else j - 1 for j in jitter]  # every frame 1 px off
    video = to_tensor(render(sprites, shifted))
    follow, error, _ = colour_scores(video[None].repeat(2, 1, 1, 1, 1), sprite_masks(sprites, jitter),
                                     [s.colour for s in sprites])
    assert follow.all() and error.max() < 0.01


@pytest.mark.slow
def test_toy_smoke_run_trains_and_references_reach_the_output(tmp_path):
    from training.toy import run_toy

    report = run_toy(tmp_path, two_subjects=False, steps=3, clips=8, heldout=4)
    assert report["trained"]["matched"]["colour_error"] != report["trained"]["swapped"]["colour_error"]
    assert np.isfinite(report["final_loss"]) and 0.0 <= report["untrained"]["matched"]["follow_rate"] <= 1.0
    assert (tmp_path / "run" / "checkpoints" / "latest").exists()


def test_binding_references_do_not_show_their_sprites_shape(tmp_path):
    """Only the word binding may say which reference belongs to which sprite: every reference's
    alpha (its shape) is the same for the square and the bar."""
    from curation import warehouse
    from training.samples import rgba
    from training.toy import write_toy_dataset

    root, _ = write_toy_dataset(tmp_path / "toy", 4, 0, binding=True)
    refs = warehouse.read_table(root, "references").to_pylist()
    assert {r["word"] for r in refs} == {"square", "bar"}
    alphas = {r["word"]: rgba(r["rgba_png"])[3].numpy().tobytes() for r in refs}
    assert alphas["square"] == alphas["bar"]
