"""Access facts: accounts, groups, sudo grants, SSH authorized keys, the approved baseline.

On Linux everything is read from files under the collector's root except ``sshd -T``,
which is the only way to learn the AuthorizedKeysFile sshd really uses (defaults, Include
files and all). Run unprivileged, /etc/shadow and /etc/sudoers (mode 0640/0440) cannot
be read and ``sshd -T`` fails on the host keys: those facts raise FactPermissionDenied,
or fall back, saying so, instead of guessing. macOS answers the same facts from
``dscl -plist`` (accounts, groups, password state) and the same sudoers files; Windows
from PowerShell's local accounts and groups (:mod:`.access_platforms`), the registry's
ProfileList and OpenSSH's sshd_config with its ``Match Group administrators`` file
(:mod:`.access_ssh_windows`). Parsing lives in the ``access_*`` modules.
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
from tillsyn.collectors.host import access_ssh_platforms as sshp
from tillsyn.collectors.host._base import LINUX, MACOS, WINDOWS
from tillsyn.collectors.host.access_accounts import (
    Account,
    Group,
    ShadowState,
    parse_group,
    parse_passwd,
    parse_shadow,
)
from tillsyn.collectors.host.access_baseline import Baseline, parse_baseline
from tillsyn.collectors.host.access_platforms import AccessPlatformFacts
from tillsyn.collectors.host.access_ssh import (
    DEFAULT_AUTHORIZED_KEYS,
    AuthorizedKey,
    KeysConfig,
    config_directives,
    parse_sshd_t,
)
from tillsyn.collectors.host.access_sudoers import SudoPolicy, effective_grants, parse_sudoers

# macOS and Windows modules are imported where used, so a Linux agent never loads them.

SSHD = "/usr/sbin/sshd"
SSHD_CONFIG = "/etc/ssh/sshd_config"


@dataclass(frozen=True)
class Remembered:
    """A snapshot the agent remembers as the baseline when no approved file exists."""

    value: Any
    stored_at: datetime
    recorded_now: bool


class AccessFacts(AccessPlatformFacts):
    @fact("host.access.accounts")
    def accounts(self) -> tuple[Account, ...]:
        """Local accounts from /etc/passwd (world-readable); macOS: the local directory."""
        if self.platform == MACOS:
            return tuple(u.account for u in self.macos_users())
        self.require_linux("host.access.accounts")
        return parse_passwd(self.read_text("host.access.accounts", "/etc/passwd"))

    @fact("host.access.groups")
    def groups(self) -> tuple[Group, ...]:
        if self.platform == MACOS:
            return self.macos_groups()
        self.require_linux("host.access.groups")
        return parse_group(self.read_text("host.access.groups", "/etc/group"))

    @fact("host.access.shadow")
    def shadow(self) -> dict[str, ShadowState]:
        """Password and expiry state per account; /etc/shadow needs root (or group shadow).

        macOS: password and disabled state from the directory (see :mod:`.access_macos`).
        """
        if self.platform == MACOS:
            from tillsyn.collectors.host import access_macos as mac

            return mac.auth_states(self.macos_users(), " ".join(mac.DSCL_USERS))
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
        """The effective grants of /etc/sudoers and its includes; None without sudoers.

        macOS ships sudo with the same grammar: /etc/sudoers there includes
        /private/etc/sudoers.d and ``%admin`` resolves through the directory's groups.
        """
        name = "host.access.sudo"
        self.require_platform(name, LINUX, MACOS)
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
        """AuthorizedKeysFile/Command from ``sshd -T``, else sshd_config, else the default.

        macOS reads the same way (/usr/sbin/sshd, /etc/ssh/sshd_config and its
        sshd_config.d); Windows in :mod:`.access_ssh_windows`. Unparsable output and a
        timeout are errors, not a reason to fall back (see ``SSHD_T_FATAL``).
        """
        name = "host.access.sshd_keys_config"
        self.require_platform(name, LINUX, MACOS, WINDOWS)
        if self.platform == WINDOWS:
            from tillsyn.collectors.host import access_ssh_windows as sshw

            return sshw.keys_config(self)
        try:
            result = self.command(name, [SSHD, "-T"])
        except sshp.SSHD_T_FATAL:
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

    @fact("host.access.ssh_key_holders")
    def ssh_key_holders(self) -> tuple[sshp.KeyHolder, ...]:
        """Whose keys sshd may read: /etc/passwd accounts (Linux), the directory's users
        (macOS, dscl), user profiles (Windows, ProfileList); see :mod:`.access_ssh_platforms`."""
        if self.platform == LINUX:
            return tuple(sshp.KeyHolder(a.name, a.home, a.uid) for a in self.accounts())
        return sshp.collect(self)

    @fact("host.access.authorized_keys")
    def authorized_keys(self, user: str) -> tuple[AuthorizedKey, ...]:
        """The keys in every AuthorizedKeysFile of ``user``; missing files hold none.

        Windows: a profile whose folder does not exist is an error, not "no keys"."""
        name = "host.access.authorized_keys"
        holder = next((h for h in self.ssh_key_holders() if h.name == user), None)
        if holder is None:
            source = sshp.holders_source(self.platform)
            raise FactUnavailable(name, user, f"no such account in {source}")
        config = self.sshd_keys_config()
        if self.platform == WINDOWS:
            sshp.require_profile_folder(self, holder)
        keys: list[AuthorizedKey] = []
        for path in sshp.key_paths(self, config.files, holder):
            keys.extend(sshp.read_keys(self, path))
        return tuple(keys)

    @fact("host.access.authorized_keys_file")
    def authorized_keys_file(self, path: str) -> tuple[AuthorizedKey, ...]:
        """The keys in one file that counts for a whole group (Windows:
        administrators_authorized_keys); a missing file holds none."""
        return sshp.read_keys(self, path)

    # -- baseline ---------------------------------------------------------------------

    @fact("host.access.baseline")
    def access_baseline(self, path: str) -> Baseline | None:
        """The approved baseline file; None only when it does not exist."""
        name = "host.access.baseline"
        if not self.path(path).exists():
            return None
        return parse_baseline(self.read_text(name, path), path)

    def remembered_access(
        self, namespace: str, snapshot: Any, record: bool = True
    ) -> Remembered | None:
        """The snapshot first observed under ``namespace``; stores ``snapshot`` if none.

        With ``record`` False (a partial observation, which must not become the
        baseline) nothing is stored and None says there is no recording yet."""
        hit = self.memory.get(namespace, "baseline")
        if hit is not None:
            value, stored_at = hit
            return Remembered(value, stored_at, recorded_now=False)
        if not record:
            return None
        self.memory.put(namespace, "baseline", snapshot, self.now)
        return Remembered(snapshot, self.now, recorded_now=True)
