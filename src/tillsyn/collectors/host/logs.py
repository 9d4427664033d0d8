"""Logging facts: journald and logrotate retention, log shipping, clock sync.

The parsing lives in sibling modules, one job each: :mod:`logs_systemd` (systemd's
configuration rules), :mod:`logs_journald`, :mod:`logs_logrotate`, :mod:`logs_shipping`
and :mod:`logs_time`; Windows event logs in :mod:`logs_windows`, the macOS unified log in
:mod:`logs_macos`, ASL files in :mod:`logs_asl` and newsyslog in :mod:`logs_newsyslog`.
This mixin only finds the sources on the host (under the injectable root), runs the
commands, and turns "could not look" into a FactError.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tillsyn.collectors._facts import fact
from tillsyn.collectors.commands import CommandResult
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host._base import LINUX, MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.logs_asl import AslConfig, AslReader
from tillsyn.collectors.host.logs_journald import (
    JournalBoot,
    JournaldSettings,
    parse_birth_time,
    parse_disk_usage,
    parse_list_boots,
    refuse_partial_view,
    resolve_settings,
)
from tillsyn.collectors.host.logs_logrotate import LogrotateConfig, LogrotateReader
from tillsyn.collectors.host.logs_newsyslog import NewsyslogConfig, NewsyslogReader
from tillsyn.collectors.host.logs_shipping import (
    Forwarder,
    expand,
    read_config,
    rsyslog_forwarders,
    rsyslog_includes,
    syslog_ng_forwarders,
    syslog_ng_includes,
)
from tillsyn.collectors.host.logs_systemd import (
    ParsedConfig,
    config_files,
    parse_assignments,
)
from tillsyn.collectors.host.logs_time import (
    ClockReport,
    parse_chronyc_tracking,
    parse_ntpq_peers,
    parse_timedatectl_show,
    parse_timesync_status,
)

# macOS and Windows modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.logs_macos import UnifiedLogSpan
    from tillsyn.collectors.host.logs_windows import EventLogArchives, EventLogConfig, EventLogInfo

#: Where the journald binary lives (systemd's libexec directory on each family).
JOURNALD_BINARIES = ("/usr/lib/systemd/systemd-journald", "/lib/systemd/systemd-journald")
#: Unit names whose ``*.wants/`` link means "enabled at boot".
WANTS_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


@dataclass(frozen=True)
class JournalFilesystem:
    """Size and free bytes of the filesystem holding /var/log/journal."""

    size_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class ShippingConfig:
    """Every configured way logs leave the host, and what was read to say so."""

    forwarders: tuple[Forwarder, ...]
    files_read: tuple[str, ...]
    daemons_found: tuple[str, ...]
    looked_for: tuple[str, ...] = ("rsyslog", "syslog-ng", "journal-upload")


@dataclass(frozen=True)
class TimeSync:
    """What each time daemon said, and which ones were looked for but did not answer."""

    reports: tuple[ClockReport, ...]
    silent: tuple[str, ...]  # "chronyc: exited with status 1: 506 Cannot talk to daemon"
    looked_for: tuple[str, ...]


class LogFacts(HostBase):
    """Facts the host.logging checks read."""

    # -- journald ---------------------------------------------------------------------

    @fact("host.logs.journald_present")
    def journald_present(self) -> bool:
        """Whether this host runs journald (its binary or any of its configuration exists)."""
        self.require_linux("host.logs.journald_present")
        files, _ = config_files(self.root, "journald.conf")
        return bool(files) or any(self.path(p).exists() for p in JOURNALD_BINARIES)

    @fact("host.logs.journald_settings")
    def journald_settings(self) -> JournaldSettings:
        """journald.conf merged with its drop-ins, exactly in systemd's order."""
        name = "host.logs.journald_settings"
        self.require_linux(name)
        files, masked = config_files(self.root, "journald.conf")
        parsed = ParsedConfig(files=list(files), masked=masked)
        for path in files:
            parse_assignments(self.read_text(name, path), path, parsed)
        return resolve_settings(parsed)

    @fact("host.logs.persistent_journal_dir")
    def persistent_journal_dir(self) -> bool:
        """Whether /var/log/journal exists (Storage=auto then keeps the journal on disk)."""
        return self.path("/var/log/journal").is_dir()

    @fact("host.logs.journal_usage")
    def journal_usage(self) -> int:
        """Bytes the journal files take, as ``journalctl --disk-usage`` reports them."""
        name = "host.logs.journal_usage"
        argv = ["journalctl", "--disk-usage"]
        result = self._journalctl(name, argv)
        return parse_disk_usage(result.stdout, " ".join(argv))

    @fact("host.logs.journal_boots")
    def journal_boots(self) -> tuple[JournalBoot, ...]:
        """Every boot in the journal with its first and last entry, oldest first."""
        name = "host.logs.journal_boots"
        argv = ["journalctl", "--list-boots", "--output=json", "--no-pager"]
        result = self._journalctl(name, argv)
        boots = parse_list_boots(result.stdout, " ".join(argv))
        return tuple(sorted(boots, key=lambda b: b.first_entry))

    def _journalctl(self, name: str, argv: list[str]) -> CommandResult:
        try:
            result = self.command(name, argv, env={"TZ": "UTC"})
        except FactCommandFailed as exc:
            refuse_partial_view(name, " ".join(argv), exc.stderr)
            raise
        refuse_partial_view(name, " ".join(argv), result.stderr)
        return result

    @fact("host.logs.journal_filesystem")
    def journal_filesystem(self) -> JournalFilesystem:
        """Size and free space of the journal's filesystem (journald's default caps use it)."""
        name = "host.logs.journal_filesystem"
        target = self.path("/var/log/journal")
        try:
            info = os.statvfs(target)
        except OSError as exc:
            raise FactUnavailable(name, "/var/log/journal", exc.strerror or str(exc)) from exc
        return JournalFilesystem(info.f_blocks * info.f_frsize, info.f_bavail * info.f_frsize)

    @fact("host.logs.installed_at")
    def installed_at(self) -> datetime | None:
        """When the root filesystem was created (``stat --format=%W /``), None if unknown.

        A host younger than the retention policy cannot hold older logs; this is the
        evidence for that. A root filesystem copied from an image is older than the host,
        which only errs towards asking for more history, never less. Windows: the
        registry's InstallDate (:mod:`logs_windows`); macOS: the Data volume's birth
        (:mod:`logs_macos`).
        """
        name = "host.logs.installed_at"
        if self.platform == WINDOWS:
            from tillsyn.collectors.host import logs_windows

            return logs_windows.read_install_date(self)
        if self.platform == MACOS:
            from tillsyn.collectors.host import logs_macos

            return logs_macos.read_setup_date(self)
        argv = ["stat", "--format=%W", "/"]
        result = self.command(name, argv)
        return parse_birth_time(result.stdout, " ".join(argv))

    # -- logrotate --------------------------------------------------------------------

    @fact("host.logs.logrotate")
    def logrotate(self) -> LogrotateConfig:
        """Every logrotate stanza with its effective settings (FactUnavailable: none)."""
        self.require_linux("host.logs.logrotate")
        return LogrotateReader(self.root).read()

    @fact("host.logs.newsyslog")
    def newsyslog(self) -> NewsyslogConfig:
        """Every newsyslog entry (macOS); FactUnavailable when it is not configured."""
        self.require_platform("host.logs.newsyslog", MACOS)
        return NewsyslogReader(self.root).read()

    @fact("host.logs.asl")
    def asl(self) -> AslConfig:
        """Rotated ASL output files (macOS); FactUnavailable without /etc/asl.conf."""
        self.require_platform("host.logs.asl", MACOS)
        return AslReader(self.root).read()

    # -- Windows event logs and the macOS unified log -----------------------------------

    @fact("host.logs.windows_event_log")
    def windows_event_log(self, log: str) -> EventLogConfig:
        """``wevtutil gl LOG``: enabled, retention mode and maximum size."""
        from tillsyn.collectors.host import logs_windows

        self.require_platform(logs_windows.CONFIG_FACT, WINDOWS)
        return logs_windows.read_config(self, log)

    @fact("host.logs.windows_oldest_event")
    def windows_oldest_event(self, log: str) -> datetime | None:
        """When the oldest event still in LOG was written; None for an empty log."""
        from tillsyn.collectors.host import logs_windows

        self.require_platform(logs_windows.OLDEST_FACT, WINDOWS)
        return logs_windows.read_oldest_event(self, log)

    @fact("host.logs.windows_newest_event")
    def windows_newest_event(self, log: str) -> datetime | None:
        """When the newest event in LOG was written; None for an empty log."""
        from tillsyn.collectors.host import logs_windows

        self.require_platform(logs_windows.NEWEST_FACT, WINDOWS)
        return logs_windows.read_newest_event(self, log)

    @fact("host.logs.windows_event_archives")
    def windows_event_archives(self, log: str) -> EventLogArchives:
        """The ``Archive-<log>-*.evtx`` files beside LOG's file ("archive when full")."""
        from tillsyn.collectors.host import logs_windows

        self.require_platform(logs_windows.ARCHIVES_FACT, WINDOWS)
        return logs_windows.read_archives(self, self.windows_event_log(log))

    @fact("host.logs.windows_event_log_info")
    def windows_event_log_info(self, log: str) -> EventLogInfo:
        """``wevtutil gli LOG``: the log file's current size and number of events."""
        from tillsyn.collectors.host import logs_windows

        self.require_platform(logs_windows.INFO_FACT, WINDOWS)
        return logs_windows.read_info(self, log)

    @fact("host.logs.unified_log_span")
    def unified_log_span(self) -> UnifiedLogSpan:
        """The oldest and newest entry in the macOS unified log (``log stats``)."""
        from tillsyn.collectors.host import logs_macos

        self.require_platform(logs_macos.SPAN_FACT, MACOS)
        return logs_macos.read_span(self)

    # -- shipping ---------------------------------------------------------------------

    def unit_enabled(self, unit: str) -> bool:
        """Whether a unit is wanted by some target (its ``*.wants/`` link exists)."""
        for directory in WANTS_DIRS:
            base = self.path(directory)
            if not base.is_dir():
                continue
            for wants in base.glob("*.wants"):
                if (wants / unit).is_symlink() or (wants / unit).exists():
                    return True
        return False

    def _config_tree(
        self,
        main: str,
        includes: Callable[[str], list[str]],
        relative_to: str,
        seen: set[str],
    ) -> Iterator[tuple[str, str]]:
        """``main`` and every file it includes, each once, as (path, text); relative
        include patterns are taken from ``relative_to``; absent files are skipped."""
        queue = [main]
        while queue:
            path = queue.pop(0)
            if path in seen:
                continue
            seen.add(path)
            text = read_config(self.root, path)
            if text is None:
                continue
            yield path, text
            for pattern in includes(text):
                queue.extend(
                    expand(self.root, pattern if pattern.startswith("/") else relative_to + pattern)
                )

    @fact("host.logs.shipping")
    def shipping(self) -> ShippingConfig:
        """Configured forwarding of logs off the host (rsyslog, syslog-ng, journal-upload;
        Windows Event Forwarding; syslogd's /etc/syslog.conf on macOS)."""
        name = "host.logs.shipping"
        if self.platform in (WINDOWS, MACOS):
            return self._shipping_elsewhere()
        self.require_linux(name)
        forwarders: list[Forwarder] = []
        files_read: list[str] = []
        found: list[str] = []
        seen: set[str] = set()
        for daemon, main, includes, parse, relative_to in (
            ("rsyslog", "/etc/rsyslog.conf", rsyslog_includes, rsyslog_forwarders, ""),
            (
                "syslog-ng",
                "/etc/syslog-ng/syslog-ng.conf",
                syslog_ng_includes,
                syslog_ng_forwarders,
                "/etc/syslog-ng/",
            ),
        ):
            enabled = self.unit_enabled(f"{daemon}.service")
            for path, text in self._config_tree(main, includes, relative_to, seen):
                if daemon not in found:
                    found.append(daemon)
                files_read.append(path)
                forwarders += parse(text, path, enabled)
        files, masked = config_files(self.root, "journal-upload.conf")
        if files:
            found.append("journal-upload")
            parsed = ParsedConfig(files=list(files), masked=masked)
            for path in files:
                parse_assignments(self.read_text(name, path), path, parsed)
                files_read.append(path)
            url = None
            where = ""
            for a in parsed.assignments:
                if a.section == "Upload" and a.key == "URL":
                    url, where = a.value or None, f"{a.path}:{a.line}"
            if url:
                enabled = self.unit_enabled("systemd-journal-upload.service")
                forwarders.append(Forwarder("journal-upload", url, "URL", where, enabled))
        return ShippingConfig(tuple(forwarders), tuple(files_read), tuple(found))

    def _shipping_elsewhere(self) -> ShippingConfig:
        """Windows Event Forwarding (:mod:`logs_windows`) or macOS syslogd (:mod:`logs_macos`)."""
        if self.platform == WINDOWS:
            from tillsyn.collectors.host import logs_windows

            wef = logs_windows.read_forwarders(self)
            return ShippingConfig(
                tuple(wef),
                (logs_windows.WEF_KEY,),
                (logs_windows.WEF,) if wef else (),
                (logs_windows.WEF,),
            )
        from tillsyn.collectors.host import logs_macos

        forwarders, read = logs_macos.syslogd_forwarders(self.root)
        daemons = (logs_macos.SYSLOGD,) if read else ()
        return ShippingConfig(tuple(forwarders), tuple(read), daemons, (logs_macos.SYSLOGD,))

    # -- time -------------------------------------------------------------------------

    @fact("host.logs.time_sync")
    def time_sync(self) -> TimeSync:
        """Every time daemon's view of the clock. Linux: tools that are absent are skipped;
        macOS (:mod:`logs_time_macos`) and Windows (:mod:`logs_time_windows`): one report,
        and a missing tool is an error."""
        name = "host.logs.time_sync"
        self.require_platform(name, LINUX, MACOS, WINDOWS)
        if self.platform == MACOS:
            return TimeSync((self._macos_clock(name),), (), ("systemsetup", "sntp"))
        if self.platform == WINDOWS:
            return TimeSync((self._windows_clock(name),), (), ("w32tm",))
        reports: list[ClockReport] = []
        silent: list[str] = []
        looked = ("chronyc", "ntpq", "timedatectl")
        for argv, parse in (
            (["chronyc", "-n", "tracking"], parse_chronyc_tracking),
            (["ntpq", "-pn"], parse_ntpq_peers),
        ):
            try:
                result = self.command(name, argv, ok_codes=(0, 1))
            except FactUnavailable:
                continue
            except FactPermissionDenied:
                raise
            except FactError as exc:
                silent.append(f"{argv[0]}: {exc.reason}")
                continue
            said = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()
            if result.returncode != 0 or "Socket error" in result.stderr + result.stdout:
                # chronyc: exit 1 "506 Cannot talk to daemon" on stdout; ntpq (ntpsec) exits
                # 0 with "***Socket error; probably ntpd is not running".
                silent.append(f"{argv[0]}: exit {result.returncode}: {said[0]}")
                continue
            reports.append(parse(result.stdout, " ".join(argv)))
        reports_timesyncd = self._timesyncd(name, silent)
        if reports_timesyncd is not None:
            reports.append(reports_timesyncd)
        return TimeSync(tuple(reports), tuple(silent), looked)

    def _timesyncd(self, name: str, silent: list[str]) -> ClockReport | None:
        argv = ["timedatectl", "show", "-p", "NTP", "-p", "NTPSynchronized"]
        try:
            result = self.command(name, argv)
        except FactUnavailable:
            return None
        except FactError as exc:
            silent.append(f"timedatectl: {exc.reason.splitlines()[0]}")
            return None
        fields = parse_timedatectl_show(result.stdout, " ".join(argv))
        if fields["NTP"] != "yes":
            if fields["NTPSynchronized"] == "yes":
                return ClockReport(
                    "kernel", True, None, "", "NTPSynchronized=yes, NTP=no: another daemon"
                )
            return None  # timesyncd is off; whatever else runs answered above or not at all
        status = ["timedatectl", "timesync-status"]
        try:
            answer = self.command(name, status)
        except FactError as exc:
            silent.append(f"timedatectl timesync-status: {exc.reason}")
            return None
        report = parse_timesync_status(answer.stdout, " ".join(status))
        if fields["NTPSynchronized"] != "yes" and report.synchronised:
            return ClockReport(
                "timesyncd", False, report.offset_ms, report.source, "NTPSynchronized=no"
            )
        return report

    def _macos_clock(self, name: str) -> ClockReport:
        """systemsetup (root) says whether network time is on; sntp measures the offset."""
        from tillsyn.collectors.host.logs_time_macos import (
            GET_NETWORK_TIME,
            GET_SERVER,
            parse_network_time,
            parse_server,
            parse_sntp,
            sntp_argv,
        )

        said = self.command(name, GET_NETWORK_TIME, check=False)
        call = " ".join(GET_NETWORK_TIME)
        if not parse_network_time(said.stdout, said.stderr, said.returncode, call):
            return ClockReport("timed", False, None, "", "Network Time: Off (systemsetup)")
        answer = self.command(name, GET_SERVER, check=False)
        call = " ".join(GET_SERVER)
        server = parse_server(answer.stdout, answer.stderr, answer.returncode, call)
        argv = sntp_argv(server)
        result = self.command(name, argv, check=False)
        return parse_sntp(result.stdout, result.stderr, result.returncode, " ".join(argv), server)

    def _windows_clock(self, name: str) -> ClockReport:
        """W32Time's status; when it follows a named source, the offset measured to it."""
        from tillsyn.collectors.host.logs_time_windows import (
            W32TM_STATUS,
            parse_stripchart,
            parse_w32tm_status,
            stripchart_argv,
            w32tm_failure,
        )

        call = " ".join(W32TM_STATUS)
        result = self.command(name, W32TM_STATUS, check=False)
        stopped = w32tm_failure(result.stdout, result.stderr, result.returncode, call)
        if stopped is not None:
            return stopped
        status = parse_w32tm_status(result.stdout, call)
        measured = None
        if not status.why_not and status.peer is not None:
            argv = stripchart_argv(status.peer)
            chart = self.command(name, argv, check=False)
            measured = parse_stripchart(
                chart.stdout, chart.stderr, chart.returncode, " ".join(argv), status.peer
            )
        return status.report(measured)
