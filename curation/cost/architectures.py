"""The published configurations of every model a curation profile runs, built with random
weights at their real sizes (nothing is downloaded: FLOPs depend on shapes, not weights).

Each builder names the checkpoint whose `config.json` it reproduces."""
from __future__ import annotations

import torch

# facebook/sam-vit-{base,large,huge} vision encoders (SAM paper, Kirillov et al. 2023).
SAM_VISION = {
    "facebook/sam-vit-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                  mlp_dim=3072, global_attn_indexes=[2, 5, 8, 11]),
    "facebook/sam-vit-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                   mlp_dim=4096, global_attn_indexes=[5, 11, 17, 23]),
    "facebook/sam-vit-huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                                  mlp_dim=5120, global_attn_indexes=[7, 15, 23, 31]),
}


# mistralai/Mistral-7B-Instruct-v0.2 (paper A.2's LLM).
MISTRAL_7B = dict(vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768)


def mistral_7b() -> torch.nn.Module:
    from transformers import MistralConfig, MistralForCausalLM

    return MistralForCausalLM(MistralConfig(**MISTRAL_7B))


def videomae_base(num_frames: int) -> torch.nn.Module:
    """MCG-NJU/videomae-base fine-tuned as the paper A.1 undesirable-clip classifier (5 classes)."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    return VideoMAEForVideoClassification(VideoMAEConfig(num_frames=num_frames, num_labels=5))


def sam(model_id: str) -> torch.nn.Module:
    from transformers import SamConfig, SamModel

    return SamModel(SamConfig(vision_config=SAM_VISION[model_id]))


def grounding_dino_tiny() -> torch.nn.Module:
    """IDEA-Research/grounding-dino-tiny: Swin-T image backbone, BERT-base text backbone
    (transformers' GroundingDinoConfig defaults are this checkpoint's configuration)."""
    from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

    return GroundingDinoForObjectDetection(GroundingDinoConfig())


def sd2_inpaint_unet() -> torch.nn.Module:
    """stabilityai/stable-diffusion-2-inpainting UNet (9 input channels: latents, mask, masked image)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
        block_out_channels=[320, 640, 1280, 1280], attention_head_dim=[5, 10, 20, 20],
        cross_attention_dim=1024, use_linear_projection=True)


def sd2_vae() -> torch.nn.Module:
    """stabilityai/stable-diffusion-2-inpainting VAE (AutoencoderKL, 8x downsampling)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4)


def sd2_text_encoder() -> torch.nn.Module:
    """The OpenCLIP ViT-H/14 text tower SD 2 conditions on (23 layers as SD 2 uses them)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
        num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512))


def transnetv2() -> torch.nn.Module:
    """TransNetV2 as the `transnetv2-pytorch` package defines it (Soucek & Lokoc, 2020)."""
    from transnetv2_pytorch import TransNetV2

    return TransNetV2()
