"""The Python capture SDK's writer: frames stream tensors from their own memory."""

import os
import sys
import tempfile
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pbstream  # noqa: E402


class WriterTest(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(3)
        self.doc = {"format": "planetbridge.stream", "version": 1, "planet": "p", "model_id": "m"}
        self.tensors = {"w": rng.standard_normal((3, 5)).astype(np.float32),
                        "t": rng.standard_normal((4, 3)).astype(np.float32).T,  # not C-ordered
                        "ids": np.arange(7, dtype=np.int64),
                        "s": np.float64(2.5)}

    def test_write_gives_the_bytes_encode_frame_gives(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.pbstream")
            pbstream.Stream(self.doc, self.tensors).write(path)
            with open(path, "rb") as f:
                written = f.read()
        self.assertEqual(written, pbstream.encode_frame(self.doc, self.tensors))
        self.assertEqual(len(written) % pbstream.ALIGN, 0)

    def test_write_replaces_a_file_whole_and_leaves_a_mapped_reader_intact(self):
        import mmap
        import threading
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.pbstream")
            pbstream.Stream(self.doc, self.tensors).write(path)
            with open(path, "rb") as f:
                old = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
            before = bytes(old)
            small = dict(self.doc, model_id="other")
            pbstream.Stream(small, {"w": np.zeros(1, np.float32)}).write(path)
            self.assertEqual(bytes(old), before)  # a truncation in place would fault this read
            old.close()
            with open(path, "rb") as f:
                self.assertEqual(f.read(), pbstream.encode_frame(small, {"w": np.zeros(1, np.float32)}))
            # A failed write leaves the old file and no temporary.
            with self.assertRaisesRegex(ValueError, "unsupported dtype"):
                pbstream.Stream(self.doc, {"b": np.zeros(2, np.complex64)}).write(path)
            self.assertEqual(sorted(os.listdir(tmp)), ["m.pbstream"])
            # A fifo is written through, not replaced.
            fifo = os.path.join(tmp, "f.fifo")
            os.mkfifo(fifo)
            got = []
            reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
            reader.start()
            pbstream.Stream(self.doc, self.tensors).write(fifo)
            reader.join()
            self.assertEqual(got[0], pbstream.encode_frame(self.doc, self.tensors))

    def test_contiguous_tensors_are_sent_from_their_own_memory(self):
        frame = pbstream._Frame(self.doc, self.tensors)
        views = {name: view for name, view in zip(sorted(self.tensors), frame.views)}
        self.assertTrue(np.shares_memory(np.frombuffer(views["w"], np.float32), self.tensors["w"]))
        self.assertTrue(np.shares_memory(np.frombuffer(views["ids"], np.int64), self.tensors["ids"]))
        # A transposed view needs one C-ordered copy.
        self.assertFalse(np.shares_memory(np.frombuffer(views["t"], np.float32), self.tensors["t"]))
        self.assertEqual(frame.size, sum(len(bytes(c)) for c in frame.chunks()))

    def test_a_bad_tensor_fails_before_anything_is_written(self):
        with self.assertRaisesRegex(ValueError, 'tensor "b": unsupported dtype complex64'):
            pbstream._Frame(self.doc, {"a": np.zeros(2, np.float32), "b": np.zeros(2, np.complex64)})


if __name__ == "__main__":
    unittest.main()
