#!/usr/bin/python3
"""sklearn capture CLI.

  capture.py --serve                      the host's capture protocol (docs/capture-protocol.md)
  capture.py --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)
                                          capture a suite's sklearn fixtures standalone; --post
                                          streams each to `planetbridge serve` at URL and
                                          prints its verdict

Run with /usr/bin/python3 (Debian's scikit-learn); works from any cwd.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

import pbstream  # noqa: E402

PLANET, ENGINE = "sklearn", "scikit-learn"


def load_engine():
    """Imports scikit-learn (ImportError when missing) and returns the engine version."""
    import pb_sklearn
    return pb_sklearn.PLANET_VERSION


def build(fixture):
    import fixtures
    stream = fixtures.build(fixture)
    return stream.doc, stream.tensors


def main(argv=None):
    return pbstream.main(PLANET, ENGINE, load_engine, build, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
