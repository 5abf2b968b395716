"""Command line: ``image-to-urdf convert PHOTO --out DIR ...`` runs the Prefect flow.

Exit codes: 0 success, 1 a stage failed, 2 bad input (nothing written), 3 the package failed
validation (kept in the run directory, not shipped).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

EXIT_STAGE_FAILED, EXIT_BAD_INPUT, EXIT_INVALID_PACKAGE = 1, 2, 3
#: The ``--set`` example the help and its error print (a real setting: tests run it).
SET_EXAMPLE = "joint_fit.fine_iters=30"


class InputError(ValueError):
    """Bad command-line input; the message names the file or flag and the fix."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="image-to-urdf", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser("convert", help="convert one product photo into a URDF package")
    convert.add_argument("photo", type=Path, help="product photo (PNG, JPEG, ...)")
    convert.add_argument("--out", type=Path, required=True, help="output folder")
    convert.add_argument("--name", help="package name, [A-Za-z0-9_] (default: from the photo's file name)")
    convert.add_argument(
        "--click", action="append", default=[], metavar="X,Y", help="pixel on a movable part; repeat per part"
    )
    convert.add_argument(
        "--motion", action="append", default=[], type=Path, metavar="PATH",
        help="video or folder of frames of the k-th clicked part moving (same camera as the photo)",
    )
    convert.add_argument("--max-dim", type=float, metavar="METRES", help="largest dimension of the object")
    _add_config_arguments(convert)

    config = sub.add_parser("config", help="print the configuration a preset and --set give, as JSON")
    _add_config_arguments(config)

    browse = sub.add_parser("browse", help="web browser of run records (read-only), on 127.0.0.1 by default")
    browse.add_argument("runs_dir", type=Path, metavar="RUNS_DIR", help="folder of run folders, e.g. OUT/runs")
    browse.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    browse.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1, this machine only)")
    _add_batch_parser(sub)
    _add_serve_parser(sub)
    _add_eval_parser(sub)
    return parser


def _add_eval_parser(sub) -> None:
    evaluate = sub.add_parser(
        "eval", help="score a predicted package against a ground-truth one (or a folder of <case>/ packages)"
    )
    evaluate.add_argument("pred", type=Path, help="predicted package folder, or a folder of <case>/ packages")
    evaluate.add_argument("gt", type=Path, help="ground-truth package folder, or a folder of <case>/ packages")
    evaluate.add_argument("--json", type=Path, metavar="PATH", help="also write the full scores as JSON")


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="cpu", help="named configuration (default: cpu)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help=f"override one setting by dotted path, e.g. --set {SET_EXAMPLE}",
    )


