"""macOS clock synchronisation: ``systemsetup`` says whether network time is on, ``sntp``
measures the clock against the configured server.

Why these two: macOS (10.13 and later) keeps time with ``timed``, which has no query
interface; ``ntpq`` and ``ntpdate`` are gone since Mojave. ``systemsetup
-getusingnetworktime`` answers ``Network Time: On|Off`` and ``-getnetworktimeserver``
``Network Time Server: time.apple.com`` (the forms CIS macOS audit scripts, the NIST mSCP
rule os_time_server_enabled and snclient's check_ntp_offset compare against). Both refuse
without root by printing "You need administrator access to run this tool... exiting!"
on stdout and exiting 0, so that text, not the exit status, decides. /etc/ntp.conf is not
read instead: it names a server but not whether network time is on, and timed's state
(/var/db/timed) is root-only too, so neither spares the privilege.

``sntp -t 5 SERVER`` then measures the offset (the mSCP rule os_time_offset_limit_configure
reads the same line). Apple's current sntp prints ``+0.024490 +/- 0.016059 time.apple.com
17.253.2.43``; ntp 4.2.8's sntp (as on Mojave) prefixes a local timestamp and appends the
stratum and leap: ``2018-09-29 19:42:41.448103 (-0200) +1087.742403 +/-
725.183462 pool.ntp.org 188.68.36.203 s2 no-leap``. The first number is how far the local
clock is BEHIND the server (sntp(1)), so the clock's offset is its negation. A server
that does not answer gives ``sntp: Exchange failed: Timeout`` and ``sntp: Clock select
failed`` (usnistgov/macos_security#275): that is an error (nothing was measured), never a
pass and never a guess.
"""

from __future__ import annotations

import re

from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactParseError,
    FactPermissionDenied,
)
from tillsyn.collectors.host.logs_time import FACT, ClockReport

GET_NETWORK_TIME = ["systemsetup", "-getusingnetworktime"]
GET_SERVER = ["systemsetup", "-getnetworktimeserver"]
NEEDS_ADMIN = "You need administrator access to run this tool"
DAEMON = "timed"

_SNTP = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \([+-]\d{4}\) )?"
    r"(?P<offset>[+-]\d+\.\d+) \+/- (?P<error>\S+) (?P<host>\S+)"
    r"(?: (?P<addr>[0-9A-Fa-f.:]+))?(?: \S+)*$"
)
_HOST = re.compile(r"^[A-Za-z0-9._:-]+$")


def sntp_argv(server: str) -> list[str]:
    return ["sntp", "-t", "5", server]


def _value(stdout: str, stderr: str, returncode: int, label: str, call: str) -> str:
    """The value of systemsetup's one ``LABEL: value`` line; the root refusal is denied."""
    if NEEDS_ADMIN in stdout + stderr:
        raise FactPermissionDenied(
            FACT, call, f"systemsetup needs root: {(stdout.strip() or stderr.strip())!r}"
        )
    if returncode != 0:
        raise FactCommandFailed(FACT, call.split(" "), returncode, stderr or stdout)
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if len(lines) != 1 or not lines[0].startswith(f"{label}:"):
        raise FactParseError(FACT, call, f"expected one '{label}: ...' line", stdout)
    return lines[0][len(label) + 1 :].strip()


def parse_network_time(stdout: str, stderr: str, returncode: int, call: str) -> bool:
    """``Network Time: On`` or ``Network Time: Off``; anything else is a parse error."""
    value = _value(stdout, stderr, returncode, "Network Time", call)
    if value not in ("On", "Off"):
        raise FactParseError(FACT, call, "Network Time is neither On nor Off", value)
    return value == "On"


def parse_server(stdout: str, stderr: str, returncode: int, call: str) -> str:
    """The configured server; of a list, the first (the one timed uses)."""
    value = _value(stdout, stderr, returncode, "Network Time Server", call)
    first = value.split(",")[0].strip()
    if not first or not _HOST.match(first):
        raise FactParseError(FACT, call, "no usable server name", value)
    return first


def parse_sntp(stdout: str, stderr: str, returncode: int, call: str, server: str) -> ClockReport:
    """One ``sntp`` measurement as a report; no answer, garbage or odd exits raise."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    results = [(line, m) for line in lines if (m := _SNTP.match(line))]
    if results and returncode == 0:
        line, match = results[0]
        offset_ms = -float(match["offset"]) * 1000  # sntp: how far the clock is behind
        source = match["host"] + (f" ({match['addr']})" if match["addr"] else "")
        return ClockReport(DAEMON, True, round(offset_ms, 6), source, f"sntp: {line}")
    said = lines + [line.strip() for line in stderr.splitlines() if line.strip()]
    failures = list(dict.fromkeys(line for line in said if line.startswith("sntp: ")))
    if failures and not results:
        raise FactError(FACT, call, f"no answer from {server}: {'; '.join(failures)}")
    if returncode != 0:
        raise FactCommandFailed(FACT, call.split(" "), returncode, stderr or stdout)
    if any("+/-" in line for line in lines):
        raise FactParseError(FACT, call, "unrecognised sntp result line", stdout)
    raise FactParseError(FACT, call, "no '<offset> +/- <error> <server>' line", stdout)
