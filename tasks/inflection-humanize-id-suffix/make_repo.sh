#!/bin/bash
# Provenance of source.bundle: rebuilds the repository deterministically.
#   pip download --no-deps --no-binary :all: inflection==0.5.1 -d /tmp/dl
#   ./make_repo.sh /tmp/dl/inflection-0.5.1.tar.gz /tmp/inflection-repo
#   (cd /tmp/inflection-repo && git bundle create source.bundle --all)
# HEAD must be 41e18b31c29471095cfbe70ac0ab4633ca5c17fc (the task's base_commit).
set -euo pipefail
SDIST=$(realpath "${1:?path to inflection-0.5.1.tar.gz}")
OUT=${2:?output dir}
echo "1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417  $SDIST" | sha256sum -c --quiet
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$OUT"
tar xzf "$SDIST" --strip-components=1
# drop sdist build artefacts that are not part of the upstream source tree
rm -rf PKG-INFO inflection.egg-info docs/__pycache__
find . -type f -exec chmod 0644 {} +
export GIT_AUTHOR_NAME="gen maintainers" GIT_AUTHOR_EMAIL="gen@example.invalid"
export GIT_COMMITTER_NAME="gen maintainers" GIT_COMMITTER_EMAIL="gen@example.invalid"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_SYSTEM=/dev/null TZ=UTC
git -c init.defaultBranch=main init -q .
git config core.autocrlf false
git config commit.gpgsign false
git add -A
GIT_AUTHOR_DATE="2020-08-22T12:00:00+00:00" GIT_COMMITTER_DATE="2020-08-22T12:00:00+00:00" \
  git commit -q -m "Import inflection 0.5.1 (upstream sdist)"

# ---- commit 2: the buggy "feature" commit (base_commit) ----
python3 - <<'PY'
import re, pathlib
p = pathlib.Path("inflection/__init__.py")
s = p.read_text()
old_doc = '''    """
    Capitalize the first word and turn underscores into spaces and strip a
    trailing ``"_id"``, if any. Like :func:`titleize`, this is meant for
    creating pretty output.

    Examples::

        >>> humanize("employee_salary")
        'Employee salary'
        >>> humanize("author_id")
        'Author'

    """
    word = re.sub(r"_id$", "", word)
'''
new_doc = '''    """
    Capitalize the first word, turn underscores into spaces and strip leading
    underscores and a trailing ``"_id"``, if any. Like :func:`titleize`, this
    is meant for creating pretty output.

    Examples::

        >>> humanize("employee_salary")
        'Employee salary'
        >>> humanize("author_id")
        'Author'
        >>> humanize("_created_at")
        'Created at'

    """
    word = word.lstrip('_')
    word = re.sub(r"_?id$", "", word)
'''
assert old_doc in s
s = s.replace(old_doc, new_doc)
p.write_text(s)
t = pathlib.Path("test_inflection.py")
s = t.read_text()
old = '''    ("underground",           "Underground"),
)
'''
new = '''    ("underground",           "Underground"),
    ("_created_at",           "Created at"),
    ("__private_name",        "Private name"),
)
'''
assert old in s
t.write_text(s.replace(old, new))
PY
git add -A
GIT_AUTHOR_DATE="2020-09-14T09:30:00+00:00" GIT_COMMITTER_DATE="2020-09-14T09:30:00+00:00" \
  git commit -q -F - <<'MSG'
Strip leading underscores in humanize()

Rails' humanize drops leading underscores, so "_created_at" becomes
"Created at". Do the same, and make sure the id suffix is still removed
once the leading underscores are gone.
MSG
git rev-parse HEAD
