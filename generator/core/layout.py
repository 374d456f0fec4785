"""Names in a rendered task directory that several stages rely on.

Render writes them; build stages the image's build context from them; export copies that
context for tasks whose image is not built yet. One definition, so the three cannot drift.
"""

from __future__ import annotations

__all__ = ["APT_SUMS", "NOT_IN_CONTEXT", "PYTHON_REQUIREMENTS", "in_build_context"]

# The locked package lists the Dockerfile installs from (build context files, beside it):
# sha256 + file name of each .deb, and pip's --require-hashes requirements.
APT_SUMS = "apt.sha256"
PYTHON_REQUIREMENTS = "requirements.txt"

# Rendered files that are not part of the image's build context (the agent never sees them).
NOT_IN_CONTEXT = ("tests", "solution.sh", "solution", "run-tests.sh", "eval.sh", "task.yaml",
                  "docker-compose.yaml", "README.md")


def in_build_context(rel: str) -> bool:
    """Whether a rendered file (POSIX path relative to its task dir) is in the build context."""
    return rel.split("/", 1)[0] not in NOT_IN_CONTEXT
