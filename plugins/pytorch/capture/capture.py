#!/usr/bin/python3
"""pytorch capture CLI.

  capture.py --serve                      the host's capture protocol (docs/capture-protocol.md)
  capture.py --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
                                          capture a suite's pytorch fixtures standalone; --post
                                          streams each to `planetbridge serve` at URL and
                                          prints its verdict

Run with /usr/bin/python3 (Debian's torch); works from any cwd.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

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


def main(argv=None):
    return pbstream.main(PLANET, ENGINE, load_engine, build, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