def main(argv: list[str] | None = None) -> int:
    # Before prefect is first imported: its own INFO chatter would drown the progress lines.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    args = build_parser().parse_args(_join_negative_clicks(sys.argv[1:] if argv is None else list(argv)))
    if args.command == "browse":
        return _browse(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "eval":
        return _eval(args)
    try:
        config = _resolve_config(args)
        if args.command == "config":
            print(json.dumps(config.model_dump(mode="json", by_alias=True), indent=2))
            return 0
        if args.command == "batch":
            return _batch(config, args)
        request = _check_convert_inputs(config, args)
    except InputError as exc:
        print(f"image-to-urdf: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return _convert(config, **request)


def _join_negative_clicks(argv: list[str]) -> list[str]:
    """``--click -3,10`` as ``--click=-3,10``: argparse takes a value starting with '-' for a flag."""
    out = []
    for arg in argv:
        if out and out[-1] == "--click" and arg[:1] == "-" and arg[1:2].isdigit():
            out[-1] = f"--click={arg}"
        else:
            out.append(arg)
    return out


def _resolve_config(args):
    from flows.presets import resolve

    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: expected KEY=VALUE, e.g. --set {SET_EXAMPLE}")
        overrides[key.strip()] = value.strip()
    if getattr(args, "max_dim", None) is not None:
        overrides["max_dim"] = str(args.max_dim)
    try:
        return resolve(args.preset, overrides)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InputError(str(exc).replace("\n", " ")) from exc


def _check_clicks_on_object(config, photo: Path, clicks) -> None:
    """Cut the object out (in a scratch folder, nothing under --out) and refuse clicks off it."""
    import stages.foreground
    import stages.part_masks
    from stages._shared.io import read_mask

    with tempfile.TemporaryDirectory(prefix="image-to-urdf-clicks-") as scratch:
        try:
            fg = stages.foreground.run(config.foreground, photo, Path(scratch))
            stages.part_masks.check_clicks_on_object(read_mask(fg.mask), fg.scale, clicks)
        except ValueError as exc:
            message = str(exc)
            raise InputError(message if message.startswith(str(photo)) else f"{photo}: --{message}") from None


def _check_convert_inputs(config, args) -> dict:
    """Check everything a run needs before anything is written."""
    from flows.image_to_urdf import check_motion_clips, package_name
    from stages._shared.photo import PhotoError, check_photo

    try:
        width, height = check_photo(args.photo)
    except PhotoError as exc:
        raise InputError(str(exc)) from exc
    clicks = [_parse_click(c, width, height, args.photo) for c in args.click]
    if clicks:
        _check_clicks_on_object(config, args.photo, clicks)
    for clip in args.motion:
        if not clip.exists():
            raise InputError(f"{clip}: --motion clip not found; give a video file or a folder of frames")
    try:
        check_motion_clips(args.motion, clicks)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    name = args.name or package_name(args.photo)
    if not name.replace("_", "a").isalnum() or not name.isascii():
        raise InputError(f"--name {name!r}: use only letters, digits and '_' (simulators require it)")
    _check_writable(args.out)
    return {"photo": args.photo, "out": args.out, "name": name, "clicks": clicks, "motion": args.motion}


def _parse_click(text: str, width: int, height: int, photo: Path) -> tuple[int, int]:
    try:
        x, y = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise InputError(f"--click {text!r}: expected X,Y in pixels, e.g. --click 312,280") from None
    if not (0 <= x < width and 0 <= y < height):
        raise InputError(
            f"{photo}: --click {x},{y} is outside the {width}x{height} photo "
            f"(0 <= X < {width}, 0 <= Y < {height})"
        )
    return x, y


def _check_writable(out: Path) -> None:
    """Fail unless a folder can be created and written at ``out`` (tested, then removed)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out exists and is not a folder; name a folder")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{out}: --out is inside {existing}, which is a file, not a folder")
    try:
        probe = Path(tempfile.mkdtemp(prefix=".image-to-urdf-probe-", dir=existing))
        probe.rmdir()
    except OSError as exc:
        raise InputError(f"{out}: --out is not writable ({exc.strerror}); choose a folder you can write") from None


def _convert(config, photo: Path, out: Path, name: str, clicks, motion) -> int:
    _setup_logging()
    from flows.image_to_urdf import image_to_urdf
    from stages.validate import UrdfValidationError

    start = time.perf_counter()
    print(f"image-to-urdf: converting {photo} -> {out / name}", file=sys.stderr)
    try:
        result = image_to_urdf(
            photo=str(photo), out=str(out), name=name, clicks=clicks, motion=[str(m) for m in motion], config=config
        )
    except UrdfValidationError as exc:
        print(f"image-to-urdf: package failed validation, not shipped (kept in {exc.package}):", file=sys.stderr)
        for issue in exc.issues:
            print(f"  - {issue}", file=sys.stderr)
        return EXIT_INVALID_PACKAGE
    except (ValueError, OSError, RuntimeError) as exc:
        print(f"image-to-urdf: error: {photo}: {exc}", file=sys.stderr)
        return EXIT_STAGE_FAILED
    print(
        f"image-to-urdf: wrote {result.package_dir} in {time.perf_counter() - start:.1f} s "
        f"({len(result.joints)} joint(s), validation passed; run record {result.run_dir})",
        file=sys.stderr,
    )
    return 0


def _browse(args) -> int:
    """Serve the artifact browser for RUNS_DIR (flows/browse.py) until interrupted."""
    from flows.browse import serve

    if not args.runs_dir.is_dir():
        print(f"image-to-urdf: error: {args.runs_dir}: RUNS_DIR is not a folder; give OUT/runs of a convert --out OUT",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    serve(args.runs_dir, host=args.host, port=args.port)
    return 0


def _eval(args) -> int:
    from flows.evaluate import main_eval

    for path in (args.pred, args.gt):
        if not path.is_dir():
            print(f"image-to-urdf: error: {path}: not a folder; pass a package folder or a folder of packages", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        return main_eval(args.pred, args.gt, args.json)
    except ValueError as exc:
        print(f"image-to-urdf: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _setup_logging() -> None:
    """Progress lines from the flow; only warnings from the stages (e.g. skipped clip frames)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name, level in (("flows", logging.INFO), ("stages", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.addHandler(handler)
        logger.propagate = False


# ---------------------------------------------------------------- batch and serve (flows/batch.py, flows/serve.py)


def _add_batch_parser(sub) -> None:
    batch = sub.add_parser(
        "batch", help="convert every image in a folder tree; summary.csv/json; exit 1 if any photo failed"
    )
    batch.add_argument("folder", type=Path, help="folder of photos (searched recursively, images found by content)")
    batch.add_argument("--out", type=Path, required=True, help="output folder (shared safely by concurrent batches)")
    batch.add_argument("--jobs", type=int, default=2, metavar="N", help="photos converted at once (default 2)")
    batch.add_argument("--max-dim", type=float, metavar="METRES", help="largest dimension of every object")
    batch.add_argument(
        "--task-runner", choices=("threads", "processes", "dask"), default="threads",
        help="threads (default), a local process pool, or a Dask cluster (prefect-dask)",
    )
    batch.add_argument("--dask-address", metavar="URL", help="scheduler of an existing Dask cluster (--task-runner dask)")
    batch.add_argument("--no-progress", action="store_true", help="no progress bar (one line per photo still)")
    _add_config_arguments(batch)


def _batch(config, args) -> int:
    """Run the batch flow; 0 when every image converted, 1 when any failed, 2 for bad arguments."""
    if not args.folder.is_dir():
        raise InputError(f"{args.folder}: not a folder; give the folder that holds the photos")
    if args.jobs < 1:
        raise InputError(f"--jobs {args.jobs}: give at least 1")
    _check_writable(args.out)
    from flows.batch import find_images
    from flows.devices import DeviceError, check_devices

    images, others = find_images(args.folder)
    if not images:
        print(
            f"image-to-urdf batch: error: {args.folder}: no image found ({len(others)} other file(s)); "
            "put PNG or JPEG photos in the folder (searched recursively, hidden entries skipped)",
            file=sys.stderr,
        )
        return EXIT_STAGE_FAILED

    try:
        check_devices(config)
    except DeviceError as exc:
        raise InputError(str(exc)) from None
    _setup_logging()
    logging.getLogger("flows.image_to_urdf").setLevel(logging.WARNING)  # one line per photo, not per stage
    from flows.batch import image_to_urdf_batch

    rows = image_to_urdf_batch(
        folder=str(args.folder), out=str(args.out), jobs=args.jobs, config=config, task_runner=args.task_runner,
        dask_address=args.dask_address, progress_bar=not args.no_progress,
    )
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "cached", "failed", "skipped")}
    print("image-to-urdf batch: " + ", ".join(f"{n} {s}" for s, n in counts.items()), file=sys.stderr)
    return EXIT_STAGE_FAILED if counts["failed"] else 0


def _add_serve_parser(sub) -> None:
    serve = sub.add_parser(
        "serve", help="local Prefect stack: server, work pools, deployments, workers (Ctrl-C stops it all)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4200, help="server port (default 4200)")
    serve.add_argument("--cpu-workers", type=int, default=1, metavar="N", help="workers on the cpu pool (default 1)")
    serve.add_argument(
        "--gpus", default=None, metavar="IDS",
        help="GPU ids for the gpu pool, one worker each with CUDA_VISIBLE_DEVICES pinned "
        "(default: all GPUs nvidia-smi lists; none on a machine without CUDA)",
    )
    serve.add_argument("--no-server", action="store_true", help="use the server at PREFECT_API_URL instead of starting one")


def _serve(args) -> int:
    from flows.serve import serve

    gpus = None if args.gpus is None else [g for g in args.gpus.split(",") if g.strip()]
    return serve(host=args.host, port=args.port, cpu_workers=args.cpu_workers, gpus=gpus, start_server=not args.no_server)


if __name__ == "__main__":
    sys.exit(main())
