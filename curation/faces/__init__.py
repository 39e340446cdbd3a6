"""Face detection and face crops for human references (paper 3.1)."""
from curation.faces.detect import DEFAULT_MIN_SCORE, Face, detect_faces, get_detector, make_detector

__all__ = ["DEFAULT_MIN_SCORE", "Face", "detect_faces", "get_detector", "make_detector"]
