"""Tests for posting streams to `planetbridge serve` (pbstream.post, Stream.post), against a stub
server that records what it got and answers as told. The real server is tested end to end in
tests/test_server.cpp.

Run: /usr/bin/python3 -m unittest discover -s plugins/pytorch/capture -p 'test_*.py'
"""

import http.server
import json
import os
import socket
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.normpath(os.path.join(HERE, "..", "..", "..", "capture", "python"))]

import pbstream  # noqa: E402


class Stub(http.server.BaseHTTPRequestHandler):
    reply = (200, "application/json", b"{}")
    seen = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Stub.seen.append((self.path, self.headers["Content-Type"], body))
        status, ctype, payload = Stub.reply
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class PostTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def setUp(self):
        Stub.seen = []

    def test_posts_the_frame_to_the_planets_endpoint(self):
        result = {"fixture": "m", "verdict": "PASS", "max_abs": 1e-7, "max_rel": 2e-6, "reload_identical": True,
                  "id": "20260101T000000Z-000001"}
        Stub.reply = (200, "application/json", json.dumps(result).encode())
        got = pbstream.post(self.url + "/", b"PBSTRM\x00\x01frame", "py torch", atol=1e-4, rtol=0)
        self.assertEqual(got, result)
        path, ctype, body = Stub.seen[0]
        self.assertEqual(path, "/api/v1/loom/stream/py%20torch?atol=0.0001&rtol=0.0")
        self.assertEqual(ctype, "application/x-planetbridge-stream")
        self.assertEqual(body, b"PBSTRM\x00\x01frame")
        self.assertEqual(pbstream.verdict_line(got),
                         "m: PASS max|diff| 1.00e-07 max rel 2.00e-06 · run 20260101T000000Z-000001")

    def test_a_refusal_names_the_servers_path_and_message(self):
        Stub.reply = (400, "application/json", b'{"error": {"path": "tensors.x.b64", "message": "decodes to 3 bytes"}}')
        with self.assertRaises(pbstream.PostError) as cm:
            pbstream.post(self.url, b"x", "pytorch")
        e = cm.exception
        self.assertEqual((e.status, e.path), (400, "tensors.x.b64"))
        self.assertEqual(str(e), "tensors.x.b64: HTTP 400: decodes to 3 bytes")

    def test_an_error_that_is_not_json_keeps_its_text(self):
        Stub.reply = (502, "text/plain", b"bad gateway\n")
        with self.assertRaises(pbstream.PostError) as cm:
            pbstream.post(self.url, b"x", "pytorch")
        self.assertEqual((cm.exception.status, cm.exception.path, str(cm.exception)), (502, "", "HTTP 502: bad gateway"))

    def test_no_server_is_status_none(self):
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(pbstream.PostError) as cm:
            pbstream.post(f"http://127.0.0.1:{port}", b"x", "pytorch", timeout=5)
        self.assertIsNone(cm.exception.status)
        self.assertIn(f"cannot reach http://127.0.0.1:{port}", str(cm.exception))

    def test_verdict_line_of_an_error_and_a_failure(self):
        self.assertEqual(pbstream.verdict_line({"fixture": "m", "verdict": "ERROR", "id": "i", "message": "no Conv9d"}),
                         "m: ERROR · run i · no Conv9d")
        line = pbstream.verdict_line({"fixture": "m", "verdict": "FAIL", "id": "i", "max_abs": 0.5, "max_rel": 0.1,
                                      "reload_identical": False, "first_divergence": 'node "_0"'})
        self.assertEqual(line, 'm: FAIL max|diff| 5.00e-01 max rel 1.00e-01 (reload DIFFERS) · run i · '
                               'first diverging node: node "_0"')

    def test_stream_post_sends_its_own_frame_and_planet(self):
        import numpy as np
        import pb_torch
        doc = pbstream.stream_doc("pytorch", "1", "torch", "m", {}, ["x"], ["x"])
        stream = pb_torch.Stream(doc, {"x": np.zeros((2, 3), np.float32)})
        Stub.reply = (200, "application/json", b'{"verdict": "EXACT"}')
        self.assertEqual(stream.post(self.url)["verdict"], "EXACT")
        path, _, body = Stub.seen[0]
        self.assertEqual(path, "/api/v1/loom/stream/pytorch")
        self.assertEqual(body, stream.to_bytes())

    def test_sklearn_stream_post_too(self):
        sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "sklearn", "capture")))
        try:
            import pb_sklearn
        except ImportError as e:
            self.skipTest(f"scikit-learn: {e}")
        import numpy as np
        doc = pbstream.stream_doc("sklearn", "1", "scikit-learn", "m", {}, ["X"], ["X"])
        stream = pb_sklearn.Stream(doc, {"X": np.zeros((2, 3))})
        Stub.reply = (200, "application/json", b'{"verdict": "PASS"}')
        self.assertEqual(stream.post(self.url, timeout=5)["verdict"], "PASS")
        self.assertEqual(Stub.seen[0][0], "/api/v1/loom/stream/sklearn")
        self.assertEqual(Stub.seen[0][2], stream.to_bytes())


if __name__ == "__main__":
    unittest.main()
