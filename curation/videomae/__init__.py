"""The VideoMAE undesirable-clip classifier (paper A.1): classes, clip reading, training
(`alchemist train-filter`), label sheets (`alchemist label-sample`) and tiny checkpoints.
The pipeline stage that runs it is `curation/stages/videomae.py`."""
