from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_json_stdout_keeps_native_and_python_prints_on_stderr():
    # MKL reports its errors with C printf on file descriptor 1, below Python's sys.stdout; C buffers
    # it fully on a pipe (PYTHONUNBUFFERED, set in some shells, must not hide that), so the guard must
    # flush C's buffer before it gives fd 1 back, or the text lands after the JSON.
    script = textwrap.dedent(
        """
        import ctypes, json, os
        from unimixer_plan.stdout_guard import stdout_to_stderr
        libc = ctypes.CDLL(None)
        with stdout_to_stderr():
            libc.printf(b"native printf\\n")
            os.write(1, b"native write\\n")
            print("python print")
        print(json.dumps({"ok": 1}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"ok": 1}\n'
    for line in ("native printf", "native write", "python print"):
        assert line in done.stderr


def test_an_inactive_guard_leaves_stdout_alone():
    script = "from unimixer_plan.stdout_guard import stdout_to_stderr\nwith stdout_to_stderr(False): print('here')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout == "here\n" and done.stderr == ""
