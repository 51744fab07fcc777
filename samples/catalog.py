"""Static content of the sample day: benign binaries, DLLs, drivers, domains, and the attack's
constants. Everything here is data; hashes of benign binaries are derived from their path with a
fixed salt, so they are stable across runs and seeds (and land in the allowlist)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DOMAIN_FQDN = "corp.example"
DOMAIN_NETBIOS = "CORP"
DOMAIN_SID = "S-1-5-21-3623811015-3361044348-30300820"

MS_PRODUCT = "Microsoft® Windows® Operating System"
MS_COMPANY = "Microsoft Corporation"
WIN_BUILD = "10.0.19041.5072 (WinBuild.160101.0800)"


@dataclass(frozen=True, slots=True)
class Binary:
    """A PE file as Sysmon describes it (version info, hashes, signature)."""

    path: str
    original: str
    description: str
    product: str
    company: str
    version: str
    sha1: str
    md5: str
    sha256: str
    imphash: str
    signed: bool = True
    signature: str = "Microsoft Windows"

    @property
    def name(self) -> str:
        return self.path.rsplit("\\", 1)[-1]

    @property
    def hashes(self) -> str:
        return f"SHA1={self.sha1},MD5={self.md5},SHA256={self.sha256},IMPHASH={self.imphash}"

    @property
    def signature_status(self) -> str:
        return "Valid" if self.signed else "Unavailable"


def _benign(
    path: str,
    original: str,
    description: str,
    product: str = MS_PRODUCT,
    company: str = MS_COMPANY,
    version: str = WIN_BUILD,
    signature: str = "Microsoft Windows",
) -> Binary:
    key = ("sysmon-detect benign sample " + path.lower()).encode()
    return Binary(
        path=path,
        original=original,
        description=description,
        product=product,
        company=company,
        version=version,
        sha1=hashlib.sha1(key).hexdigest().upper(),
        md5=hashlib.md5(key).hexdigest().upper(),
        sha256=hashlib.sha256(key).hexdigest().upper(),
        imphash=hashlib.md5(key + b"imphash").hexdigest().upper(),
        signature=signature,
    )


S32 = "C:\\Windows\\System32\\"
OFFICE = "C:\\Program Files\\Microsoft Office\\root\\Office16\\"
CHROME = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe"
EDGE = "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe"
DEFENDER = "C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.24090.11-0\\MsMpEng.exe"
OFFICE_VER = "16.0.18129.20158"
OFFICE_PRODUCT = "Microsoft Office"

_B = [
    # pre-log system processes (running before the log starts: realistic chain breaks)
    _benign(S32 + "smss.exe", "smss.exe", "Windows Session Manager"),
    _benign(S32 + "csrss.exe", "CSRSS.Exe", "Client Server Runtime Process"),
    _benign(S32 + "wininit.exe", "wininit.exe", "Windows Start-Up Application"),
    _benign(S32 + "services.exe", "services.exe", "Services and Controller app"),
    _benign(S32 + "lsass.exe", "lsass.exe", "Local Security Authority Process"),
    _benign(S32 + "winlogon.exe", "WINLOGON.EXE", "Windows Logon Application"),
    _benign(S32 + "svchost.exe", "svchost.exe", "Host Process for Windows Services"),
    _benign(S32 + "spoolsv.exe", "spoolsv.exe", "Spooler SubSystem App"),
    _benign(
        DEFENDER,
        "MsMpEng.exe",
        "Antimalware Service Executable",
        product=MS_PRODUCT,
        version="4.18.24090.11 (WinBuild.160101.0800)",
        signature="Microsoft Windows Publisher",
    ),
    # processes the log sees start
    _benign(S32 + "userinit.exe", "USERINIT.EXE", "Userinit Logon Application"),
    _benign("C:\\Windows\\explorer.exe", "EXPLORER.EXE", "Windows Explorer"),
    _benign(S32 + "wuauclt.exe", "wuauclt.exe", "Windows Update"),
    _benign(S32 + "taskhostw.exe", "taskhostw.exe", "Host Process for Windows Tasks"),
    _benign(S32 + "cmd.exe", "Cmd.Exe", "Windows Command Processor"),
    _benign(
        S32 + "WindowsPowerShell\\v1.0\\powershell.exe",
        "PowerShell.EXE",
        "Windows PowerShell",
    ),
    _benign(S32 + "dllhost.exe", "dllhost.exe", "COM Surrogate"),
    _benign(S32 + "splwow64.exe", "splwow64.exe", "Print driver host for applications"),
    _benign(
        S32 + "SearchProtocolHost.exe", "SearchProtocolHost.exe", "Microsoft Windows Search Protocol Host"
    ),
    _benign(S32 + "backgroundTaskHost.exe", "backgroundTaskHost.exe", "Background Task Host"),
    _benign(
        CHROME,
        "chrome.exe",
        "Google Chrome",
        product="Google Chrome",
        company="Google LLC",
        version="130.0.6723.92",
        signature="Google LLC",
    ),
    _benign(
        EDGE,
        "msedge.exe",
        "Microsoft Edge",
        product="Microsoft Edge",
        version="130.0.2849.68",
        signature="Microsoft Corporation",
    ),
    _benign(
        "C:\\Program Files\\Git\\cmd\\git.exe",
        "git.exe",
        "Git for Windows",
        product="Git",
        company="The Git Development Community",
        version="2.47.0.windows.2",
        signature="Johannes Schindelin",
    ),
    _benign(
        "C:\\Program Files\\Microsoft VS Code\\Code.exe",
        "electron.exe",
        "Visual Studio Code",
        product="Visual Studio Code",
        version="1.95.1",
        signature="Microsoft Corporation",
    ),
    _benign(
        OFFICE + "WINWORD.EXE",
        "WinWord.exe",
        "Microsoft Word",
        product=OFFICE_PRODUCT,
        version=OFFICE_VER,
        signature="Microsoft Corporation",
    ),
    _benign(
        OFFICE + "EXCEL.EXE",
        "Excel.exe",
        "Microsoft Excel",
        product=OFFICE_PRODUCT,
        version=OFFICE_VER,
        signature="Microsoft Corporation",
    ),
    _benign(
        OFFICE + "POWERPNT.EXE",
        "POWERPNT.EXE",
        "Microsoft PowerPoint",
        product=OFFICE_PRODUCT,
        version=OFFICE_VER,
        signature="Microsoft Corporation",
    ),
    _benign(
        OFFICE + "OUTLOOK.EXE",
        "Outlook.exe",
        "Microsoft Outlook",
        product=OFFICE_PRODUCT,
        version=OFFICE_VER,
        signature="Microsoft Corporation",
    ),
]
BIN: dict[str, Binary] = {b.name.lower(): b for b in _B}

DLLS: tuple[Binary, ...] = tuple(
    _benign(S32 + name, name, desc)
    for name, desc in (
        ("ntdll.dll", "NT Layer DLL"),
        ("kernel32.dll", "Windows NT BASE API Client DLL"),
        ("KernelBase.dll", "Windows NT BASE API Client DLL"),
        ("advapi32.dll", "Advanced Windows 32 Base API"),
        ("crypt32.dll", "Crypto API32"),
        ("wininet.dll", "Internet Extensions for Win32"),
        ("winhttp.dll", "Windows HTTP Services"),
        ("bcrypt.dll", "Windows Cryptographic Primitives Library"),
        ("ole32.dll", "Microsoft OLE for Windows"),
        ("combase.dll", "Microsoft COM for Windows"),
        ("amsi.dll", "Anti-Malware Scan Interface"),
        ("mswsock.dll", "Microsoft Windows Sockets 2.0 Service Provider"),
        ("dnsapi.dll", "DNS Client API DLL"),
        ("wuapi.dll", "Windows Update Client API"),
        ("sspicli.dll", "Security Support Provider Interface"),
    )
)

DRIVERS: tuple[Binary, ...] = (
    _benign(S32 + "drivers\\WdNisDrv.sys", "wdnisdrv.sys", "Windows Defender Network Stream Filter"),
    _benign(S32 + "drivers\\WdFilter.sys", "WdFilter.sys", "Microsoft antimalware file system filter driver"),
    _benign(S32 + "drivers\\usbstor.sys", "USBSTOR.SYS", "USB Mass Storage Class Driver"),
    _benign(
        S32 + "DriverStore\\FileRepository\\iigd_dch.inf_amd64_c2e1f1bf4dcb2e33\\igdkmd64.sys",
        "igdkmd64.sys",
        "Intel Graphics Kernel Mode Driver",
        product="Intel HD Graphics Drivers for Windows(R)",
        company="Intel Corporation",
        version="31.0.101.5333",
        signature="Intel(R) pGFX",
    ),
)

ALL_BENIGN: tuple[Binary, ...] = (*_B, *DLLS, *DRIVERS)

# Benign DNS: (query, optional CNAME, addresses). Real-looking public names, real address ranges;
# none in the TEST-NET ranges the intel feed uses.
USER_DOMAINS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("www.google.com", None, ("142.250.185.68", "142.250.185.100")),
    ("github.com", None, ("140.82.121.3",)),
    ("login.microsoftonline.com", "login.mso.msidentity.com", ("20.190.159.2", "40.126.31.67")),
    ("outlook.office365.com", "outlook.ms-acdc.office.com", ("52.97.146.162",)),
    ("www.wikipedia.org", "dyna.wikimedia.org", ("185.15.59.224",)),
    ("docs.python.org", "dualstack.python.map.fastly.net", ("151.101.128.223",)),
    ("stackoverflow.com", None, ("104.18.32.7", "172.64.155.249")),
    ("www.bbc.co.uk", "www.bbc.co.uk.pri.bbc.co.uk", ("151.101.0.81",)),
    ("update.googleapis.com", None, ("142.250.186.67",)),
    ("edge.microsoft.com", "edge-microsoft-com.dual-a-0036.a-msedge.net", ("13.107.21.239",)),
    ("www.linkedin.com", "www-linkedin-com.l-0005.l-msedge.net", ("13.107.42.14",)),
    ("pypi.org", "dualstack.python.map.fastly.net", ("151.101.0.223",)),
    ("teams.microsoft.com", "teams-office-com.s-0005.s-msedge.net", ("52.113.194.132",)),
)
SYSTEM_DOMAINS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("settings-win.data.microsoft.com", "atm-settingsfe-prod-geo2.trafficmanager.net", ("20.42.73.29",)),
    ("fe3cr.delivery.mp.microsoft.com", "glb.cws.prod.dcat.dsp.trafficmanager.net", ("20.72.205.209",)),
    ("ctldl.windowsupdate.com", "wu-b-net.trafficmanager.net", ("93.184.221.240",)),
    ("v10.events.data.microsoft.com", "global.asimov.events.data.trafficmanager.net", ("20.189.173.1",)),
    ("wdcp.microsoft.com", "wdcp.microsoft.akadns.net", ("20.7.2.167",)),
)

# ---------------------------------------------------------------------------------------------
# The attack's constants (fixed, seed-independent: documented in the README of the samples)
# ---------------------------------------------------------------------------------------------
DROPPER_NAME = "invoice_update.exe"
DROPPER = Binary(
    path="C:\\Users\\{user}\\AppData\\Local\\Temp\\invoice_update.exe",
    original="invupd.exe",
    description="Invoice Update Utility",
    product="Invoice Update",
    company="-",
    version="1.0.3.7",
    sha1="665B63109D7D8A84BF29BD23834458A8153BD53E",
    md5="AFD2CEB3F84EF336C7AC2DB62FD936E4",
    sha256="0765F02F141EB6B072DB58BEFC6C9DCA497D7DA8F3995FEED42AD822F5A45F5D",
    imphash="2CC630155968D7A9D2741662AAD88D55",
    signed=False,
    signature="-",
)
BAD_DLL = Binary(
    path="C:\\Users\\{user}\\AppData\\Local\\Temp\\winupd.dll",
    original="winupd.dll",
    description="-",
    product="-",
    company="-",
    version="-",
    sha1="B40A42A08A730472F9E1C669E06A9A35CF0398E3",
    md5="D5E140A21D288A784F114E7361E71ED3",
    sha256="2192FC2D6DF05DE051B636461758E3BB95D34486E7157D8C67742FB7A45D6A72",
    imphash="4A273FF3369F7E32ACCBD95609743672",
    signed=False,
    signature="-",
)
BAD_DRIVER = Binary(
    path="C:\\Windows\\System32\\drivers\\kbdflt.sys",
    original="kbdflt.sys",
    description="-",
    product="-",
    company="-",
    version="-",
    sha1="0E73618D1DDC0B0C698061312AD3B6869D7E2C0C",
    md5="DFA26DBA250F0B09F5968200581BFF94",
    sha256="F4EEA9BC820A7B74756E497BABA942D726B58867F61208C42E5C1633C4FF312D",
    imphash="50F133E3F6293BECA8534B0456D803C6",
    signed=False,
    signature="-",
)
BAD_IP = "203.0.113.66"
BAD_CIDR = "198.51.100.0/24"
BAD_CIDR_IPS = ("198.51.100.23", "198.51.100.77")
BAD_REGISTERED_DOMAIN = "badcdn.example"
BAD_C2_DOMAIN = "update-check.badcdn.example"
BAD_DOWNLOAD_DOMAIN = "dl.badcdn.example"
