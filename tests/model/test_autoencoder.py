"""Video autoencoders: shapes, clip-length rules, causality, training, the diffusers adapter."""
import pytest
import torch

from model.autoencoder import CausalVAE, DiffusersVideoVAE, VideoAutoencoder, build_autoencoder
from model.config import VAE_CONFIGS


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    return CausalVAE(VAE_CONFIGS["magvit-tiny"]).eval()


@pytest.mark.parametrize("frames,height,width", [(1, 32, 32), (5, 32, 64), (9, 64, 32), (13, 16, 24)])
def test_shapes(vae, frames, height, width):
    video = torch.rand(2, 3, frames, height, width) * 2 - 1
    z = vae.encode(video)
    assert z.shape == (2, *vae.latent_shape(frames, height, width))
    assert z.shape[2] == 1 + (frames - 1) // 4 and z.shape[3:] == (height // 8, width // 8)
    assert vae.decode(z).shape == video.shape
    assert isinstance(vae, VideoAutoencoder)


def test_clip_length_rules_name_the_problem(vae):
    assert vae.accepted_frames(17) == [1, 5, 9, 13, 17]
    with pytest.raises(ValueError, match=r"8 frames do not fit.*1 \+ 4\*k"):
        vae.encode(torch.zeros(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="width 30 must be a positive multiple of 8"):
        vae.check_clip(9, 32, 30)
    with pytest.raises(ValueError, match="height 40 must be a positive multiple of 16"):
        vae.check_clip(9, 40, 32, multiple=2)


def test_encoder_is_causal_in_time(vae):
    torch.manual_seed(1)
    video = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    changed = video.clone()
    changed[:, :, 1:] = torch.rand_like(changed[:, :, 1:]) * 2 - 1
    z, z_changed = vae.encode(video), vae.encode(changed)
    assert torch.allclose(z[:, :, 0], z_changed[:, :, 0], atol=1e-6)  # first latent frame: frame 0 only
    assert not torch.allclose(z[:, :, 1:], z_changed[:, :, 1:], atol=1e-4)
    # Changing frame 8 leaves the latent frames that end before it (0 and 1) unchanged.
    late = video.clone()
    late[:, :, 8] = 0.0
    assert torch.allclose(vae.encode(late)[:, :, :2], z[:, :, :2], atol=1e-6)


def test_decoder_is_causal_in_time(vae):
    z = torch.randn(1, 4, 3, 4, 4)
    changed = z.clone()
    changed[:, :, 2] += 1.0
    out, out_changed = vae.decode(z), vae.decode(changed)
    assert torch.allclose(out[:, :, :5], out_changed[:, :, :5], atol=1e-5)  # frames of latents 0-1
    assert not torch.allclose(out[:, :, 5:], out_changed[:, :, 5:], atol=1e-4)


def test_decoder_norm_is_conditioned_on_the_latent(vae):
    norm = vae.decoder.norm_out
    x = torch.randn(1, 8, 5, 32, 32)
    torch.nn.init.normal_(norm.scale.weight)
    a, b = norm(x, torch.randn(1, 4, 2, 4, 4)), norm(x, torch.randn(1, 4, 2, 4, 4))
    torch.nn.init.zeros_(norm.scale.weight)
    assert not torch.allclose(a, b)


@pytest.mark.slow
def test_reconstruction_error_falls_while_training_on_one_clip():
    torch.manual_seed(0)
    vae = CausalVAE(VAE_CONFIGS["magvit-tiny"])
    t = torch.linspace(0, 1, 5)[:, None, None]
    y, x = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    clip = torch.stack([torch.sin(3 * x + 2 * t), torch.cos(2 * y - t), x * y * torch.ones_like(t)])[None]
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    errors = []
    for _ in range(30):
        recon, kl = vae(clip)
        loss = (recon - clip).abs().mean() + 1e-6 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        errors.append((recon - clip).abs().mean().item())
    assert sum(errors[-5:]) / 5 < 0.5 * sum(errors[:5]) / 5


def test_diffusers_wan_adapter(tiny_checkpoints):
    wan = DiffusersVideoVAE.from_pretrained(tiny_checkpoints["wan_vae"])
    assert (wan.temporal_compression, wan.spatial_compression, wan.latent_channels) == (4, 8, 4)
    video = torch.rand(1, 3, 5, 16, 24) * 2 - 1
    z = wan.encode(video)
    assert z.shape == (1, *wan.latent_shape(5, 16, 24)) == (1, 4, 2, 2, 3)
    out = wan.decode(z)
    assert out.shape == video.shape and out.abs().max() <= 1
    with pytest.raises(ValueError, match="6 frames do not fit"):
        wan.encode(torch.zeros(1, 3, 6, 16, 16))
    assert isinstance(build_autoencoder("diffusers", spec=tiny_checkpoints["wan_vae"]), DiffusersVideoVAE)
