"""Build and run the image with rootful podman on a machine that reaches no container registry.

Machines like the test machine reach PyPI and a Debian mirror but no registry, so the image starts
from a local Debian base made with ``mmdebstrap`` from the mirror apt already uses. podman needs a
few settings there (``containers.conf``): runc, because crun fails on hybrid cgroups; cgroupfs and a
file events log, because there is no systemd; lower default ulimits than root may set. pip inside the
build gets the host's CA bundle and the host's own pip settings (local indexes, find-links,
constraints, mounted read-only at the same paths) and the llama-cpp-python wheel pip built for the
host venv, so that llama.cpp is not compiled again for every image.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/debian:bookworm"
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
#: pip settings handed to the build (as the Dockerfile's ARGs of the same name).
PIP_KEYS = ("index-url", "extra-index-url", "find-links", "constraint", "cert")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IN_BUILD = "/etc/ssl/host-ca-bundle.crt"
WHEELS_IN_BUILD = "/host-wheels"
CACHE_IN_BUILD = "/host-pip-cache"


@dataclass(frozen=True)
class Podman:
    """The ``podman`` command with this module's ``containers.conf``."""

    conf: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def configured(cls, directory: Path) -> Podman:
        conf = directory / "containers.conf"
        conf.write_text(CONTAINERS_CONF, encoding="utf-8")
        return cls(conf, {**os.environ, "CONTAINERS_CONF": str(conf)})

    def __call__(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-4000:]}")
        return result

    def image_exists(self, image: str) -> bool:
        return self("image", "exists", image, check=False).returncode == 0

    def image_id(self, image: str) -> str | None:
        """The id of the image ``image`` names, or None when there is none."""
        result = self("image", "inspect", "--format", "{{.Id}}", image, check=False)
        if result.returncode != 0:
            return None
        return result.stdout.strip() or None


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt uses here (deb822 ``.sources`` or one-line ``.list`` files)."""
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.sources"))]
    files += sorted((apt_dir / "sources.list.d").glob("*.list"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        uris: list[str] = re.findall(r"^URIs:\s*(\S+)", text, re.MULTILINE)
        uris += re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.MULTILINE)
        for uri in uris:
            if uri.rstrip("/").endswith("/debian"):
                return uri
    raise RuntimeError(f"no Debian mirror found in {', '.join(map(str, files))}")


def ensure_base_image(podman: Podman, image: str = BASE_IMAGE) -> bool:
    """Make ``image`` (minimal Debian bookworm, no registry involved) unless it exists; True if made."""
    if podman.image_exists(image):
        return False
    if shutil.which("mmdebstrap") is None:
        raise RuntimeError("mmdebstrap is needed to make the local base image: apt-get install -y mmdebstrap")
    debootstrap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", "bookworm", "-", debian_mirror()],
        stdout=subprocess.PIPE,
    )
    imported = subprocess.run(
        ["podman", "import", "-", image], stdin=debootstrap.stdout, env=podman.env, capture_output=True, check=False
    )
    assert debootstrap.stdout is not None
    debootstrap.stdout.close()
    if debootstrap.wait(timeout=600) != 0 or imported.returncode != 0:
        raise RuntimeError(f"making {image} failed: {imported.stderr.decode(errors='replace')[-2000:]}")
    return True


def host_pip_settings(python: str = sys.executable) -> dict[str, str]:
    """The pip settings in force here, by key: from its config files, overridden by ``PIP_…``
    variables (``pip config list`` shows those as ``:env:``)."""
    listed = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False)
    files: dict[str, str] = {}
    environment: dict[str, str] = {}
    for line in listed.stdout.splitlines():
        match = re.match(r"^([^.]*)\.([a-z-]+)='(.*)'$", line.strip())
        if match and match[2] in PIP_KEYS:
            (environment if match[1] == ":env:" else files)[match[2]] = match[3]
    return {**files, **environment}


def local_paths(values: Iterable[str]) -> set[Path]:
    """The files and folders on this machine that pip settings refer to (``file://`` or absolute).
    A local index ``…/simple`` links to files beside it, so its parent folder is the one needed."""
    paths: set[Path] = set()
    for value in values:
        for item in value.split():
            if not item.startswith(("file://", "/")):
                continue
            path = Path(item.removeprefix("file://")).resolve()
            if path.exists():
                paths.add(path.parent if path.name == "simple" and path.is_dir() else path)
    return paths


def pip_cache_dir(python: str = sys.executable) -> Path | None:
    """pip's cache folder here, if it has one."""
    listed = subprocess.run([python, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False)
    path = Path(listed.stdout.strip()) if listed.returncode == 0 and listed.stdout.strip() else None
    return path if path is not None and path.is_dir() else None


def host_llama_wheel(python: str = sys.executable) -> Path | None:
    """The llama-cpp-python wheel pip built for this machine's venv (same version as installed), from
    pip's wheel cache."""
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None
    cache = pip_cache_dir(python)
    if cache is None:
        return None
    wheels = sorted(cache.rglob(f"llama_cpp_python-{version}-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1] if wheels else None


@dataclass
class BuildPlan:
    """The ``podman build`` arguments: pip settings as build args, local paths mounted read-only."""

    args: list[str] = field(default_factory=list)
    wheel: Path | None = None

    def mount(self, source: Path, target: str | Path | None = None) -> None:
        self.args += ["--volume", f"{source.resolve()}:{target or source}:ro"]

    def build_arg(self, name: str, value: str) -> None:
        self.args += ["--build-arg", f"{name}={value}"]


def build_plan(wheel_dir: Path, wheel: Path | None) -> BuildPlan:
    """Hand the host's CA bundle, its pip settings and ``wheel`` (copied into ``wheel_dir``, with a
    constraint pinning its version) to the build."""
    plan = BuildPlan(wheel=wheel)
    pip = host_pip_settings()
    cert = Path(pip.pop("cert", str(HOST_CA_BUNDLE)))
    if cert.is_file():
        plan.mount(cert, CA_IN_BUILD)
        plan.build_arg("PIP_CERT", CA_IN_BUILD)
    find_links, constraints = pip.pop("find-links", "").split(), pip.pop("constraint", "").split()
    if wheel is not None:
        shutil.copy2(wheel, wheel_dir / wheel.name)
        version = wheel.name.split("-")[1]
        (wheel_dir / "constraints.txt").write_text(f"llama-cpp-python=={version}\n", encoding="utf-8")
        plan.mount(wheel_dir, WHEELS_IN_BUILD)
        find_links.insert(0, WHEELS_IN_BUILD)
        constraints.insert(0, f"{WHEELS_IN_BUILD}/constraints.txt")
    cache = pip_cache_dir()
    if cache is not None:  # downloads and built wheels of the host venv: no package is fetched twice
        plan.args += ["--volume", f"{cache}:{CACHE_IN_BUILD}"]
        plan.build_arg("PIP_CACHE_DIR", CACHE_IN_BUILD)
    for path in sorted(local_paths([*find_links, *constraints, *pip.values()])):
        plan.mount(path)
    for name, values in (("PIP_FIND_LINKS", find_links), ("PIP_CONSTRAINT", constraints)):
        if values:
            plan.build_arg(name, " ".join(values))
    for key, value in pip.items():
        plan.build_arg("PIP_" + key.upper().replace("-", "_"), value)
    return plan


def build_image(
    podman: Podman, tag: str, plan: BuildPlan, extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """``podman build`` the repository's Dockerfile on the local base (docker format keeps HEALTHCHECK).

    The build stage gets a tag of its own (``tag`` + ``-build``), so that it stays in the layer cache
    for the next build, and the images both tags held before, now superseded, are removed: each run
    whose sources had changed left about 2.8 GB behind without a tag (62 images, 58 GB, after a day of
    test runs filled this machine's disk)."""
    stage_tag = f"{tag}-build"
    before = {name: podman.image_id(name) for name in (tag, stage_tag)}
    build = ["build", "--format", "docker", "--network", "host", "--build-arg", f"BASE={BASE_IMAGE}"]
    build += [*plan.args, *extra]
    podman(*build, "--target", "build", "--tag", stage_tag, str(REPO), timeout=3600)
    result = podman(*build, "--tag", tag, str(REPO), timeout=3600)
    for name, old in before.items():
        if old is not None and old != podman.image_id(name):
            podman("rmi", old, check=False)  # still used by a container: it stays, as it did before
    return result
