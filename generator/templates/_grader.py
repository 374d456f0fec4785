# gen's sealed grader (docs/grading.md). It runs inside the task's container after the agent, as
# `python3 -I -S -B -c <this> MODE TEST_DIR SEED [--reward-dir DIR]`, with the task's settings
# and the image's toolchain record (made from the image's layers by gen) as two JSON lines on
# stdin. The bash bootstrap before it has checked, with sha256sum, the interpreter binary and
# the shared libraries it loads against the record, and refused a non-empty /etc/ld.so.preload.
# Here: the rest of the toolchain (the standard library, the site-packages directories, bash,
# sha256sum) is checked against the record; every process the agent left is killed; the tests
# run from a private copy (terminal tasks) or from the repository with its test configuration
# restored (swe tasks), under pytest with plugin autoload off and a reporter of gen's own; the
# verdict is printed as a pytest-style summary made from that report, never from the tests'
# output, and (Harbor) written to the reward file. Standard library only, Python >= 3.7.
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time

MODE, TEST_DIR, SEED = sys.argv[1], sys.argv[2], sys.argv[3]
REWARD_DIR = sys.argv[sys.argv.index("--reward-dir") + 1] if "--reward-dir" in sys.argv else None
_TASK, _RECORD = sys.stdin.read().split("\n", 1)
TASK, RECORD = json.loads(_TASK), json.loads(_RECORD)
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STATUS_WORDS = ("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS")


def uuid_hex():
    with open("/proc/sys/kernel/random/uuid") as f:
        return f.read().strip().replace("-", "")


PRIVATE = "/tmp/gen-grade-" + uuid_hex()


