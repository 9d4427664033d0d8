"""Windows: the Defender Firewall's three profiles (Domain, Private, Public).

A module of its own because Windows keeps the firewall's verdict per network profile,
not in a ruleset the Linux reader could walk. The answer comes from a PowerShell script
of ours (:data:`SCRIPT`): ``Get-NetFirewallProfile -PolicyStore ActiveStore`` (the
policy in force: local settings merged with Group Policy and MDM) with each value turned
into its enum *name* before ``ConvertTo-Json``. Names, because the numbers are a trap:
the CIM class's ``DefaultInboundAction`` is NotConfigured = 0, Allow = 2, Block = 4
(NetSecurity.Action), unlike the COM API's NET_FW_ACTION (Block = 0, Allow = 1), and
``Enabled`` is a GpoBoolean (False = 0, True = 1, NotConfigured = 2). Should a host print
numbers anyway, those CIM numbers are what they mean; any other value is a parse error.
``netsh advfirewall show allprofiles`` is not used: it prints in the display language.

A profile protects when it is enabled and its default inbound action is Block. A default
inbound action that is NotConfigured leaves Windows' own default in force, Block
("These settings are Block by default", INetFwPolicy2::get_DefaultInboundAction); an
``Enabled`` that is NotConfigured has no such documented default here and stays unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from tillsyn.collectors.errors import FactParseError
from tillsyn.collectors.host.powershell import script_json

FACT = "host.endpoint.windows_firewall"
PROFILES = ("Domain", "Private", "Public")

SCRIPT = (
    "$ErrorActionPreference = 'Stop'; "
    "$out = @(Get-NetFirewallProfile -PolicyStore ActiveStore | ForEach-Object { "
    "[pscustomobject]@{ Name = [string]$_.Name; Enabled = [string]$_.Enabled; "
    "DefaultInboundAction = [string]$_.DefaultInboundAction; "
    "DefaultOutboundAction = [string]$_.DefaultOutboundAction } }); "
    "ConvertTo-Json -InputObject $out -Compress"
)
POWERSHELL_PROFILES = ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", SCRIPT]
CALL = "powershell.exe -NoProfile -NonInteractive -Command <Get-NetFirewallProfile script>"

#: GpoBoolean and NetSecurity.Action, by name and by their CIM numbers.
_ENABLED = {"True": "True", "1": "True", "False": "False", "0": "False"}
_ENABLED |= {"NotConfigured": "NotConfigured", "2": "NotConfigured"}
_ACTIONS = {"Block": "Block", "4": "Block", "Allow": "Allow", "2": "Allow"}
_ACTIONS |= {"NotConfigured": "NotConfigured", "0": "NotConfigured"}
#: Access refusals as PowerShell prints a CimException (Windows System Error 5).
ACCESS_DENIED = ("Access is denied", "PermissionDenied", "Windows System Error 5")


@dataclass(frozen=True)
class FirewallProfile:
    """One profile as the active policy store has it, values named as Windows names them."""

    name: str  # Domain, Private, Public
    enabled: str  # True, False, NotConfigured
    inbound: str  # default inbound action: Block, Allow, NotConfigured
    outbound: str

    @property
    def state(self) -> str:
        """deny (on, inbound Block), open, or unknown (Enabled not configured)."""
        if self.enabled == "False":
            return "open"
        if self.enabled == "NotConfigured":
            return "unknown"
        return "deny" if self.inbound in ("Block", "NotConfigured") else "open"

    def observed(self) -> dict[str, object]:
        return {
            "profile": self.name,
            "enabled": self.enabled,
            "default_inbound_action": self.inbound,
            "default_outbound_action": self.outbound,
        }

    def describe(self) -> str:
        if self.enabled == "False":
            return "the firewall is off for this profile"
        if self.enabled == "NotConfigured":
            return "Enabled is NotConfigured in the active policy store: on or off is unknown"
        if self.inbound == "NotConfigured":
            return (
                "the firewall is on; default inbound action NotConfigured, so Windows' "
                "default (Block) applies"
            )
        return f"the firewall is on, default inbound action {self.inbound}"


def _value(item: dict[str, object], key: str, names: dict[str, str], call: str) -> str:
    raw = item.get(key)
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
    if text is None or text not in names:
        raise FactParseError(FACT, call, f"unknown {key}", repr(raw))
    return names[text]


def parse_profiles(stdout: str, stderr: str, call: str) -> dict[str, FirewallProfile]:
    """The profiles the script listed, by name; a profile it lacks is simply absent.

    Anything on stderr (a non-terminating error printed beside the JSON) is an error,
    never a partial answer taken as complete.
    """
    data = script_json(stdout, stderr, FACT, call, "Get-NetFirewallProfile reported")
    items = data if isinstance(data, list) else [data]
    profiles: dict[str, FirewallProfile] = {}
    for item in items:
        if not isinstance(item, dict):
            raise FactParseError(FACT, call, "a profile is not a JSON object", repr(item))
        name = item.get("Name")
        if not isinstance(name, str) or not name:
            raise FactParseError(FACT, call, "profile without a name", repr(item))
        if name in profiles:
            raise FactParseError(FACT, call, f"profile {name} listed twice", stdout.strip())
        profiles[name] = FirewallProfile(
            name=name,
            enabled=_value(item, "Enabled", _ENABLED, call),
            inbound=_value(item, "DefaultInboundAction", _ACTIONS, call),
            outbound=_value(item, "DefaultOutboundAction", _ACTIONS, call),
        )
    return profiles
