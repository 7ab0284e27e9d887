"""What pip is doing, read from its output lines, as (package, fraction of this pip run, detail).
pip announces neither how many packages a resolution will need nor a per-package install
progress, so the fraction grows with each package seen and jumps at the install. With
`--progress-bar raw` (pip 24.1+) pip prints `Progress <bytes> of <total>` while it downloads; a
big download (torch: gigabytes) then moves the fraction by its bytes. No bpy."""
from __future__ import annotations

import re
from dataclasses import dataclass

_COLLECTING = re.compile(r"^(?:Collecting|Processing) (\S+)")
_SATISFIED = re.compile(r"^Requirement already satisfied: (\S+)")
_DOWNLOADING = re.compile(r"^\s*(?:Downloading|Using cached) (\S+)")
_BYTES = re.compile(r"^Progress (\d+) of (\d+)$")
_INSTALLING = re.compile(r"^Installing collected packages: (.+)")
_INSTALLED = re.compile(r"^Successfully installed (.+)")

RESOLVE_SHARE = 0.7  # of a pip run: finding and downloading; the rest is unpacking the wheels
BIG_DOWNLOAD = 100 * 2**20  # a download this big dominates its pip run: its bytes move the fraction


@dataclass
class PipProgress:
    package: str = ""
    fraction: float = 0.0
    detail: str = ""  # the running download's size, e.g. "1.20 of 2.51 GB"
    seen: int = 0  # packages collected or found satisfied
    downloaded: int = 0  # wheels fetched from the index (not from pip's cache)
    satisfied: int = 0  # requirements that were already installed (a repair run)

    def feed(self, line: str) -> bool:
        """Take one output line; True when the package, the fraction or the detail changed."""
        for pattern in (_COLLECTING, _SATISFIED):
            match = pattern.match(line)
            if match:
                self.package, self.detail = _name(match[1]), ""
                self.seen += 1
                self.satisfied += pattern is _SATISFIED
                # 1 - 1/(n/6+1): quick at first, never reaching the install's share
                self.fraction = max(self.fraction, RESOLVE_SHARE * (1 - 1 / (self.seen / 6 + 1)))
                return True
        match = _BYTES.match(line)
        if match:
            done, total = int(match[1]), int(match[2])
            if total >= BIG_DOWNLOAD:
                self.fraction = max(self.fraction, RESOLVE_SHARE * done / total)
            self.detail = _sizes(done, total) if total else ""
            return True
        match = _DOWNLOADING.match(line)
        if match:
            self.downloaded += line.lstrip().startswith("Downloading")
            return False
        match = _INSTALLING.match(line)
        if match:
            names = [name.strip() for name in match[1].split(",") if name.strip()]
            self.package = names[0] if len(names) == 1 else f"{len(names)} packages"
            self.fraction, self.detail = max(self.fraction, RESOLVE_SHARE), ""
            return True
        if _INSTALLED.match(line):
            self.fraction = 1.0
            return True
        return False


def _sizes(done: int, total: int) -> str:
    unit, name = (2**30, "GB") if total >= 2**30 else (2**20, "MB")
    return f"{done / unit:.2f} of {total / unit:.2f} {name}"


def _name(requirement: str) -> str:
    """The project name of a requirement as pip prints it ("numpy<2", "torch==2.13.0", "x[y]"),
    or of a wheel file pip processes ("/path/torch-2.13.0+cpu-cp311-....whl")."""
    requirement = requirement.rsplit("/", 1)[-1]
    if requirement.endswith(".whl"):
        return requirement.split("-", 1)[0]
    return re.split(r"[<>=!~;\[ (]", requirement, maxsplit=1)[0]
