"""The models behind the metrics, each loaded through `from_pretrained` from a hub id or a local
directory (model.model_registry), batched over many frames, placed on the GPU when there is one.

  ClipEmbedder      CLIP ViT-L/14 image and text embeddings (Text-S, Vid-S)
  SubjectLocator    GroundingDINO Swin-T boxes with the release's word scores + SAM masks
  DinoEmbedder      DINO ViT-B/16 CLS embeddings of white-background square crops (Subj-S)
  FaceIdentity      faces and identity embeddings (Face-S): YOLOv9-face + ArcFace R100 ONNX
                    when given, else MTCNN + dlib's ResNet identity model (both ship in packages)
  flow estimators   RAFT (torchvision, 20 iterations) when weights are given, else OpenCV
                    Farneback (Dync-D)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from evaluation.msrvtt import metrics

CLIP_MODEL = "openai/clip-vit-large-patch14"  # paper 4.1
GROUNDING_MODEL = "IDEA-Research/grounding-dino-tiny"  # GroundingDINO Swin-T (OGC)
SAM_MODEL = "facebook/sam-vit-base"  # the release uses SAM ViT-B
DINO_MODEL = "facebook/dino-vitb16"  # paper 4.1: DINO ViT-B/16
RAFT_ITERATIONS = 20  # VBench
ARCFACE_SIZE = 112  # ArcFace input side
RAFT_MIN_SIDE = 128  # torchvision RAFT: 8x downsampling, then a 4-level pyramid of >= 2 px


def _torch():
    import torch

    return torch


def _chunks(items: Sequence, size: int):
    for i in range(0, len(items), max(1, size)):
        yield items[i:i + size]


def _features(output) -> "object":
    """transformers returns a tensor or an output object depending on the version."""
    return output if hasattr(output, "shape") else output.pooler_output


class ClipEmbedder:
    def __init__(self, spec: str = CLIP_MODEL, device: str = "auto", images_per_forward: int = 32):
        from transformers import AutoProcessor, CLIPModel

        from model import model_registry

        self.device = model_registry.device(device)
        self.processor = model_registry.load(AutoProcessor, spec)
        self.model = model_registry.load(CLIPModel, spec, device=self.device)
        self.id = f"clip:{model_registry.parse(spec).id}"
        self.images_per_forward = images_per_forward

    def images(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        torch, out = _torch(), []
        for chunk in _chunks(list(frames), self.images_per_forward):
            inputs = self.processor(images=list(chunk), return_tensors="pt")
            with torch.inference_mode():
                feats = _features(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device)))
            out.append(feats.float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.projection_dim))

    def texts(self, prompts: Sequence[str]) -> np.ndarray:
        torch = _torch()
        inputs = self.processor(text=list(prompts), return_tensors="pt", padding=True, truncation=True,
                                max_length=self.model.config.text_config.max_position_embeddings)
        with torch.inference_mode():
            feats = _features(self.model.get_text_features(
                input_ids=inputs["input_ids"].to(self.device), attention_mask=inputs["attention_mask"].to(self.device)))
        return feats.float().cpu().numpy()


class DinoEmbedder:
    """CLS embedding of a white-background square crop, resized bicubic, ImageNet-normalised."""

    def __init__(self, spec: str = DINO_MODEL, device: str = "auto", images_per_forward: int = 32):
        from transformers import ViTModel

        from model import model_registry

        self.device = model_registry.device(device)
        self.model = model_registry.load(ViTModel, spec, device=self.device, add_pooling_layer=False)
        self.size = int(self.model.config.image_size)  # 224 for DINO ViT-B/16
        self.id = f"dino:{model_registry.parse(spec).id}"
        self.images_per_forward = images_per_forward

    def preprocess(self, square_rgb: np.ndarray) -> np.ndarray:
        from PIL import Image

        img = Image.fromarray(square_rgb).resize((self.size, self.size), Image.Resampling.BICUBIC)
        x = np.asarray(img, np.float32) / 255.0
        x = (x - np.array(metrics.IMAGENET_MEAN, np.float32)) / np.array(metrics.IMAGENET_STD, np.float32)
        return x.transpose(2, 0, 1)  # (3, S, S)

    def __call__(self, squares: Sequence[np.ndarray]) -> np.ndarray:
        torch, out = _torch(), []
        for chunk in _chunks(list(squares), self.images_per_forward):
            pixels = torch.from_numpy(np.stack([self.preprocess(s) for s in chunk])).to(self.device)
            with torch.inference_mode():
                hidden = self.model(pixel_values=pixels).last_hidden_state  # (B, N, D)
            out.append(hidden[:, 0].float().cpu().numpy())  # CLS token
        return np.concatenate(out) if out else np.zeros((0, self.model.config.hidden_size))


def rgba_to_white_square(rgba: np.ndarray) -> np.ndarray:
    """A reference PNG as the metric sees it: transparent pixels white, padded to a square."""
    h, w = rgba.shape[:2]
    mask = rgba[..., 3] > 0 if rgba.shape[2] == 4 else np.ones((h, w), bool)
    return metrics.white_square_crop(rgba[..., :3], mask, (0, 0, w, h))


# --- GroundingDINO + SAM --------------------------------------------------------------------------


@dataclass
class Found:
    word: str
    box: tuple[float, float, float, float] | None  # frame pixels; None: not found
    score: float  # the release's word score of the chosen box (0 when no box)
    mask: np.ndarray | None = None  # frame-sized bool
    mask_valid: bool = False


def release_prompt(words: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Words joined by " . " (the release's prompt) and each word's character span."""
    from curation.localize.grounding_dino import phrase

    text, spans = "", []
    for i, word in enumerate(words):
        p = phrase(word)
        if i:
            text += " . "
        spans.append((len(text), len(text) + len(p)))
        text += p
    return text + " .", spans


