"""Access facts on macOS (dscl) and Windows (PowerShell): the calls behind them.

A mixin of its own, below :class:`~tillsyn.collectors.host.access.AccessFacts`, so the
Linux readers stay as they are: on macOS ``host.access.accounts``, ``groups`` and
``shadow`` are answered from the two dscl reads here, in the same shapes as from
/etc/passwd, /etc/group and /etc/shadow, and the sudoers parser is the Linux one. Windows
has no such shapes (no shells, no sudo): its checks ask for the facts here directly.
Parsing lives in :mod:`.access_macos` and :mod:`.access_windows`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tillsyn.collectors._facts import fact
from tillsyn.collectors.errors import (
    FactCommandFailed,
    FactError,
    FactPermissionDenied,
    FactUnavailable,
)
from tillsyn.collectors.host._base import MACOS, WINDOWS, HostBase
from tillsyn.collectors.host.access_accounts import Group

# macOS and Windows modules are imported where used, so a Linux agent never loads them.
if TYPE_CHECKING:
    from tillsyn.collectors.host.access_macos import MacUser
    from tillsyn.collectors.host.access_windows import WindowsGroups, WindowsUsers

#: How PowerShell words a refusal (Windows System Error 5, UnauthorizedAccessException).
ACCESS_DENIED = ("Access is denied", "PermissionDenied", "UnauthorizedAccess")


class AccessPlatformFacts(HostBase):
    @fact("host.access.macos_users")
    def macos_users(self) -> tuple[MacUser, ...]:
        """macOS: every user record of the local directory node."""
        from tillsyn.collectors.host import access_macos as mac

        self.require_platform(mac.USERS_FACT, MACOS)
        result = self.command(mac.USERS_FACT, mac.DSCL_USERS)
        return mac.parse_users(result.stdout, " ".join(mac.DSCL_USERS))

    @fact("host.access.macos_groups")
    def macos_groups(self) -> tuple[Group, ...]:
        """macOS: every group record of the local directory node, nested groups expanded
        (their primary-group members come from the user records)."""
        from tillsyn.collectors.host import access_macos as mac

        self.require_platform(mac.GROUPS_FACT, MACOS)
        users = tuple(u.account for u in self.macos_users())
        result = self.command(mac.GROUPS_FACT, mac.DSCL_GROUPS)
        return mac.parse_groups(result.stdout, " ".join(mac.DSCL_GROUPS), users)

    def _access_powershell(self, name: str, argv: list[str], call: str) -> tuple[str, str]:
        """Run one of our scripts; the errors name it briefly, not by its whole text."""
        try:
            result = self.command(name, argv)
        except FactCommandFailed as exc:
            said = (exc.stderr.strip().splitlines() or ["no output on stderr"])[0]
            if any(marker in exc.stderr for marker in ACCESS_DENIED):
                raise FactPermissionDenied(name, call, f"access denied: {said}") from exc
            if "CommandNotFoundException" in exc.stderr:
                raise FactUnavailable(
                    name,
                    call,
                    f"{said} (the Microsoft.PowerShell.LocalAccounts module is missing, as "
                    "in 32-bit PowerShell on 64-bit Windows)",
                ) from exc
            raise FactCommandFailed(name, [call], exc.returncode, exc.stderr) from exc
        except FactError as exc:
            raise type(exc)(name, call, exc.reason) from exc
        return result.stdout, result.stderr

    @fact("host.access.windows_users")
    def windows_users(self) -> WindowsUsers:
        """Windows: the local users (Get-LocalUser), without any password material."""
        from tillsyn.collectors.host import access_windows as win

        self.require_platform(win.USERS_FACT, WINDOWS)
        stdout, stderr = self._access_powershell(
            win.USERS_FACT, win.POWERSHELL_USERS, win.USERS_CALL
        )
        return win.parse_users(stdout, stderr, win.USERS_CALL)

    @fact("host.access.windows_groups")
    def windows_groups(self) -> WindowsGroups:
        """Windows: the members of the privileged built-in groups (see
        :data:`~.access_windows.PRIVILEGED_GROUPS`)."""
        from tillsyn.collectors.host import access_windows as win

        self.require_platform(win.GROUPS_FACT, WINDOWS)
        stdout, stderr = self._access_powershell(
            win.GROUPS_FACT, win.POWERSHELL_GROUPS, win.GROUPS_CALL
        )
        return win.parse_groups(stdout, stderr, win.GROUPS_CALL)
