"""Package-level behaviour: what importing ``dse`` sets up."""

import os
import subprocess
import sys


def test_import_turns_mlflow_telemetry_off_unless_the_user_chose():
    """MLflow 3 would send usage telemetry to mlflow-telemetry.io; a study talks only to the stores it names."""
    code = "import dse, os; print(os.environ.get('MLFLOW_DISABLE_TELEMETRY'))"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "true"
    env["MLFLOW_DISABLE_TELEMETRY"] = "false"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "false"
