"""Tests for the template capture: --serve answers "unavailable", which the host reports as SKIP.

Run: /usr/bin/python3 -m unittest discover -s plugins/template/capture -p 'test_*.py'
"""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

from pbstream_testing import read_frames, run_serve  # noqa: E402

CAPTURE = os.path.join(HERE, "capture.py")


class CaptureTest(unittest.TestCase):
    def test_serve_reports_unavailable(self):
        r = run_serve(CAPTURE, {"format": "planetbridge.capture-request", "version": 1, "fixtures": [{"id": "x"}]})
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        frames = read_frames(r.stdout)
        self.assertEqual(len(frames), 1)
        self.assertEqual(frames[0][0]["event"], "unavailable")
        self.assertEqual(frames[0][0]["reason"], "the template planet has no engine")


if __name__ == "__main__":
    unittest.main()