class Refused(Exception):
    pass


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def entry_line(root, rel):
    """One line of a tree digest: type and content of one entry (symlinks not followed)."""
    path = os.path.join(root, rel)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "%s\0l\0%s\n" % (rel, os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return "%s\0d\0\n" % rel
    if stat.S_ISREG(st.st_mode):
        return "%s\0f\0%s\n" % (rel, sha256_file(path))
    return "%s\0o\0%o\n" % (rel, stat.S_IFMT(st.st_mode))


def child_digest(root, name):
    """sha256 over every entry at and below root/name, bytecode caches left out (the grader
    never reads them: -B and a pycache prefix no one can have written)."""
    h = hashlib.sha256()
    h.update(entry_line(root, name).encode("utf-8", "surrogateescape"))
    top = os.path.join(root, name)
    if os.path.isdir(top) and not os.path.islink(top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            rels = sorted(dirnames + filenames)
            for n in rels:
                rel = os.path.relpath(os.path.join(dirpath, n), root)
                h.update(entry_line(root, rel).encode("utf-8", "surrogateescape"))
    return h.hexdigest()


ROOT = "/"  # where the image's filesystem is (tests point it elsewhere)


def check_toolchain():
    for path, digest in sorted(RECORD["files"].items()):
        try:
            ok = os.path.isfile(ROOT + path) and sha256_file(ROOT + path) == digest
        except OSError:
            ok = False
        if not ok:
            raise Refused("/%s differs from the image as built" % path)
    for path, target in sorted(RECORD.get("links", {}).items()):
        if not os.path.islink(ROOT + path) or os.readlink(ROOT + path) != target:
            raise Refused("/%s no longer links to %s" % (path, target))
    if os.path.lexists(ROOT + "etc/ld.so.preload") and "etc/ld.so.preload" not in RECORD["files"]:
        raise Refused("/etc/ld.so.preload was added")
    for root, children in sorted(RECORD["trees"].items()):
        top = ROOT + root
        try:
            names = sorted(n for n in os.listdir(top) if n != "__pycache__")
        except OSError:
            raise Refused("/%s is gone" % root)
        for name in names:
            if name not in children:
                raise Refused("/%s/%s was added to the toolchain" % (root, name))
        for name, digest in sorted(children.items()):
            if name not in names:
                raise Refused("/%s/%s was removed" % (root, name))
            if child_digest(top, name) != digest:
                raise Refused("/%s/%s differs from the image as built" % (root, name))


def process_table():
    """pid -> (parent pid, start time in clock ticks since boot)."""
    table = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                table[int(p)] = (int(fields[1]), int(fields[19]))
            except (OSError, IndexError, ValueError):
                pass
    return table


def table_children(table, pid):
    return [c for c, (pp, _) in table.items() if pp == pid]


def kill_strays():
    """SIGKILL what the agent left running (or the code under test left behind), so nothing
    can write to the output after the tests. Spared: PID 1 and the childless processes it
    started with the container (within 2 s of it: compose's `sh -c "sleep infinity"` has a
    child), this process's ancestors (the harness's shell, tmux: not their other children,
    such as the agent's shell), and the harness's own `docker exec` processes (their parent is
    outside the container) with their children (tb's `tmux wait`)."""
    killed = 0
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for _ in range(50):
        table = process_table()
        keep, pid = {1}, os.getpid()
        while pid in table and pid not in keep:
            keep.add(pid)
            pid = table[pid][0]
        born = table.get(1, (0, 0))[1]
        # what PID 1 started with the container: kept, but not what those started later
        keep.update(p for p, (pp, start) in table.items()
                    if pp == 1 and start - born <= 2 * hz and not table_children(table, p))
        roots = [p for p, (pp, _) in table.items() if pp == 0]
        while roots:
            p = roots.pop()
            if p not in keep:
                keep.add(p)
                roots.extend(c for c, (pp, _) in table.items() if pp == p)
        stray = [p for p in table if p not in keep]
        if not stray:
            break
        for p in stray:
            try:
                os.kill(p, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.05)
    return killed


def git(*args, check=True):
    proc = subprocess.run([RECORD["git"], *args], cwd=TASK["workdir"], env=clean_env(),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    if check and proc.returncode != 0:
        raise Refused("git %s failed: %s" % (" ".join(args[:2]), proc.stdout.strip()[-300:]))
    return proc.stdout


def clean_env(test_dir=None):
    env = {"PATH": SAFE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
           "TZ": "UTC", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "TEST_DIR": test_dir or TEST_DIR}
    if SEED:  # gen validate's fixed randomness
        env.update({"GEN_SEED": SEED, "TEST_SEED": SEED, "PYTHONHASHSEED": "0"})
    env.update(TASK.get("env", {}))
    return env


def prepare_terminal():
    """The task's test files, copied from TEST_DIR into a private directory after checking each
    against its rendered sha256; nothing else in TEST_DIR is used."""
    os.mkdir(PRIVATE, 0o700)
    tests = os.path.join(PRIVATE, "tests")
    for rel, digest in sorted(TASK["test_files"].items()):
        src, dst = os.path.join(TEST_DIR, rel), os.path.join(tests, rel)
        try:
            with open(src, "rb") as f:
                data = f.read()
        except OSError:
            raise Refused("%s is missing" % src)
        if hashlib.sha256(data).hexdigest() != digest:
            raise Refused("%s differs from the task's test file" % src)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
        os.chmod(dst, 0o755 if rel in TASK.get("executable", []) else 0o644)
    ini = os.path.join(PRIVATE, "pytest.ini")
    with open(ini, "w") as f:
        f.write("[pytest]\n")
    return tests, ["-c", ini, "--rootdir", tests, "--confcutdir", tests]


CONFIG_FILES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def prepare_swe():
    """The repository's test configuration as of the base commit (conftest.py files and the
    ini files pytest reads), untracked ones removed; then the test files at the base commit
    and the test patch, as SWE-bench's eval script does."""
    os.mkdir(PRIVATE, 0o700)
    base, work = TASK["base_commit"], TASK["workdir"]
    tracked = set(git("ls-tree", "-r", "--name-only", base).splitlines())
    present = set(git("ls-files", "--cached", "--others").splitlines())
    conf = sorted(p for p in tracked | present
                  if os.path.basename(p) == "conftest.py" or p in CONFIG_FILES)
    restore = [p for p in conf if p in tracked]
    for p in conf:
        if p not in tracked and os.path.lexists(os.path.join(work, p)):
            os.unlink(os.path.join(work, p))
    if restore or TASK["test_files"]:
        git("checkout", base, "--", *sorted(set(restore) | set(TASK["test_files"])))
    patch = os.path.join(PRIVATE, "test.patch")
    with open(patch, "w") as f:
        f.write(TASK["test_patch"])
    out = git("apply", "--verbose", patch, check=False)
    print("\n".join("  | " + ln for ln in defang(out).splitlines()))
    if "error:" in out:
        raise Refused("the test patch does not apply")
    ini = next((p for p in CONFIG_FILES if p in tracked and has_pytest_section(work, p)), None)
    if ini is None:
        ini = os.path.join(PRIVATE, "pytest.ini")
        with open(ini, "w") as f:
            f.write("[pytest]\n")
    return work, ["-c", os.path.join(work, ini), "--rootdir", work, "--confcutdir", work]


def has_pytest_section(work, name):
    try:
        with open(os.path.join(work, name), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    if name in ("pytest.ini", ".pytest.ini"):
        return True
    marker = {"pyproject.toml": "[tool.pytest.ini_options]", "tox.ini": "[pytest]",
              "setup.cfg": "[tool:pytest]"}[name]
    return marker in text


REPORTER = r'''
import json, sys
class GenReport:
    def __init__(self, path):
        self.out = open(path, "w")
    def pytest_runtest_logreport(self, report):
        self.out.write(json.dumps({"id": report.nodeid, "when": report.when,
            "outcome": report.outcome, "xfail": hasattr(report, "wasxfail")}) + "\n")
        self.out.flush()
    def pytest_collectreport(self, report):
        if report.failed:
            self.out.write(json.dumps({"id": report.nodeid or "<collection>",
                "when": "collect", "outcome": "failed", "xfail": False}) + "\n")
            self.out.flush()
'''


def run_pytest(cwd, forced, test_dir):
    report = os.path.join(PRIVATE, "report.jsonl")
    boot = (
        "import sys, site\n"
        "for d in %r:\n    site.addsitedir(d)\n"
        "%s\n"
        "import pytest\n"
        "sys.argv[0] = 'pytest'\n"
        "sys.exit(pytest.main(sys.argv[1:], plugins=[GenReport(%r)]))\n"
        % (["/" + d for d in RECORD["site_dirs"]], REPORTER, report))
    args = [a.replace("{TEST_DIR}", test_dir) for a in TASK["pytest_args"]]
    argv = [RECORD["python"], "-I", "-S", "-B", "-X", "pycache_prefix=" + PRIVATE + "/pyc",
            "-c", boot, "-p", "no:cacheprovider", *forced, *args]
    with open(os.path.join(PRIVATE, "output.txt"), "w+") as log:
        try:
            code = subprocess.run(argv, cwd=cwd, env=clean_env(test_dir), stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT,
                                  timeout=TASK.get("timeout_sec")).returncode
        except subprocess.TimeoutExpired:
            code = None
        log.seek(0)
        output = log.read()
    results = {}
    try:
        with open(report) as f:
            for line in f:
                r = json.loads(line)
                results[r["id"]] = merge(results.get(r["id"]), r)
    except (OSError, ValueError):
        pass
    return code, output, results


def merge(prev, r):
    """pytest -rA's status of a test from its setup/call/teardown reports."""
    if r["when"] == "collect":
        return "ERROR"
    if r["outcome"] == "skipped":
        status = "XFAIL" if r["xfail"] else "SKIPPED"
    elif r["outcome"] == "failed":
        status = "FAILED" if r["when"] == "call" else "ERROR"
    else:
        status = "XPASS" if r["xfail"] else "PASSED"
    if prev is None or (prev == "PASSED" and status != "PASSED") or status == "ERROR":
        return status
    return prev


def defang(text):
    """Test output shown for the reader, unable to pass for the summary or the markers."""
    return (text.replace(">>>>>", ">>>>_").replace("short test summary info",
                                                     "short test summary (raw output)"))


def write_reward(value):
    if REWARD_DIR is None:
        return
    os.makedirs(REWARD_DIR, exist_ok=True)
    for name in ("reward.txt", "reward.json"):
        p = os.path.join(REWARD_DIR, name)
        if os.path.isdir(p) and not os.path.islink(p):
            import shutil
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)
    tmp = os.path.join(REWARD_DIR, ".reward.%s.tmp" % uuid_hex())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write("%d\n" % value)
    os.rename(tmp, os.path.join(REWARD_DIR, "reward.txt"))


def finish(results, refused=None):
    marker_swe = MODE == "swe"
    if marker_swe:
        print(">>>>> Start Test Output")
    print("=" * 29 + " short test summary info " + "=" * 29)
    for test_id in sorted(results):
        print("%s %s" % (results[test_id], test_id))
    if refused:
        print("FAILED gen::sealed-grading - %s" % refused)
    if marker_swe:
        print(">>>>> End Test Output")
    ok = not refused and bool(results) and all(
        s in ("PASSED", "SKIPPED", "XFAIL") for s in results.values())
    write_reward(1 if ok else 0)
    sys.stdout.flush()
    os._exit(0 if ok else 1)


def main():
    results = {}
    try:
        check_toolchain()
        killed = kill_strays()
        if killed:
            print("gen: killed %d process(es) left running in the container" % killed)
        if MODE == "swe":
            cwd, forced = prepare_swe()
            test_dir = TEST_DIR
        else:
            test_dir, forced = prepare_terminal()
            cwd = TASK["workdir"]
        code, output, results = run_pytest(cwd, forced, test_dir)
        kill_strays()
        print("-" * 30 + " test output (raw) " + "-" * 30)
        print("\n".join("  | " + ln for ln in defang(output).splitlines()[-400:]))
        if code is None:
            raise Refused("the tests ran past their time limit")
        if not results:
            raise Refused("pytest reported no test (exit code %s)" % code)
        if MODE == "swe" and TASK.get("test_files"):
            git("checkout", TASK["base_commit"], "--", *TASK["test_files"], check=False)
        finish(results)
    except Refused as exc:
        print("gen: grading refused: %s" % exc)
        finish(results, str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure of the grader is a failed run
        print("gen: the grader failed: %r" % (exc,))
        finish(results, "grader error: %s" % type(exc).__name__)


main()
