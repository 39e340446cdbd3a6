"""Read an input manifest (videos + captions) into typed input rows, streaming.

One reader for every way a video-caption corpus arrives:

  CSV / TSV / JSONL / Parquet   columns `video` and `caption`, optional `start`, `end`, `id`
                                (aliases: video <- video_path, path, filepath, file, url,
                                video_url; caption <- text; id <- video_id, key); times as
                                seconds or "HH:MM:SS.mmm"
  Panda-70M metadata CSV        `videoID, url, timestamp, caption, ...` where `timestamp` and
                                `caption` are Python-literal lists, one entry per clip; the
                                video is the `video`/`path` column or `<videoID>.mp4` in
                                `video_dir` (default: the manifest's folder)
  video2dataset output folder   the `files` layout: `00000/000000000.mp4` + `.txt` caption +
                                `.json` (key, url, ...)

Every format becomes rows of `SCHEMA`. Captions stay raw bytes: decoding them is the ingest
stage's job, so a non-UTF-8 caption becomes a rejection, not a crash. A row the reader cannot
make sense of (an unparsable time, captions that do not match the timestamps) is kept with
`problem` / `problem_detail` set, and ingest rejects it with that reason. Only problems with
the manifest as a whole (missing file, unknown format, no `video` column) raise
`ManifestError`, with one line naming the fix.
"""
from __future__ import annotations

from curation.manifest.reader import FORMATS, detect_format, iter_manifest_batches, read_manifest
from curation.manifest.rows import ROWS_PER_BATCH, SCHEMA, SEGMENT, ManifestError, parse_time

__all__ = ["FORMATS", "ROWS_PER_BATCH", "SCHEMA", "SEGMENT", "ManifestError", "detect_format",
           "iter_manifest_batches", "parse_time", "read_manifest"]
