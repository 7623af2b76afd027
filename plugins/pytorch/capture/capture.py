#!/usr/bin/python3
"""pytorch capture CLI.

  capture.py --serve                      the host's capture protocol (docs/capture-protocol.md)
  capture.py --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
                                          capture a suite's pytorch fixtures standalone; --post
                                          streams each to `planetbridge serve` at URL and
                                          prints its verdict

Run with /usr/bin/python3 (Debian's torch); works from any cwd.
"""

import argparse
import fnmatch
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "sdk", "python"))]

import pbstream  # noqa: E402

PLANET, ENGINE = "pytorch", "torch"


def load_engine():
    """Imports torch (ImportError when missing) and returns the engine version."""
    import torch
    import pb_torch
    torch.set_num_threads(os.cpu_count() or 1)  # Debian's torch starts with one thread
    return pb_torch.PLANET_VERSION


def build(fixture):
    import fixtures
    stream = fixtures.build(fixture)
    return stream.doc, stream.tensors


def suite_fixtures(path, pattern):
    """The suite's pytorch fixtures matching pattern, in the capture request's form."""
    import yaml
    with open(path, encoding="utf-8") as f:
        suite = yaml.safe_load(f)
    if not isinstance(suite, dict) or not isinstance(suite.get("fixtures"), list):
        raise ValueError(f"{path}: expected a mapping with a 'fixtures' list")
    defaults = suite.get("defaults") or {}
    selected = []
    for i, fx in enumerate(suite["fixtures"]):
        if not isinstance(fx, dict) or not isinstance(fx.get("id"), str):
            raise ValueError(f"{path}: fixtures[{i}]: expected a mapping with a string 'id'")
        if PLANET not in (fx.get("planets") or []) or not fnmatch.fnmatchcase(fx["id"], pattern):
            continue
        selected.append({"id": fx["id"], "layer": fx.get("layer"),
                         "samples": fx.get("samples", defaults.get("samples")),
                         "seed": fx.get("seed", defaults.get("seed")),
                         "spec": fx.get("spec")})
    return selected


def run_suite(args):
    try:
        selected = suite_fixtures(args.suite, args.fixture)
        load_engine()
    except (OSError, ValueError, ImportError) as e:
        print(f"capture: {e}", file=sys.stderr)
        return 2
    if not selected:
        print(f"capture: no {PLANET} fixtures in {args.suite} match {args.fixture!r}", file=sys.stderr)
        return 2
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    failed = 0
    for fx in selected:
        try:
            frame = pbstream.encode_frame(*build(fx))
        except Exception as e:
            failed += 1
            print(f"{fx['id']}: ERROR {type(e).__name__}: {e}", file=sys.stderr)
            continue
        if args.post:
            try:
                result = pbstream.post(args.post, frame, PLANET)
            except pbstream.PostError as e:
                if e.status is None:  # no server there: the other fixtures would fail the same way
                    print(f"capture: {e}", file=sys.stderr)
                    return 2
                failed += 1
                print(f"{fx['id']}: REFUSED {e}", flush=True)
                continue
            print(pbstream.verdict_line(result), flush=True)
            failed += result.get("verdict") in ("FAIL", "ERROR")
        elif args.out:
            path = os.path.join(args.out, fx["id"] + ".pbstream")
            with open(path, "wb") as f:
                f.write(frame)
            print(f"{fx['id']}: {path} ({len(frame)} bytes)", file=sys.stderr)
        else:
            sys.stdout.buffer.write(frame)
            sys.stdout.buffer.flush()
            print(f"{fx['id']}: {len(frame)} bytes", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", action="store_true", help="speak the capture protocol on stdin/stdout")
    mode.add_argument("--suite", metavar="FILE", help="suite YAML to capture")
    p.add_argument("--fixture", metavar="GLOB", default="*", help="only fixtures whose id matches (fnmatch)")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--out", metavar="DIR", help="write DIR/<id>.pbstream per fixture")
    dest.add_argument("--stdout", action="store_true", help="write the frames one after another to stdout")
    dest.add_argument("--post", metavar="URL", help="post each stream to `planetbridge serve` at URL, print the verdicts")
    args = p.parse_args(argv)
    if args.serve:
        if args.out or args.stdout or args.post or args.fixture != "*":
            p.error("--serve takes no --fixture, --out, --stdout or --post")
        return pbstream.serve(PLANET, ENGINE, load_engine, build)
    if not (args.out or args.stdout or args.post):
        p.error("--suite needs --out DIR, --stdout or --post URL")
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
