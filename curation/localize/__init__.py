"""Localization for the grounding stage (paper 3.1): boxes for entity words, masks for boxes.

  grounding_dino  GroundingDINO wrapper, prompt building and token-to-word post-processing
  sam             SAM wrapper: one image embedding per frame shared by all of its boxes
  offline         classical stand-ins (face-anchored human box, motion box, GrabCut)
  segments        boxes, masks and the RGBA reference encoding
  tiny            tiny random GroundingDINO / SAM checkpoints for tests and benchmarks
"""
