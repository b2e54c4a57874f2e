"""What ``toolkit bench`` and ``toolkit bench report`` do once their arguments are parsed (see toolkit.cli.bench_cmd)."""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.bench.config import BenchConfig
from toolkit.errors import UsageError


def _config(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        threads=tuple(args.threads or ()),
        delegate=args.delegate,
        fallback=args.fallback,
        warmup=args.warmup,
        runs=args.runs,
        seconds=args.seconds,
        isolate=not args.in_process,
    )


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The measuring flags, as the remote toolkit should receive them."""
    out = ["--delegate", args.delegate, "--warmup", str(args.warmup)]
    if args.fallback:
        out += ["--fallback", args.fallback]
    if args.threads:
        out += ["--threads", ",".join(map(str, args.threads))]
    out += ["--seconds", repr(args.seconds)] if args.seconds else ["--runs", str(args.runs)]
    if args.in_process:
        out.append("--in-process")
    return out


def _status(text: str) -> None:
    """Progress lines go to a terminal only: on a pipe, stderr stays empty or exactly one error line."""
    if sys.stderr.isatty():
        print(text, file=sys.stderr, flush=True)


def _command_line() -> str:
    """The bench command as typed, for the session record (argv after 'bench', when called from the CLI)."""
    argv = sys.argv[1:]
    return shlex.join(["toolkit", *argv[argv.index("bench") :]]) if "bench" in argv else "toolkit bench"


def _local(args: argparse.Namespace, store: Any, target: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from toolkit.bench.host import fingerprint
    from toolkit.bench.session import bench_models, resolve_config
    from toolkit.runtime import select_backend

    config = resolve_config(_config(args))
    backend = select_backend()
    host = fingerprint(backend.name, backend.version).as_dict()
    session: list[int] = []  # created with the first result: a run that measures nothing writes nothing

    def keep(result: dict[str, Any]) -> None:
        if store is None:
            return
        if not session:
            session.append(store.add_session(target, host, _command_line(), __version__))
        store.add_result(session[0], result)  # committed now: Ctrl-C later keeps it

    return host, bench_models(args.models, config, on_result=keep, log=_status)


def _remote(args: argparse.Namespace, store: Any, target: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from toolkit.bench.remote import SshClient, bench_remote, parse_remote
    from toolkit.bench.session import check_models

    models = check_models(args.models)
    remote = parse_remote(args.remote)
    toolkit_cmd = args.remote_toolkit or (
        f"{args.remote_python} -m toolkit" if args.remote_python else "toolkit"
    )
    client = SshClient(
        remote, identity=args.identity, options=tuple(args.ssh_option), connect_timeout=args.connect_timeout
    )
    _status(f"bench: running on {remote} with '{toolkit_cmd}' ...")
    reply = bench_remote(client, models, _forwarded(args), toolkit_cmd)
    host = reply.get("host") or {}
    results = reply["results"]
    if store is not None:
        session = store.add_session(target, host, _command_line(), str(reply.get("toolkit_version", "")))
        for result in results:
            store.add_result(session, result)
    return host, results


def run_bench(args: argparse.Namespace) -> int:
    """``toolkit bench`` with parsed ``args``: measure the models here or on ``--remote``, store the results
    (unless ``--no-store``) and print a table or JSON; return the exit code (0). UsageError for conflicting flags."""
    from toolkit.bench.host import host_warnings
    from toolkit.bench.report import render_run
    from toolkit.bench.store import BenchStore

    if args.remote is None and (
        args.identity or args.remote_toolkit or args.remote_python or args.ssh_option
    ):
        raise UsageError(
            "--identity, --remote-toolkit, --remote-python and --ssh-option need --remote USER@HOST"
        )
    if args.remote_toolkit and args.remote_python:
        raise UsageError("give --remote-toolkit or --remote-python, not both")
    if args.remote is not None:
        target = args.target or args.remote.split("@")[-1]
    else:
        target = args.target or platform.node() or "local"
    # Open (and check) the store before measuring anything: a bad --db fails in a second, not after the run.
    store = None if args.no_store else BenchStore(args.db)
    try:
        host, results = (_remote if args.remote else _local)(args, store, target)
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(
            json.dumps(
                {
                    "target": target,
                    "toolkit_version": __version__,
                    "host": host,
                    "results": results,
                    "db": None if store is None else str(store.path),
                },
                indent=2,
            )
        )
        return 0
    print(render_run(results, host, target))
    for warning in host_warnings(host):
        print(f"warning: {warning}")
    if store is not None:
        print(
            f"stored {len(results)} result(s) in {store.path} (target '{target}'); see: toolkit bench report"
            + (f" --db {args.db}" if args.db else "")
        )
    return 0


def run_report(args: argparse.Namespace) -> int:
    """``toolkit bench report`` with parsed ``args``: render stored results in ``args.format`` to stdout or
    ``--out``, plus an optional ``--plot``; return 0. UsageError when the database holds no matching result."""
    from toolkit.bench.report import build_tables, render
    from toolkit.bench.store import BenchStore
    from toolkit.fileio import atomic_open

    with BenchStore(args.db, create=False) as store:
        results = store.results(target=args.target, latest=not args.all, with_samples=bool(args.plot))
        targets = store.targets()
    if not results:
        where = (
            f"target '{args.target}' (stored targets: {', '.join(targets) or 'none'})"
            if args.target
            else "it"
        )
        raise UsageError(
            f"no benchmark results in {store.path} for {where}; run 'toolkit bench MODEL.tflite' first"
        )
    if args.plot:
        from toolkit.bench.plot import plot_results

        plot_results(results, args.plot)
    hosts = {
        r["target"]: r["host"] for r in results
    }  # newest fingerprint per target (results are oldest first)
    text = render(build_tables(results), args.format, hosts)
    if args.out:
        with atomic_open(Path(args.out), "w") as handle:
            handle.write(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
