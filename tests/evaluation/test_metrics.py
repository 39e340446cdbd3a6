"""Each metric's arithmetic on stubbed model outputs, against answers worked out by hand."""
import numpy as np
import pytest

from evaluation.msrvtt import metrics


def test_identical_embeddings_score_one_and_orthogonal_zero():
    e = np.array([[1.0, 2.0, 3.0]])
    score, per_frame = metrics.text_similarity(np.repeat(e, 4, 0), e[0] * 5)
    assert score == pytest.approx(1.0) and per_frame == pytest.approx([1.0] * 4)
    score, _ = metrics.text_similarity(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 0.0]))
    assert score == pytest.approx(0.5)  # frames at cos 1 and 0: raw mean, no x100


def test_text_similarity_is_raw_cosine_not_clamped():
    score, _ = metrics.text_similarity(np.array([[-1.0, 0.0]]), np.array([1.0, 0.0]))
    assert score == pytest.approx(-1.0)


def test_video_similarity_averages_all_frame_pairs():
    gen = np.array([[1.0, 0.0], [0.0, 1.0]])
    gt = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # pairs: row 1 -> 1, 1, 1/sqrt2 ; row 2 -> 0, 0, 1/sqrt2 ; mean of 6
    expected = (1 + 1 + 2 ** -0.5 + 0 + 0 + 2 ** -0.5) / 6
    assert metrics.video_similarity(gen, gt) == pytest.approx(expected)
    # not the mean of a diagonal, not a frame-averaged embedding
    assert expected != pytest.approx((1 + 0) / 2)


def test_word_box_scores_mean_of_max_and_mean_token_probability():
    p = np.array([[0.9, 0.5, 0.2]])  # one box, three tokens
    logits = np.log(p / (1 - p))
    scores = metrics.word_box_scores(logits, [[0, 1], [2]])
    assert scores[0, 0] == pytest.approx((0.9 + 0.7) / 2)
    assert scores[0, 1] == pytest.approx(0.2)


def test_each_box_serves_its_best_word_and_words_below_threshold_are_not_found():
    scores = np.array([[0.8, 0.5],   # box 0: word 0
                       [0.6, 0.45],  # box 1: word 0 too (worse than box 0)
                       [0.3, 0.35]])  # box 2: word 1, but 0.35 < 0.4
    assert metrics.best_box_per_word(scores, 0.4) == [0, None]
    # word 1's higher score on box 0 does not count: box 0 belongs to word 0
    assert metrics.best_box_per_word(scores, 0.3) == [0, 2]
    assert metrics.best_box_per_word(np.array([[0.4, 0.1]]), 0.4) == [None, None]  # must exceed


def test_word_not_found_contributes_zero():
    # 2 frames x 2 words; the second word missing in frame 2
    assert metrics.subject_video_score([[0.8, 0.6], [0.4, None]]) == pytest.approx((0.8 + 0.6 + 0.4) / 4)
    assert metrics.subject_video_score([[None], [None]]) == 0.0


def test_mask_failing_the_box_check_is_discarded():
    mask = np.ones((100, 100), bool)
    assert metrics.mask_fits_box(mask, (10, 10, 50, 60))
    assert metrics.mask_fits_box(mask, (60, 10, 103, 50))  # 3 px off the frame: tolerated
    assert not metrics.mask_fits_box(mask, (60, 10, 104, 50))  # 4 px off the right side
    assert not metrics.mask_fits_box(mask, (10, -5, 50, 40))  # 5 px above the frame


def test_white_padding_crop_geometry():
    frame = np.zeros((50, 80, 3), np.uint8)
    frame[...] = (10, 20, 30)
    mask = np.zeros((50, 80), bool)
    mask[10:20, 20:60] = True  # box 40 wide, 10 high, fully masked
    mask[15, 30] = False  # one hole: white
    crop = metrics.white_square_crop(frame, mask, (20, 10, 60, 20))
    assert crop.shape == (40, 40, 3)
    top = (40 - 10) // 2
    assert (crop[:top] == 255).all() and (crop[top + 10:] == 255).all()  # white bands, centred
    assert (crop[top:top + 10, 0] == (10, 20, 30)).all()
    assert (crop[top + 5, 10] == 255).all()  # the hole, at (15 - 10, 30 - 20)


