"""Access facts: accounts, groups, sudo grants, SSH authorized keys, the approved baseline.

Everything is read from files under the collector's root except ``sshd -T``, which is
the only way to learn the AuthorizedKeysFile sshd really uses (defaults, Include files
and all). Run unprivileged, /etc/shadow and /etc/sudoers (mode 0640/0440) cannot be
read and ``sshd -T`` fails on the host keys: those facts raise FactPermissionDenied, or
fall back, saying so, instead of guessing. Parsing lives in the ``access_*`` modules.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import (
    FactError,
    FactParseError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host._base import HostBase
from tillsyn.collectors.host.access_accounts import (
    Account,
    Group,
    ShadowState,
    parse_group,
    parse_passwd,
    parse_shadow,
)
from tillsyn.collectors.host.access_baseline import Baseline, parse_baseline
from tillsyn.collectors.host.access_ssh import (
    DEFAULT_AUTHORIZED_KEYS,
    AuthorizedKey,
    KeysConfig,
    config_directives,
    expand_tokens,
    parse_authorized_keys,
    parse_sshd_t,
)
from tillsyn.collectors.host.access_sudoers import SudoPolicy, effective_grants, parse_sudoers

SSHD = "/usr/sbin/sshd"
SSHD_CONFIG = "/etc/ssh/sshd_config"


@dataclass(frozen=True)
class Remembered:
    """A snapshot the agent remembers as the baseline when no approved file exists."""

    value: Any
    stored_at: datetime
    recorded_now: bool


class AccessFacts(HostBase):
    @fact("host.access.accounts")
    def accounts(self) -> tuple[Account, ...]:
        """Local accounts from /etc/passwd (world-readable)."""
        self.require_linux("host.access.accounts")
        return parse_passwd(self.read_text("host.access.accounts", "/etc/passwd"))

    @fact("host.access.groups")
    def groups(self) -> tuple[Group, ...]:
        self.require_linux("host.access.groups")
        return parse_group(self.read_text("host.access.groups", "/etc/group"))

    @fact("host.access.shadow")
    def shadow(self) -> dict[str, ShadowState]:
        """Password and expiry state per account; /etc/shadow needs root (or group shadow)."""
        self.require_linux("host.access.shadow")
        return parse_shadow(self.read_text("host.access.shadow", "/etc/shadow"))

    # -- sudo -------------------------------------------------------------------------

    def _access_hostname(self) -> str:
        if str(self.root) == "/":
            return socket.gethostname().split(".")[0]
        try:
            return self.path("/etc/hostname").read_text().strip().split(".")[0]
        except OSError:
            return ""

    def _access_listdir(self, directory: str) -> list[str]:
        """Files in an @includedir directory; a missing one is skipped, as sudo does."""
        base = self.path(directory)
        try:
            names = os.listdir(base)
        except FileNotFoundError:
            return []
        except PermissionError as exc:
            raise FactPermissionDenied("host.access.sudo", directory, "permission denied") from exc
        return [n for n in names if (base / n).is_file()]

    @fact("host.access.sudo")
    def sudo_policy(self) -> SudoPolicy | None:
        """The effective grants of /etc/sudoers and its includes; None without sudoers."""
        name = "host.access.sudo"
        self.require_linux(name)
        if not self.path("/etc/sudoers").exists():
            return None
        try:
            self.path("/etc/sudoers").read_bytes()
        except PermissionError as exc:
            raise FactPermissionDenied(
                name,
                "/etc/sudoers",
                "permission denied: sudoers is readable by root only (mode 0440); "
                "run the agent as root to see sudo grants",
            ) from exc

        def read(path: str) -> str:
            return self.read_text(name, path)

        parsed = parse_sudoers("/etc/sudoers", read, self._access_listdir, self._access_hostname())
        policy = effective_grants(parsed, self.accounts(), self.groups())
        remote = self._access_nsswitch_sudoers()
        if remote:
            note = (
                f"nsswitch.conf also takes sudoers from {', '.join(remote)}: "
                "those rules are not visible here"
            )
            policy = SudoPolicy(
                policy.files, policy.grants, policy.defaults, (*policy.warnings, note)
            )
        return policy

    def _access_nsswitch_sudoers(self) -> list[str]:
        try:
            text = self.path("/etc/nsswitch.conf").read_text()
        except OSError:
            return []
        for line in text.splitlines():
            key, _, value = line.partition("#")[0].partition(":")
            if key.strip() == "sudoers":
                return [s for s in value.split() if s != "files" and not s.startswith("[")]
        return []

    # -- ssh --------------------------------------------------------------------------

    @fact("host.access.sshd_keys_config")
    def sshd_keys_config(self) -> KeysConfig:
        """AuthorizedKeysFile/Command from ``sshd -T``, else sshd_config, else the default."""
        name = "host.access.sshd_keys_config"
        self.require_linux(name)
        try:
            result = self.command(name, [SSHD, "-T"])
        except FactParseError:
            raise
        except FactError as exc:
            why = f"sshd -T failed ({exc.reason})"
            if isinstance(exc, FactUnavailable):
                why = "sshd is not installed"
            return self._access_keys_from_config(why)
        return parse_sshd_t(result.stdout, f"{SSHD} -T")

    def _access_keys_from_config(self, why: str) -> KeysConfig:
        files: tuple[str, ...] | None = None
        command: str | None = None
        try:
            directives = self._access_sshd_directives(SSHD_CONFIG, 0)
        except FactError as exc:
            return KeysConfig(
                DEFAULT_AUTHORIZED_KEYS,
                None,
                "OpenSSH default",
                f"{why}; {SSHD_CONFIG} unreadable ({exc.reason}): assumed the OpenSSH default",
            )
        for keyword, value in directives:
            if keyword == "match":
                break
            if keyword == "authorizedkeysfile" and files is None:
                files = tuple(v.strip('"') for v in value.split())
            if keyword == "authorizedkeyscommand" and command is None:
                command = value.strip('"')
        if files is None:
            return KeysConfig(
                DEFAULT_AUTHORIZED_KEYS,
                None if command in (None, "none") else command,
                "OpenSSH default",
                f"{why}; {SSHD_CONFIG} sets no AuthorizedKeysFile: the OpenSSH default applies "
                "(Match blocks not evaluated)",
            )
        return KeysConfig(
            () if files == ("none",) else files,
            None if command in (None, "none") else command,
            SSHD_CONFIG,
            f"{why}; read from {SSHD_CONFIG} instead (Match blocks not evaluated)",
        )

    def _access_sshd_directives(self, path: str, depth: int) -> list[tuple[str, str]]:
        """Directives of sshd_config with Include files expanded in place."""
        if depth > 16:
            raise FactParseError("host.access.sshd_keys_config", path, "Include loop")
        out: list[tuple[str, str]] = []
        for keyword, value in config_directives(
            self.read_text("host.access.sshd_keys_config", path)
        ):
            if keyword != "include":
                out.append((keyword, value))
                if keyword == "match":
                    return out
                continue
            for pattern in value.split():
                full = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                matches = sorted(self.root.glob(full.lstrip("/")))
                for match in matches:
                    sub = "/" + str(match.relative_to(self.root))
                    out.extend(self._access_sshd_directives(sub, depth + 1))
                    if out and out[-1][0] == "match":
                        return out
        return out

    @fact("host.access.authorized_keys")
    def authorized_keys(self, user: str) -> tuple[AuthorizedKey, ...]:
        """The keys in every AuthorizedKeysFile of ``user``; missing files hold none."""
        name = "host.access.authorized_keys"
        account = next((a for a in self.accounts() if a.name == user), None)
        if account is None:
            raise FactUnavailable(name, user, "no such account in /etc/passwd")
        config = self.sshd_keys_config()
        keys: list[AuthorizedKey] = []
        seen: set[str] = set()
        for pattern in config.files:
            path = expand_tokens(pattern, account.name, account.uid, account.home)
            if path in seen:
                continue
            seen.add(path)
            target = self.path(path)
            try:
                text = target.read_text(encoding="utf-8", errors="replace")
            except (FileNotFoundError, NotADirectoryError):
                continue
            except PermissionError as exc:
                raise FactPermissionDenied(name, path, "permission denied") from exc
            except IsADirectoryError as exc:
                raise FactUnavailable(name, path, "is a directory") from exc
            keys.extend(parse_authorized_keys(text, path))
        return tuple(keys)

    # -- baseline ---------------------------------------------------------------------

    @fact("host.access.baseline")
    def access_baseline(self, path: str) -> Baseline | None:
        """The approved baseline file; None only when it does not exist."""
        name = "host.access.baseline"
        if not self.path(path).exists():
            return None
        return parse_baseline(self.read_text(name, path), path)

    def remembered_access(self, namespace: str, snapshot: Any) -> Remembered:
        """The snapshot first observed under ``namespace``; stores ``snapshot`` if none."""
        hit = self.memory.get(namespace, "baseline")
        if hit is not None:
            value, stored_at = hit
            return Remembered(value, stored_at, recorded_now=False)
        self.memory.put(namespace, "baseline", snapshot, self.now)
        return Remembered(snapshot, self.now, recorded_now=True)
