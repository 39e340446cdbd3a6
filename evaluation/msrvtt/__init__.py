"""MSRVTT-Personalization: the benchmark of *Multi-subject Open-set Personalization in Video
Generation* (VideoAlchemy, CVPR 2025, arXiv:2501.06187), section 4.1.

  layout     the per-sample folder the authors' release uses, and how we read it back
  importer   the release's annotation records + MSR-VTT videos -> that layout
  builder    MSR-VTT-style videos + captions -> that layout, through the curation stages
  review     a static HTML page to keep or drop samples by the paper's four criteria
  modes      the conditioning lists of each evaluation mode
  metrics    the arithmetic of Text-S, Vid-S, Subj-S, Face-S and Dync-D
  scorers    the models behind the metrics (CLIP, GroundingDINO + SAM + DINO, faces, flow)
  evaluator  score a folder of generated videos: per-video JSON, resumable, leaderboard
  generate   run our sampler over a mode's lists into the evaluator's layout
"""