def test_face_box_extension_up_17_down_3_percent_clipped():
    assert metrics.extend_face_box((10, 100, 60, 200), 480, 640) == (10, 83, 60, 203)
    assert metrics.extend_face_box((10, 5, 60, 105), 104, 640) == (10, 0, 60, 104)


def test_face_score_counts_missing_faces_as_zero():
    assert metrics.face_video_score([0.9, None, 0.3, None]) == pytest.approx(0.3)


# --- dynamic degree ------------------------------------------------------------------------------


def uniform_flow(dx: float, h: int = 64, w: int = 64) -> np.ndarray:
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0] = dx
    return flow


def test_threshold_and_interval_follow_vbench():
    assert metrics.flow_threshold(256, 512) == pytest.approx(6.0)
    assert metrics.flow_threshold(128, 200) == pytest.approx(3.0)
    assert metrics.flow_interval(24) == 3 and metrics.flow_interval(30) == 4 and metrics.flow_interval(5) == 1


def test_pair_score_is_the_top_five_percent_mean():
    flow = np.zeros((10, 20, 2), np.float32)  # 200 vectors: top 5% = 10
    flow.reshape(-1, 2)[:10, 1] = 4.0
    flow.reshape(-1, 2)[10:20, 1] = 1.0
    assert metrics.pair_flow_score(flow) == pytest.approx(4.0)


@pytest.mark.parametrize("dx, dynamic", [(3.01, True), (2.99, False)])
def test_rule_just_above_and_below_threshold(dx, dynamic):
    threshold = metrics.flow_threshold(128, 128)  # 3.0 px
    scores = [metrics.pair_flow_score(uniform_flow(dx)) for _ in range(15)]
    assert metrics.is_dynamic(scores, 16, threshold) is dynamic


def test_rule_at_the_pair_count_boundary():
    # 16 frames -> round(16 / 4) = 4 moving pairs needed
    assert metrics.required_pairs(16) == 4
    assert metrics.is_dynamic([5.0] * 4 + [0.0] * 11, 16, 3.0)
    assert not metrics.is_dynamic([5.0] * 3 + [0.0] * 12, 16, 3.0)
    # Python's round: 10 frames -> round(2.5) = 2 pairs; 6 frames -> round(1.5) = 2
    assert metrics.required_pairs(10) == 2 and metrics.required_pairs(6) == 2
    assert metrics.is_dynamic([5.0, 5.0, 0.0], 10, 3.0) and not metrics.is_dynamic([5.0, 0.0, 0.0], 10, 3.0)
    # 1 frame -> 0 needed but no pair to walk: not dynamic; 2 frames -> round(0.5) = 0: dynamic
    assert not metrics.is_dynamic([], 1, 3.0)
    assert metrics.is_dynamic([0.0], 2, 3.0)


@pytest.mark.parametrize("shift, dynamic", [(5, True), (1, False)])
def test_videos_shifting_by_known_pixels_per_frame(shift, dynamic):
    """A textured frame translated by `shift` px per (subsampled) frame: Farneback recovers the
    shift, and 128-px frames have a 3-px threshold."""
    from evaluation.msrvtt.evaluator import dynamic_degree
    from evaluation.msrvtt.scorers import FarnebackFlow

    rng = np.random.default_rng(0)
    import cv2

    base = cv2.GaussianBlur(rng.integers(0, 255, (128, 400, 3), np.uint8), (0, 0), 2.0)
    frames = np.stack([base[:, 100 - i * shift:228 - i * shift] for i in range(9)])  # 8 fps input
    result = dynamic_degree(frames, 8.0, FarnebackFlow())
    assert result["interval"] == 1 and result["frames"] == 9 and result["threshold"] == pytest.approx(3.0)
    assert np.median(result["pair_scores"]) == pytest.approx(shift, abs=0.5)
    assert result["dynamic"] is dynamic
