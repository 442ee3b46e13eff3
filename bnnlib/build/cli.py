"""The `bnnlib` command line: data, book, run, bench, cache-key, compare.

Each subcommand parses its arguments and calls one function of the package; the heavy modules
are imported only when their command runs, so `bnnlib --help` stays fast. A `BnnlibError` is
printed as one line (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bnnlib.errors import BnnlibError


def _data_synth(args: argparse.Namespace) -> None:
    from bnnlib.data.sized import SIZED, write_sized
    from bnnlib.data.synth import PROFILES, write_profile
    from bnnlib.errors import unknown_name
    from bnnlib.infra.paths import check_output_folder

    if args.profile not in PROFILES and args.profile not in SIZED:
        raise unknown_name("synthetic profile", args.profile, [*PROFILES, *SIZED])
    check_output_folder(args.out)  # an unwritable --out fails before generating
    if args.profile in SIZED:
        out = write_sized(args.profile, Path(args.out), seed=args.seed)
        print(f"wrote the '{args.profile}' files (v5's layout and size, random values) to {out}")
        return
    out = write_profile(args.profile, Path(args.out), seed=args.seed)
    print(f"wrote the synthetic '{args.profile}' dataset to {out}")


def _data_download(args: argparse.Namespace) -> None:
    from bnnlib.data.download import download_dataset

    for path in download_dataset(args.version, Path(args.dest)):
        print(path)


def _jobs(args: argparse.Namespace) -> int:
    """--jobs, else one worker per core for a local Dask cluster, else executor.default_jobs()."""
    from bnnlib.infra.cluster import cluster_workers

    return cluster_workers(args.executor, args.jobs)


def _device(args: argparse.Namespace) -> str:
    """--device as given, after checking now (one line, status 2) that torch sees that device."""
    from bnnlib.models.device import resolve_device

    resolve_device(args.device)
    return args.device


def _book(args: argparse.Namespace) -> None:
    from bnnlib.build.runner import build_book

    build_book(args.profile, data_dir=args.data_dir, force=args.force, jobs=_jobs(args), device=_device(args),
               executor=args.executor, mlflow_uri=args.mlflow_uri, dry_run=args.dry_run)


def _run(args: argparse.Namespace) -> None:
    from bnnlib.build.runner import run_chapter
    from bnnlib.project.book import parse_overrides

    run_chapter(
        args.chapter,
        args.profile,
        overrides=parse_overrides(args.param or []),
        data_dir=args.data_dir,
        force=args.force,
        jobs=_jobs(args),
        build=not args.no_build,
        device=_device(args),
        executor=args.executor,
        mlflow_uri=args.mlflow_uri,
        dry_run=args.dry_run,
    )


def _bench(args: argparse.Namespace) -> None:
    from bnnlib.bench.engine import run_benchmark

    run_benchmark(scale=args.scale, out=Path(args.out), draws=args.draws)


def _cache_key(args: argparse.Namespace) -> None:
    from bnnlib.infra.cache import engine_hash

    print(engine_hash())


def _compare(args: argparse.Namespace) -> int:
    from bnnlib.build.compare import compare_results

    differences = compare_results(args.before, args.after, args.ignore or ())
    for difference in differences:
        print(difference)
    print(f"[compare] {len(differences)} difference{'s' if len(differences) != 1 else ''} between {args.before} "
          f"and {args.after}" + ("" if differences else ": the same results"))
    return 1 if differences else 0


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="default", help="a profile in book/params/ (quick, default, numerai, numerai-v5)")
    parser.add_argument("--data-dir", default=None, help="folder of real Numerai files (numerai profile)")
    parser.add_argument("--force", action="store_true", help="recompute fits and scores, ignoring the cache")
    parser.add_argument("--jobs", type=int, default=None,
                        help="before executing the chapters, fit and score all their models in N local "
                             "processes (default: one per core, at most 4; 1: each chapter fits its own "
                             "models in its own process)")
    parser.add_argument("--device", default="auto",
                        help="where fits and scoring run: auto (a GPU when torch sees one, else the CPU), "
                             "cpu, cuda or cuda:N; it keys the cache, since numbers may differ by device")
    parser.add_argument("--executor", default="local",
                        help="where the fits and scorings run: local (this process, or --jobs local "
                             "processes), dask (a Dask cluster of --jobs workers on this machine, default one "
                             "per core), or dask://HOST:PORT (an existing Dask scheduler sharing the cache "
                             "folder); needs pip install 'bnnlib[dask]'; results do not depend on it")
    parser.add_argument("--mlflow-uri", default=None, metavar="URI",
                        help="also log every fit as an MLflow run (parameters, metrics, per-era scores): "
                             "file:/path/to/folder or http(s)://HOST[:PORT]; needs pip install 'bnnlib[mlflow]'")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (chapters to execute, fits and scorings to run or found in the cache, "
                             "the estimated CPU and wall time) and stop, computing nothing")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bnnlib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="make or fetch datasets").add_subparsers(
        dest="data_command", required=True, metavar="DATA_COMMAND"
    )
    synth = data.add_parser("synth", help="write a synthetic Numerai-like dataset")
    synth.add_argument("--profile", default="default",
                       help="tiny, quick or default (Numerai-like statistics, v3 schema), or v5-size (v5's "
                            "layout and size, 2.7M training rows, random int8 values: for `bnnlib bench --scale v5`)")
    synth.add_argument("--out", required=True, help="folder to write into")
    synth.add_argument("--seed", type=int, default=None, help="override the profile's seed")
    synth.set_defaults(func=_data_synth)
    download = data.add_parser("download", help="download Numerai data with numerapi (network)")
    download.add_argument("--version", default="v5.2", help="dataset version, e.g. v5.2 or v4.3")
    download.add_argument("--dest", required=True, help="folder to write into")
    download.set_defaults(func=_data_download)

    book = commands.add_parser("book", help="execute every chapter and build the HTML book")
    _add_run_options(book)
    book.set_defaults(func=_book)

    run = commands.add_parser("run", help="rerun one chapter with changed parameters")
    run.add_argument("chapter", help="chapter name, e.g. burn_eras")
    _add_run_options(run)
    run.add_argument(
        "-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
        help="set a chapter parameter; VALUE is read as YAML, e.g. -p priors '[\"laplace\"]'",
    )
    run.add_argument("--no-build", action="store_true", help="execute the chapter only, skip the HTML build")
    run.set_defaults(func=_run)

    bench = commands.add_parser("bench", help="measure training, drawing and scoring speed")
    bench.add_argument("--scale", default="small", help="small (default), v3 (the talk's data's size) or v5 (time and peak memory of each "
                            "stage of a run at v5's size, FLOP counts, full-size projections)")
    bench.add_argument("--out", default="_build/bench.json", help="where to write the JSON")
    bench.add_argument("--draws", type=int, default=1000, help="posterior draws to time")
    bench.set_defaults(func=_bench)

    key = commands.add_parser("cache-key", help="print the hash of the engine's code, which keys every cached fit "
                                                "(e.g. a CI cache key: it changes only when a fit's numbers could)")
    key.set_defaults(func=_cache_key)

    compare = commands.add_parser("compare", help="compare two builds' exported results (every CSV under two "
                                                  "_build/results folders, timings and cache keys left out); "
                                                  "exit status 1 when they differ")
    compare.add_argument("before", help="the first build's results folder, e.g. ../old/_build/results")
    compare.add_argument("after", help="the second build's results folder")
    compare.add_argument("--ignore", action="append", metavar="COLUMN", help="also leave out this column")
    compare.set_defaults(func=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user's error is one line and status 2, Ctrl-C 130 and SIGTERM 143,
    after every process the command started has been stopped."""
    from bnnlib.infra.interrupt import exit_status, handle_signals, stop_children

    args = make_parser().parse_args(argv)
    try:
        with handle_signals():
            status = args.func(args)
    except BnnlibError as error:
        print(f"bnnlib: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an output path that cannot be written, a full disk
        where = f" {error.filename}" if error.filename else ""
        print(f"bnnlib: error: cannot write{where}: {error.strerror or error}; choose another path "
              "or free the space", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        stop_children()
        status = exit_status(error)
        print(f"bnnlib: {'terminated' if status == 143 else 'interrupted'}; partial files removed, "
              "processes stopped", file=sys.stderr)
        return status
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