class SubjectLocator:
    def __init__(self, grounding: str = GROUNDING_MODEL, sam: str = SAM_MODEL, device: str = "auto",
                 box_threshold: float = metrics.BOX_THRESHOLD, images_per_forward: int = 8):
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        from model import model_registry
        from curation.localize.sam import Sam

        self.device = model_registry.device(device)
        self.processor = model_registry.load(AutoProcessor, grounding)
        self.model = model_registry.load(GroundingDinoForObjectDetection, grounding, device=self.device)
        self.sam = Sam(sam, device=device, images_per_forward=images_per_forward, dtype=_torch().float32)
        self.id = f"grounding_dino:{model_registry.parse(grounding).id}+{self.sam.id}"
        self.box_threshold, self.images_per_forward = box_threshold, images_per_forward

    def locate(self, frames: Sequence[np.ndarray], words: Sequence[Sequence[str]]) -> list[list[Found]]:
        """For frame i and each of words[i]: the chosen box (or None) and its SAM mask."""
        found: list[list[Found]] = [[] for _ in frames]
        order = sorted(range(len(frames)), key=lambda i: frames[i].shape[:2])  # same size per forward
        for chunk in _chunks(order, self.images_per_forward):
            for i, result in zip(chunk, self._detect([frames[i] for i in chunk], [words[i] for i in chunk])):
                found[i] = result
        boxes = [[f.box for f in fs if f.box is not None] for fs in found]
        masks = self.sam.segment(list(frames), boxes)
        for fs, ms in zip(found, masks):
            for f, (mask, _) in zip([f for f in fs if f.box is not None], ms):
                f.mask, f.mask_valid = mask, metrics.mask_fits_box(mask, f.box)
        return found

    def _detect(self, frames, words) -> list[list[Found]]:
        from curation.localize.grounding_dino import cxcywh_to_xyxy, run_detector, token_groups

        prompts = [release_prompt(ws) for ws in words]
        inputs = self.processor(images=list(frames), text=[p for p, _ in prompts], padding="longest",
                                return_offsets_mapping=True, return_tensors="pt")
        offsets = inputs.pop("offset_mapping").tolist()
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        logits, boxes = run_detector(self.model, inputs)  # (B, Q, T), (B, Q, 4) normalised cxcywh
        results = []
        for b, (ws, (_, spans)) in enumerate(zip(words, prompts)):
            h, w = frames[b].shape[:2]
            scores = metrics.word_box_scores(logits[b], token_groups(offsets[b], spans))
            xyxy = cxcywh_to_xyxy(boxes[b].astype(np.float64), w, h)
            chosen = metrics.best_box_per_word(scores, self.box_threshold)
            results.append([Found(word, tuple(map(float, xyxy[q])) if q is not None else None,
                                  float(scores[q, k]) if q is not None else 0.0)
                            for k, (word, q) in enumerate(zip(ws, chosen))])
        return results


