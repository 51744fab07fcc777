"""The sink's dead-letter file and ``replay``: a shipper waiting for the file while a replay
replaces it writes into the new file, never into the replaced one."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path
from typing import IO

from shipper.dead_letters import open_dead_letters


def test_a_writer_waiting_on_a_replay_opens_the_file_that_replaced_it(tmp_path: Path) -> None:
    path = tmp_path / "dead.ndjson"
    path.write_bytes(b'{"old": 1}\n')
    replaying = open(path, "rb")  # noqa: SIM115
    fcntl.flock(replaying.fileno(), fcntl.LOCK_EX)
    opened: list[IO[bytes]] = []
    writer = threading.Thread(target=lambda: opened.append(open_dead_letters(path)))
    writer.start()
    writer.join(0.3)
    assert writer.is_alive()  # waits for the replay's lock
    tmp = tmp_path / ".dead.replay"
    tmp.write_bytes(b'{"kept": 1}\n')
    os.replace(tmp, path)
    replaying.close()  # releases the lock on the replaced file
    writer.join(5)
    with opened[0] as fh:
        fh.write(b'{"new": 1}\n')
    assert path.read_bytes() == b'{"kept": 1}\n{"new": 1}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_writer_waiting_on_a_replay_that_removed_the_file_creates_it_again(tmp_path: Path) -> None:
    path = tmp_path / "dead.ndjson"
    path.write_bytes(b"")
    replaying = open(path, "rb")  # noqa: SIM115
    fcntl.flock(replaying.fileno(), fcntl.LOCK_EX)
    opened: list[IO[bytes]] = []
    writer = threading.Thread(target=lambda: opened.append(open_dead_letters(path)))
    writer.start()
    writer.join(0.3)
    path.unlink()
    replaying.close()
    writer.join(5)
    with opened[0] as fh:
        fh.write(b'{"new": 1}\n')
    assert path.read_bytes() == b'{"new": 1}\n'
