#!/usr/bin/python3
"""template capture CLI: the template planet has no framework, so it reports itself unavailable.

  capture.py --serve                      the host's capture protocol (docs/capture-protocol.md):
                                          one "unavailable" event, so every suite case is a SKIP
  capture.py --suite FILE [--fixture GLOB] (--out DIR | --stdout | --post URL)

A real planet's load_engine() imports its framework and returns the version, and build(fixture)
builds the fixture's model there, runs it and returns (doc, tensors): see plugins/sklearn/capture.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# The capture SDK in this tree (capture/python); a copy outside it uses the installed
# `pbstream` package instead (pip install <planetbridge>/capture/python).
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

import pbstream  # noqa: E402

PLANET, ENGINE = "template", "none"


def load_engine():
    """Imports the engine and returns its version; ImportError says why it is unavailable."""
    raise ImportError("the template planet has no engine")


def build(fixture):
    raise pbstream.NotApplicable("the template planet has no engine")


def main(argv=None):
    return pbstream.main(PLANET, ENGINE, load_engine, build, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
