"""TensorFlow's start-up lines stay off the terminal of in-process commands (dse export)."""

import subprocess
import sys

SNIPPET = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="%(name)s %(message)s")
from dse._stderr import import_tensorflow_quietly
import_tensorflow_quietly()
import tensorflow
print("imported", tensorflow.__version__)
"""


def test_tensorflow_start_up_lines_go_to_the_debug_log():
    proc = subprocess.run([sys.executable, "-c", SNIPPET], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "imported" in proc.stdout
    assert "absl::InitializeLog" not in proc.stderr and "oneDNN" not in proc.stderr, proc.stderr
    # the lines are kept, in the DEBUG log, not dropped
    assert "dse.tensorflow tensorflow:" in proc.stdout
