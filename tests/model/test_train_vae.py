"""`alchemist train-vae` on a folder of small generated videos, and the folder reader."""
import numpy as np
import pytest
import torch

from model.checkpoint import load_vae
from model.cli import main
from model.config import VAE_CONFIGS
from model.video_io import VideoFolderClips, write_mp4


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "sub").mkdir()
    rng = np.random.default_rng(0)
    for name, frames in (("a.mp4", 12), ("sub/b.mp4", 7), ("short.mp4", 3)):
        ramp = np.linspace(0, 255, frames, dtype=np.uint8)[:, None, None, None]
        video = np.clip(rng.integers(0, 60, (frames, 36, 44, 3)) + ramp, 0, 255).astype(np.uint8)
        write_mp4(video, root / name)
    (root / "notes.txt").write_text("not a video")
    return root


def test_folder_reader_yields_resized_clips(videos):
    clips = VideoFolderClips(videos, frames=5, height=16, width=24, seed=0)
    assert len(clips.paths) == 3
    batch = [clip for clip, _ in zip(clips, range(6))]
    for clip in batch:
        assert clip.shape == (3, 5, 16, 24)
        assert clip.min() >= -1 and clip.max() <= 1
    assert any(not torch.equal(batch[0], c) for c in batch[1:])  # random starts and videos
    with pytest.raises(ValueError, match="shorter than 20 frames"):
        next(iter(VideoFolderClips(videos, frames=20, height=16, width=24)))


def test_train_vae_writes_a_loadable_checkpoint(videos, tmp_path, capsys):
    out = tmp_path / "vae.pt"
    rc = main(["train-vae", "--videos", str(videos), "--out", str(out), "--frames", "5",
               "--size", "16x16", "--steps", "3", "--batch-size", "2", "--lr", "1e-3", "--log-every", "1"])
    assert rc == 0
    log = capsys.readouterr().out
    assert "step 3 rec=" in log and "kl=" in log
    vae = load_vae(out)
    assert vae.cfg == VAE_CONFIGS["magvit-tiny"]
    assert vae.encode(torch.zeros(1, 3, 5, 16, 16)).shape == (1, 4, 2, 2, 2)


def test_train_vae_rejects_clip_sizes_the_autoencoder_cannot_take(videos, tmp_path):
    with pytest.raises(ValueError, match="6 frames do not fit"):
        main(["train-vae", "--videos", str(videos), "--out", str(tmp_path / "x.pt"),
              "--frames", "6", "--size", "16x16", "--steps", "1"])


def test_perceptual_loss_reaches_the_decoder(tiny_checkpoints):
    from model.autoencoder import CausalVAE
    from model.encoders import ImageEncoder, ImageEncoderConfig
    from model.train_vae import perceptual_loss, vae_loss

    encoder = ImageEncoder(ImageEncoderConfig(kind="dinov2", spec=tiny_checkpoints["dinov2"], image_size=28))
    torch.manual_seed(0)
    vae = CausalVAE(VAE_CONFIGS["magvit-tiny"])
    clip = torch.rand(1, 3, 1, 16, 16) * 2 - 1
    losses = vae_loss(vae, clip, kl_weight=0.0, perceptual=encoder, perceptual_weight=1.0)
    assert losses["perceptual"] > 0
    recon, _ = vae(clip)
    grad = torch.autograd.grad(perceptual_loss(encoder, recon, clip), vae.decoder.conv_out.conv.weight)[0]
    assert grad.abs().sum() > 0
    assert perceptual_loss(encoder, clip, clip) == 0
    assert all(not p.requires_grad for p in encoder.parameters())
