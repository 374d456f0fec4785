"""Every path of a project's state directory, `.gen/`, relative to the project root: the one place
that knows where each stage keeps its state (so gc, shard and release need not import a stage to
learn where it writes). Nothing in `.gen/` is an input: delete it and the commands rebuild it.

    .gen/cas/                     the content-addressed store (default; $GEN_CAS elsewhere)
    .gen/apt/                     apt's indices and lists while locking (lock, baselock)
    .gen/fetch/names.json         the file name each fetched artifact was published under
    .gen/cache/artifacts.json     the registry artifact cache's index (gen cache push)
    .gen/base/                    base images gen built (gen base build)
    .gen/build/                   gen build: images.json, oci/<key>/, cache/<key>.json, buildah/
    .gen/verify/report.json       gen verify-reproducible's report (its two builds: .tmp-*)
    .gen/validate/report.json     gen validate's report
    .gen/render-cache.json        render's stat cache
    .gen/infra/                   gen infra's registry and dockerd ($GEN_INFRA elsewhere)
    .gen/keys/                    gen keygen's default output
"""

from __future__ import annotations

from pathlib import Path

STATE = Path(".gen")
CAS = STATE / "cas"
APT = STATE / "apt"
FETCH_NAMES = STATE / "fetch" / "names.json"
ARTIFACT_INDEX = STATE / "cache" / "artifacts.json"
BASE = STATE / "base"
BUILD = STATE / "build"
IMAGES = BUILD / "images.json"
BUILD_OCI = BUILD / "oci"
BUILD_CACHE = BUILD / "cache"
BUILD_TOOLCHAIN = BUILD / "toolchain"  # sealed grading's toolchain records, per image digest
VERIFY = STATE / "verify"
VERIFY_REPORT = VERIFY / "report.json"
VERIFY_TEMP_PREFIX = ".tmp-"  # verify's two builds' work dirs in .gen/verify (gc removes leftovers)
VALIDATE_REPORT = STATE / "validate" / "report.json"
VALIDATE_STRENGTH = STATE / "validate" / "strength.json"  # gen validate --strength's report
VALIDATE_STRENGTH_TEXT = STATE / "validate" / "strength.txt"  # the same, for people
RENDER_CACHE = STATE / "render-cache.json"
INFRA = STATE / "infra"
KEYS = STATE / "keys"
# render's staging dir beside dataset/ (`dataset/.gen-staging` or `.dataset.gen-staging`): not in
# .gen/, but gen's own, and gc removes a leftover one
RENDER_STAGING = ".gen-staging"
