"""Presets: the paper's DiT and autoencoder are built on the meta device and checked."""
import pytest
import torch

from model.autoencoder import CausalVAE, count_parameters
from model.config import DIT_CONFIGS, VAE_CONFIGS, DiTConfig, VAEConfig, dit_config
from model.dit import DiT, expected_parameter_count


def test_paper_dit_has_about_ten_billion_parameters():
    cfg = DIT_CONFIGS["dit-paper"]
    assert (cfg.depth, cfg.width, cfg.heads, cfg.cond_width) == (32, 4096, 128, 1024)
    with torch.device("meta"):
        model = DiT(cfg)
    n = count_parameters(model)
    assert n == expected_parameter_count(cfg)
    assert 9e9 < n < 12e9


def test_paper_dit_forward_shapes_on_meta(make_cond):
    with torch.device("meta"):
        model = DiT(DIT_CONFIGS["dit-paper"])
        cond = make_cond(batch=1, refs=2, tokens=256, text_len=8, cfg=model.cfg).to("meta")
        x = torch.empty(1, 32, 3, 18, 32)  # 17 frames at 512x288 through the paper autoencoder
        v = model(x, torch.empty(1), cond)
    assert v.shape == x.shape


@pytest.mark.parametrize("name", sorted(DIT_CONFIGS))
def test_every_preset_counts_match_closed_form(name):
    with torch.device("meta"):
        model = DiT(DIT_CONFIGS[name])
    assert count_parameters(model) == expected_parameter_count(DIT_CONFIGS[name])


def test_paper_autoencoder_compression_and_latent_shape():
    with torch.device("meta"):
        vae = CausalVAE(VAE_CONFIGS["magvit-paper"])
        z = vae.encode(torch.empty(1, 3, 17, 288, 512))
        video = vae.decode(z)
    assert (vae.temporal_compression, vae.spatial_compression) == (8, 16)
    assert z.shape == (1, 32, 3, 18, 32)
    assert video.shape == (1, 3, 17, 288, 512)
    assert [f for f in (17, 49, 73, 97, 121, 145, 193, 289, 385) if vae.accepts_frames(f)] == [
        17, 49, 73, 97, 121, 145, 193, 289, 385]  # every length of paper Table 7
    assert not vae.accepts_frames(16) and not vae.accepts_frames(48)


def test_config_round_trip_and_validation():
    cfg = dit_config("dit-tiny", binding="none")
    assert DiTConfig.from_dict(cfg.to_dict()) == cfg
    assert VAEConfig.from_dict(VAE_CONFIGS["magvit-tiny"].to_dict()) == VAE_CONFIGS["magvit-tiny"]
    with pytest.raises(ValueError, match="binding"):
        dit_config("dit-tiny", binding="image")
    with pytest.raises(KeyError, match="unknown DiT preset"):
        dit_config("dit-huge")
