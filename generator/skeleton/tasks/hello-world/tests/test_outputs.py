"""Black-box tests for /app/greet.py."""

import subprocess
import sys


def greet(*args):
    return subprocess.run([sys.executable, "/app/greet.py", *args],
                          capture_output=True, text=True, timeout=30)


def test_greets_by_name():
    result = greet("Ada")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, Ada!\n"


def test_greets_the_world_without_a_name():
    result = greet()
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
