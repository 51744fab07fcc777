"""The secured dev node keeps its secrets private: private keys, password hashes, role grants and
the keystore are 0600, the certificate archives (which hold the keys) are gone, and the CA
certificate stays readable for clients."""

from __future__ import annotations

import os
import stat

from devtools import es as devnode


def test_secured_node_files_are_private(es_secure: devnode.NodeInfo) -> None:
    rd = devnode.run_dir(f"pytest-sec-{os.getpid()}")
    config = rd / "config"
    keys = sorted((config / "certs").rglob("*.key"))
    assert {k.name for k in keys} == {"ca.key", "node.key"}
    private = [*keys, *(config / n for n in ("users", "users_roles", "roles.yml", "elasticsearch.keystore"))]
    modes = {str(p.relative_to(rd)): stat.S_IMODE(p.stat().st_mode) for p in private}
    assert modes == dict.fromkeys(modes, 0o600), modes
    assert not (rd / "ca.zip").exists() and not (rd / "node.zip").exists()
    ca = config / "certs" / "ca" / "ca.crt"
    assert stat.S_IMODE(ca.stat().st_mode) == 0o644
    assert es_secure.ca_cert == str(ca)