# --- faces ----------------------------------------------------------------------------------------


class FaceIdentity:
    """Detect the first face of a frame and embed identities.

    `detector`: a YOLO face ONNX path (conf 0.2, IoU 0.4) or "" for MTCNN; `embedder`: an
    ArcFace R100 ONNX path or "" for dlib's ResNet face-recognition model.
    """

    def __init__(self, detector: str = "", embedder: str = "", arcface_net=None):
        from curation.faces.detect import make_detector

        self.detector = (make_detector("yolo", weights=detector, conf=0.2, iou=0.4) if detector
                         else make_detector("mtcnn"))
        if embedder or arcface_net is not None:
            from curation.faces.detect import resolve_weights

            self._arcface = arcface_net if arcface_net is not None else cv2.dnn.readNetFromONNX(resolve_weights(embedder))
            self.embed_id = f"arcface:{embedder or 'net'}"
        else:
            import dlib
            import face_recognition_models as frm

            self._arcface = None
            self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
            self._resnet = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
            self.embed_id = "dlib:dlib_face_recognition_resnet_model_v1"
        self.id = f"{self.detector.id}+{self.embed_id}"

    def first_face(self, frame: np.ndarray) -> tuple[int, int, int, int] | None:
        faces = self.detector(frame)
        if not faces:
            return None
        h, w = frame.shape[:2]
        return metrics.extend_face_box(faces[0].box_xyxy, h, w)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not crops:
            return np.zeros((0, 128 if self._arcface is None else 512))
        if self._arcface is not None:
            blob = cv2.dnn.blobFromImages([np.ascontiguousarray(c[..., :3]) for c in crops], 1 / 127.5,
                                          (ARCFACE_SIZE, ARCFACE_SIZE), (127.5, 127.5, 127.5), swapRB=False)
            self._arcface.setInput(blob)
            return np.asarray(self._arcface.forward(), np.float64).reshape(len(crops), -1)
        return np.stack([self._dlib(c) for c in crops])

    def _dlib(self, crop: np.ndarray) -> np.ndarray:
        import dlib

        rgb = np.ascontiguousarray(crop[..., :3])
        h, w = rgb.shape[:2]
        shape = self._shape(rgb, dlib.rectangle(0, 0, w - 1, h - 1))
        return np.asarray(self._resnet.compute_face_descriptor(rgb, shape), np.float64)


# --- optical flow ---------------------------------------------------------------------------------


class FarnebackFlow:
    """OpenCV dense flow: the offline stand-in for RAFT (reported as such)."""

    id = "opencv:farneback"

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
        # OpenCV's documented example parameters; 5 levels follow shifts of tens of pixels
        return [cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=5, winsize=15,
                                             iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
                for a, b in zip(gray[:-1], gray[1:])]


class RaftFlow:
    """torchvision RAFT with a local state dict (e.g. raft-things), 20 refinement iterations."""

    def __init__(self, weights: str, arch: str = "large", device: str = "auto"):
        import torch
        from torchvision.models.optical_flow import raft_large, raft_small

        from model import model_registry

        self.device = model_registry.device(device)
        path = model_registry.resolve(weights).location
        self.model = {"large": raft_large, "small": raft_small}[arch](weights=None)
        self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.model.to(self.device).eval()
        self.id = f"raft_{arch}:{weights}"

    def __call__(self, frames: np.ndarray) -> list[np.ndarray]:
        torch = _torch()
        if len(frames) < 2:
            return []
        h, w = frames.shape[1:3]
        # RAFT needs sides divisible by 8 and at least 128 px (its correlation pyramid):
        # replicate-pad, then crop the flow back to the frame
        ph, pw = max(RAFT_MIN_SIDE - h, -h % 8), max(RAFT_MIN_SIDE - w, -w % 8)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate").to(self.device)
        with torch.inference_mode():
            flows = self.model(x[:-1], x[1:], num_flow_updates=RAFT_ITERATIONS)[-1]  # (P, 2, H', W')
        return list(flows[:, :, :h, :w].permute(0, 2, 3, 1).float().cpu().numpy())
