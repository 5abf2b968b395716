"""Run `image-to-urdf convert` on the procedural benchmark set in two tracks, score, write the table.

    .venv/bin/python benchmarks/run_tracks.py [--quick] [--jobs 2] [--set DIR] [--out DIR] [--write-docs]

Tracks: A, photo only; B, photo + one ``--click`` per movable part + its clip as ``--motion``.
Every conversion is a fresh `image-to-urdf convert` process with ``--max-dim`` set to the true
largest dimension (so positions compare in metres). Each prediction is scored against its ground
truth with ``flows.evaluate`` (what `image-to-urdf eval` runs). The set is built first when
missing (``benchmarks/build_set.py``, same seed), case by case as the conversions reach it. Each conversion's record goes to
``OUT/<track>/<case>.json`` (a re-run skips conversions already recorded and re-scores them); the tables (per category and
overall) are printed and, with ``--write-docs``, written into ``docs/benchmarks.md`` with the
command that produced them.

A third-party set (``build_set.py --source third-party``, which writes ``OUT/split.json``) is run
case by case as listed there (it must be built first); its tables report each split (dev,
held-out) beside the whole, per category and overall, and ``--write-docs`` writes them into the
third-party section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.build_set import FULL_CASES, QUICK_CASES, build_case, case_spec  # noqa: E402
from flows.evaluate import evaluate_package, format_table, summarize  # noqa: E402
from stages._shared.io import write_bytes, write_json  # noqa: E402

TRACKS = {"A": "photo only", "B": "photo + --click + --motion (the clip)"}
DOC = REPO / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- tracks:start -->", "<!-- tracks:end -->"
TP_DOC_START, TP_DOC_END = "<!-- tracks-third-party:start -->", "<!-- tracks-third-party:end -->"
SPLITS = ("dev", "heldout")
#: Longest a single conversion may run before it is stopped and scored as failed, seconds.
CONVERT_TIMEOUT_S = 900
#: The ephemeral Prefect API each convert process starts may need longer than Prefect's default
#: 20 s on a loaded machine; a start-up timeout is an infrastructure failure, not a result, so it
#: is retried (at most ``CONVERT_RETRIES`` times).
PREFECT_STARTUP_TIMEOUT_S = "180"
PREFECT_STARTUP_FAILURE = "Timed out while attempting to connect to ephemeral Prefect API server"
CONVERT_RETRIES = 2


def convert_command(case: dict, case_dir: Path, track: str, out: Path) -> list[str]:
    """The `image-to-urdf convert` command line of one case in one track."""
    cmd = [sys.executable, "-m", "flows.cli", "convert", str(case_dir / case["photo"]), "--out", str(out),
           "--name", "pred", "--max-dim", f"{case['max_dim_m']:.6f}"]
    if track == "B":
        for part in case["parts"]:
            x, y = case["clicks"][part]
            cmd += ["--click", f"{x},{y}", "--motion", str(case_dir / case["clips"][part])]
    return cmd


_BUILD_LOCK = threading.Lock()


def ensure_case(spec: dict, set_dir: Path) -> dict:
    """case.json of a case, building the case first when it is not in the set yet."""
    path = set_dir / "cases" / spec["case"] / "case.json"
    with _BUILD_LOCK:  # the two tracks of a case may ask at once
        if not path.is_file() and spec.get("source") == "third-party":
            from benchmarks.third_party.build import build_case as build_third_party_case

            build_third_party_case(spec, set_dir)
        elif not path.is_file():
            build_case(spec, set_dir)
    return json.loads(path.read_text())


def run_case(spec: dict, set_dir: Path, track: str, out_root: Path, convert: bool = True) -> dict | None:
    """Convert one case in one track (unless its conversion is stored), then score it.

    With ``convert`` False only a stored conversion is scored (None when there is none).
    """
    record_path = out_root / track / f"{spec['case']}.json"
    case_dir = set_dir / "cases" / spec["case"]
    work = out_root / track / "work" / spec["case"]
    if record_path.is_file():
        record = json.loads(record_path.read_text())
    elif not convert:
        return None
    else:
        case = ensure_case(spec, set_dir)
        cmd = convert_command(case, case_dir, track, work)
        env = dict(os.environ, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=PREFECT_STARTUP_TIMEOUT_S)
        for attempt in range(CONVERT_RETRIES + 1):
            shutil.rmtree(work, ignore_errors=True)  # nothing from an earlier attempt
            start = time.perf_counter()
            try:
                # cwd outside the repository: simulators drop log files (MUJOCO_LOG.TXT) where they run
                work.parent.mkdir(parents=True, exist_ok=True)
                proc = subprocess.run(cmd, cwd=work.parent, env=env, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S)
                code, log_tail = proc.returncode, proc.stderr[-2000:]
            except subprocess.TimeoutExpired:
                code, log_tail = "timeout", f"stopped after {CONVERT_TIMEOUT_S} s"
            if PREFECT_STARTUP_FAILURE not in log_tail:
                break
            print(f"  {track} {spec['case']}: Prefect API start-up timed out, retrying", file=sys.stderr, flush=True)
        record = {
            "case": case["case"],
            "category": case["category"],
            **({"split": case["split"]} if "split" in case else {}),
            "track": track,
            "exit_code": code,
            "seconds": time.perf_counter() - start,
            "command": shlex.join(cmd),
            "log_tail": log_tail if code != 0 else "",
        }
        write_json(record_path, record)
        print(f"  {track} {case['case']}: exit {code}, {record['seconds']:.0f} s", file=sys.stderr, flush=True)
    package = _predicted_package(work)
    scores = evaluate_package(package, set_dir / "gt" / spec["case"], valid=record["exit_code"] == 0)
    return {**record, "package": str(package) if package else None, **scores}


def _predicted_package(work: Path) -> Path | None:
    """The shipped package, or the one a failed validation kept in the run directory."""
    if (work / "pred" / "package.json").is_file():
        return work / "pred"
    for manifest in sorted(work.glob("runs/*/manifest.json")):
        kept = json.loads(manifest.read_text()).get("package")
        if kept and (Path(kept) / "package.json").is_file():
            return Path(kept)
    return None


def tables(results: list[dict]) -> str:
    """One markdown table per track: per category and overall, plus time per photo."""
    import numpy as np

    blocks = []
    for track in TRACKS:
        rows = [r for r in results if r["track"] == track]
        if not rows:
            continue
        by_cat = {c: [r for r in rows if r["category"] == c] for c in sorted({r["category"] for r in rows})}
        by_cat = _by_split(by_cat, rows) if any("split" in r for r in rows) else by_cat
        summaries = {c: summarize(rs) for c, rs in by_cat.items()}
        summaries["**all**"] = summarize(rows)
        table = format_table(summaries).splitlines()
        table[0] += " time s (med / p90) |"
        table[1] += "---|"
        for i, rs in enumerate(list(by_cat.values()) + [rows]):
            t = np.array([r["seconds"] for r in rs])
            table[i + 2] += f" {np.median(t):.0f} / {np.quantile(t, 0.9):.0f} |"
        failed = [f"- {r['case']} (exit {r['exit_code']}): {failure_reason(r['log_tail'])}" for r in rows if r["exit_code"] != 0]
        blocks.append(
            f"Track {track} ({TRACKS[track]}), {len(rows)} cases:\n\n" + "\n".join(table)
            + (f"\n\nFailed conversions (exit 1: a stage raised; exit 3: the package failed validation and is "
               f"scored from its run directory, as invalid):\n\n" + "\n".join(failed) if failed else "")
        )
    return "\n\n".join(blocks)


def _by_split(by_cat: dict[str, list], rows: list[dict]) -> dict[str, list]:
    """Rows per category and split (``<category> (dev)``, ``(heldout)``), then per split overall."""
    out = {}
    for cat, rs in by_cat.items():
        for split in SPLITS:
            picked = [r for r in rs if r.get("split") == split]
            if picked:
                out[f"{cat} ({split})"] = picked
    for split in SPLITS:
        picked = [r for r in rows if r.get("split") == split]
        if picked:
            out[f"**all ({split})**"] = picked
    return out


def failure_reason(log_tail: str, limit: int = 160) -> str:
    """The convert command's own error line(s) from its stderr, shortened."""
    lines = [ln.strip() for ln in log_tail.splitlines()]
    picked = [ln.removeprefix("image-to-urdf: ") for ln in lines if ln.startswith("image-to-urdf:") and "converting" not in ln]
    picked = ["failed validation" if ln.startswith("package failed validation") else ln for ln in picked]
    picked = [re.sub(r"^error: \S+?: ", "", ln) for ln in picked]  # drop the photo's path
    picked += [ln.removeprefix("- ") for ln in lines if ln.startswith("- joint") or ln.startswith("- link")][:2]
    text = "; ".join(picked) or (lines[-1] if lines else "no output")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(path: Path) -> str:
    """``path`` as the docs show it: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def write_docs(text: str, command: str, n_cases: int, n_planned: int, load: str, third_party: bool = False) -> None:
    """Replace the tracks section of docs/benchmarks.md (between its markers, or append it);
    ``third_party``: the third-party set's section instead."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    start, end = (TP_DOC_START, TP_DOC_END) if third_party else (DOC_START, DOC_END)
    if third_party:
        section = (
            f"{start}\n### Third-party set: tracks A and B\n\n"
            "Cases are the metaworld and robosuite objects (`build_set.py --source third-party`), four photo "
            "conditions each, scored as the procedural set is (`flows.evaluate`). Rows give each split "
            "(dev, heldout: disjoint objects) per category and overall; `**all**` is the whole set.\n\n"
            f"Command (measured {when}, {n_cases} of {n_planned} cases scored, `--max-dim` = true largest dimension; "
            f"{load}):\n\n    {command}\n\n{text}\n{end}\n"
        )
    else:
        section = (
            f"{DOC_START}\n## Procedural benchmark: tracks A and B\n\n"
            "Cases are procedural objects (`benchmarks/build_set.py`, seed 0; case k is category k mod 12) "
            "rendered as textured 512x512 product photos. Each prediction is scored by `flows.evaluate` "
            "(`image-to-urdf eval`): parts matched by click (track B) or mask IoU >= 0.5 (Hungarian); "
            "axis error in degrees (sign-agnostic), pivot error and Chamfer distance as fractions of "
            "the true bounding-box diagonal, limit-range error in degrees (revolute) or diagonal fraction "
            "(prismatic). Medians / 90th percentiles over matched joints; found / missed / extra count "
            "joints; valid counts packages that passed validation; time is the whole convert process.\n\n"
            f"Command (measured {when}, {n_cases} of {n_planned} cases scored, `--max-dim` = true largest dimension; "
            f"{load}):\n\n    {command}\n\n{text}\n{DOC_END}\n"
        )
    doc = DOC.read_text()
    if start in doc:
        head, rest = doc.split(start, 1)
        doc = head + section + rest.split(end, 1)[1].lstrip("\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + section
    write_bytes(DOC, doc.encode())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=REPO / "bench-out" / "set", help="benchmark set folder (built if missing)")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "tracks", help="predictions and scores")
    parser.add_argument("--seed", type=int, default=0, help="seed of the set")
    parser.add_argument("--quick", action="store_true", help=f"only the first {QUICK_CASES} cases")
    parser.add_argument("--cases", type=int, default=FULL_CASES, help="number of cases (without --quick)")
    parser.add_argument("--tracks", default="AB", help="tracks to run, e.g. A, B or AB")
    parser.add_argument("--jobs", type=int, default=1, help="conversions run at once")
    parser.add_argument("--write-docs", action="store_true", help="write the tables into docs/benchmarks.md")
    parser.add_argument(
        "--no-convert", action="store_true", help="only score the conversions already recorded under --out (a partial run)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    n_cases = QUICK_CASES if args.quick else args.cases
    args.set, args.out = args.set.resolve(), args.out.resolve()  # each convert runs in its own folder

    split_file = args.set / "split.json"
    third_party = split_file.is_file() and json.loads(split_file.read_text()).get("source") == "third-party"
    if third_party:  # the set's own case list (built by build_set.py --source third-party)
        specs = json.loads(split_file.read_text())["specs"]
        specs = specs[:n_cases]  # condition-major: a prefix spans the objects
    else:
        specs = [case_spec(args.seed, k) for k in range(n_cases)]
    todo = [(spec, track) for spec in specs for track in args.tracks]  # case-major: a cut-short run stays balanced
    print(f"{len(todo)} conversion(s): {len(specs)} cases x tracks {args.tracks}, {args.jobs} at once", file=sys.stderr)
    with ThreadPoolExecutor(args.jobs) as pool:  # each job waits on its own convert process
        results = list(pool.map(lambda st: run_case(st[0], args.set, st[1], args.out, not args.no_convert), todo))
    results = [r for r in results if r is not None]
    cases = {r["case"] for r in results}
    write_json(args.out / "results.json", results)
    text = tables(results)
    print(text)
    if args.write_docs:
        command = ".venv/bin/python benchmarks/run_tracks.py " + shlex.join(  # as run: set, output, tracks
            ["--set", _shown(args.set), "--out", _shown(args.out), "--tracks", args.tracks]
            + (["--quick"] if args.quick else [])
            + (["--no-convert"] if args.no_convert else ["--jobs", str(args.jobs)])
            + ["--write-docs"]
        )
        load = "scored from recorded conversions" if args.no_convert else "load average at the end: " + " ".join(
            f"{v:.1f}" for v in os.getloadavg()
        )
        write_docs(text, command, len(cases), len(specs), load, third_party)


if __name__ == "__main__":
    main()
