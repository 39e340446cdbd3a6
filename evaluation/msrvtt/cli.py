"""`alchemist bench build|import|review|generate|eval` (registered by curation.cli)."""
from __future__ import annotations

import json
from pathlib import Path

from curation.errors import OperatorError
from evaluation.msrvtt import scorers


def _build(args) -> int:
    from evaluation.msrvtt.builder import build

    report = build(Path(args.manifest), Path(args.out), args.profile, args.config,
                   Path(args.keep) if args.keep else None, use_ray=args.ray)
    print(json.dumps({k: v for k, v in report.items() if k != "clips"}, indent=1))
    return 0


def _import(args) -> int:
    from curation.background.inpaint import make_inpainter
    from evaluation.msrvtt.importer import import_release
    from evaluation.msrvtt.modes import write_modes

    inpainter = make_inpainter("sd", model=args.sd_model) if args.sd_model else None
    report = import_release(Path(args.annotations), Path(args.videos), Path(args.out), inpainter)
    report["modes"] = write_modes(Path(args.out))
    print(json.dumps(report, indent=1))
    return 0 if not report["rejected"] else 1


def _review(args) -> int:
    from evaluation.msrvtt.review import write_review

    print(f"wrote {write_review(Path(args.benchmark), Path(args.out) if args.out else None)}")
    return 0


def _generate(args) -> int:
    from evaluation.msrvtt.generate import GenerateSettings, generate_mode
    from model.sample_cli import SampleError, parse_size

    try:
        width, height = parse_size(args.size)
    except SampleError as e:
        raise OperatorError(str(e)) from None
    settings = GenerateSettings(args.frames, width, height, args.steps, args.seed, args.batch_size, args.device)
    print(json.dumps(generate_mode(Path(args.checkpoint), Path(args.benchmark), args.mode, Path(args.out), settings)))
    return 0


def parse_shard(value: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in value.split("/"))
    except ValueError:
        raise OperatorError(f"--shard {value!r} is not I/N, e.g. 0/4") from None
    if not 0 <= index < count:
        raise OperatorError(f"--shard {value}: I must be in [0, N)")
    return index, count


def _eval(args) -> int:
    from evaluation.msrvtt import leaderboard
    from evaluation.msrvtt.evaluator import EvalSettings, evaluate, evaluate_on_ray

    settings = EvalSettings(args.clip, args.grounding_dino, args.sam, args.dino, args.face_detector,
                            args.face_embedder, args.raft, args.raft_arch, args.box_threshold,
                            args.batch_size, args.device, parse_shard(args.shard))
    where = (Path(args.benchmark), Path(args.videos), args.mode, Path(args.out), settings)
    if args.ray_workers:
        row = evaluate_on_ray(*where, args.ray_workers, args.gpus_per_worker, args.name, args.ray_address)
    else:
        row = evaluate(*where, args.name)
    print(leaderboard.to_markdown(row))
    print(f"leaderboard: {Path(args.out) / 'leaderboard.md'} and leaderboard.json")
    return 0


def _add_eval_args(p) -> None:
    p.add_argument("--benchmark", required=True, help="folder written by bench build / bench import")
    p.add_argument("--videos", required=True, help="folder of <sample>.mp4 (bench generate's output)")
    p.add_argument("--mode", required=True, help="subject | face | multi_subject | subject_background")
    p.add_argument("--out", required=True, help="folder for per-video JSON, caches and the leaderboard")
    p.add_argument("--name", help="the model's name in the leaderboard (default: the videos folder)")
    p.add_argument("--clip", default=scorers.CLIP_MODEL)
    p.add_argument("--grounding-dino", default=scorers.GROUNDING_MODEL)
    p.add_argument("--sam", default=scorers.SAM_MODEL)
    p.add_argument("--dino", default=scorers.DINO_MODEL)
    p.add_argument("--face-detector", default="", help="YOLOv9-face ONNX (default: shipped MTCNN)")
    p.add_argument("--face-embedder", default="", help="ArcFace R100 ONNX (default: shipped dlib model)")
    p.add_argument("--raft", default="", help="RAFT state dict (default: OpenCV Farneback flow)")
    p.add_argument("--raft-arch", default="large", choices=["large", "small"])
    p.add_argument("--box-threshold", type=float, default=0.4)
    p.add_argument("--batch-size", type=int, default=8, help="videos per batch")
    p.add_argument("--device", default="auto")
    p.add_argument("--shard", default="0/1", help="I/N: score every N-th sample from I (one process per GPU)")
    p.add_argument("--ray-workers", type=int, default=0, help="split the videos over this many Ray tasks")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="GPUs each Ray task requests (1 on a GPU cluster)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: $ALCHEMIST_RAY_ADDRESS or local)")


def add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="MSRVTT-Personalization: build, import, review, generate, eval")
    cmds = bench.add_subparsers(dest="bench_command", required=True)
    p = cmds.add_parser("build", help="curate MSR-VTT-style videos into the benchmark layout")
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--profile", default="offline")
    p.add_argument("--config")
    p.add_argument("--keep", help="kept.txt exported by bench review")
    p.add_argument("--ray", action="store_true", help="run the stages on Ray (default: in process)")
    p.set_defaults(func=_build)
    p = cmds.add_parser("import", help="the authors' annotation records + MSR-VTT videos -> the layout")
    p.add_argument("--annotations", required=True, help="folder of <sample>.vid_info.json + .word_tags_masks.pkl.gz")
    p.add_argument("--videos", required=True, help="folder of MSR-VTT videos")
    p.add_argument("--out", required=True)
    p.add_argument("--sd-model", default="", help="SD-2 inpainting model for backgrounds (default: OpenCV)")
    p.set_defaults(func=_import)
    p = cmds.add_parser("review", help="an HTML page to keep or drop samples by the paper's criteria")
    p.add_argument("--benchmark", required=True)
    p.add_argument("--out", help="default: <benchmark>/review.html")
    p.set_defaults(func=_review)
    p = cmds.add_parser("generate", help="run our sampler over a mode's conditioning lists")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--benchmark", required=True)
    p.add_argument("--mode", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--frames", type=int, default=17)
    p.add_argument("--size", default="256x144")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_generate)
    p = cmds.add_parser("eval", help="score generated videos; per-video JSON and a leaderboard row")
    _add_eval_args(p)
    p.set_defaults(func=_eval)
