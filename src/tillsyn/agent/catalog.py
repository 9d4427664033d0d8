"""The control catalog: ISO/IEC 27001:2022 Annex A and the annex of (EU) 2024/2690.

Canonical ids are ``iso27001:2022/A.8.13`` and ``nis2/6.10.2.b``. Policies and other
tools write them many ways (``A8.8``, ``27002:8.8``, ``[NIS 6.10]``, ``6.10.2(b)``);
:meth:`Catalog.parse` accepts those and refuses anything that is not in the catalog,
because a control id an auditor cannot find is a defect. A result on ``nis2/6.10.2.b``
also evidences ``nis2/6.10.2``, ``nis2/6.10`` and ``nis2/6`` (:meth:`Catalog.ancestors`).
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import cached_property
from importlib import resources

ISO = "iso27001:2022"
NIS2 = "nis2"
FRAMEWORKS = {
    ISO: "ISO/IEC 27001:2022 Annex A",
    NIS2: "Commission Implementing Regulation (EU) 2024/2690, Annex (NIS2)",
}


class UnknownControlError(ValueError):
    """A control id that is malformed, ambiguous or not in the catalog."""


@dataclass(frozen=True)
class Control:
    framework: str
    ref: str  # the id inside its framework: "A.8.13", "6.10.2.b"
    title: str
    depth: int
    assessable: bool  # a requirement on its own (not only a heading)

    @property
    def id(self) -> str:
        return f"{self.framework}/{self.ref}"

    @property
    def parent_ref(self) -> str | None:
        head, sep, _ = self.ref.rpartition(".")
        return head if sep and head != "A" else None


_ISO_PREFIX = re.compile(
    r"^(?:iso(?:/iec)?[\s_-]*)?(?:2700[12])(?::2022|[\s-]*2022)?[\s:/]*(?:annex\s*)?", re.I
)
_ISO_LOOSE = re.compile(r"^iso(?:/iec)?(?::2022)?[\s:/]+", re.I)
_NIS_PREFIX = re.compile(r"^(?:nis\s*2?|eu\s*2024/2690)[\s:/]*", re.I)
_ISO_REF = re.compile(r"^a\.?\s*([5-8])(?:\.(\d{1,2}))?$", re.I)
_BARE_ISO_REF = re.compile(r"^([5-8])\.(\d{1,2})$")
_NIS_REF = re.compile(r"^(\d{1,2}(?:\.\d{1,2})*)(?:\.([a-z])|\s*\(([a-z])\))?$", re.I)


class Catalog:
    """Both frameworks' controls, loaded once from the package's data files."""

    def __init__(self, controls: list[Control]) -> None:
        self.controls: dict[str, Control] = {c.id: c for c in controls}

    @classmethod
    def load(cls) -> Catalog:
        folder = resources.files("tillsyn.agent.controls")
        controls: list[Control] = []
        with folder.joinpath("iso27001_2022.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                is_control = row["kind"] == "control"
                controls.append(
                    Control(ISO, row["id"], row["title"], 2 if is_control else 1, is_control)
                )
        with folder.joinpath("nis2_2024_2690.csv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                controls.append(
                    Control(
                        NIS2,
                        row["id"],
                        row["title"],
                        int(row["depth"]),
                        row["assessable"] == "true",
                    )
                )
        return cls(controls)

    def __contains__(self, control_id: str) -> bool:
        return control_id in self.controls

    def __getitem__(self, control_id: str) -> Control:
        return self.controls[control_id]

    def framework(self, framework: str) -> list[Control]:
        return [c for c in self.controls.values() if c.framework == framework]

    @cached_property
    def _children(self) -> dict[str, list[str]]:
        children: dict[str, list[str]] = {}
        for control in self.controls.values():
            parent = self.parent(control.id)
            if parent:
                children.setdefault(parent, []).append(control.id)
        return children

    def parent(self, control_id: str) -> str | None:
        control = self.controls[control_id]
        ref = control.parent_ref
        return f"{control.framework}/{ref}" if ref else None

    def ancestors(self, control_id: str) -> list[str]:
        """``nis2/6.10.2.b`` -> ``[nis2/6.10.2, nis2/6.10, nis2/6]``: what a result rolls up to."""
        out: list[str] = []
        parent = self.parent(control_id)
        while parent:
            out.append(parent)
            parent = self.parent(parent)
        return out

    def descendants(self, control_id: str) -> list[str]:
        out: list[str] = []
        for child in self._children.get(control_id, []):
            out.append(child)
            out.extend(self.descendants(child))
        return out

    def parse(self, text: str) -> str:
        """The canonical id for any accepted spelling; :class:`UnknownControlError` otherwise."""
        if text in self.controls:  # canonical already, as records and configs mostly write
            return text
        raw = text
        text = text.strip().strip("[]").strip()
        if not text:
            raise UnknownControlError("empty control id")
        if text.startswith((ISO + "/", NIS2 + "/")):
            return self._known(text, raw)
        iso_match = _ISO_PREFIX.match(text) or _ISO_LOOSE.match(text)
        if iso_match and iso_match.end() > 0:
            return self._iso(text[iso_match.end() :].strip(), raw)
        nis_match = _NIS_PREFIX.match(text)
        if nis_match and nis_match.end() > 0:
            return self._nis(text[nis_match.end() :].strip(), raw)
        if text[:1] in "aA":
            return self._iso(text, raw)
        ref = self._nis_ref(text)
        if ref is None:
            raise UnknownControlError(
                f"{raw!r} is not a control id this catalog understands "
                "(write e.g. A.8.13 or NIS 6.10.2(b))"
            )
        iso_twin = _BARE_ISO_REF.match(text)
        if iso_twin and f"{ISO}/A.{text}" in self and f"{NIS2}/{ref}" in self:
            raise UnknownControlError(
                f"{raw!r} is ambiguous: write A.{text} for ISO/IEC 27001:2022 "
                f"or 'NIS {text}' for (EU) 2024/2690"
            )
        if iso_twin and f"{ISO}/A.{text}" in self and f"{NIS2}/{ref}" not in self:
            return f"{ISO}/A.{text}"
        return self._known(f"{NIS2}/{ref}", raw)

    def _iso(self, ref: str, raw: str) -> str:
        match = _ISO_REF.match(ref) or _BARE_ISO_REF.match(ref)
        if not match:
            raise UnknownControlError(
                f"{raw!r} is not an ISO/IEC 27001:2022 Annex A id (A.5.1 to A.8.34)"
            )
        if match.group(2) is None:  # a theme: A.8 "Technological controls"
            return self._known(f"{ISO}/A.{match.group(1)}", raw)
        return self._known(f"{ISO}/A.{match.group(1)}.{int(match.group(2))}", raw)

    @staticmethod
    def _nis_ref(ref: str) -> str | None:
        match = _NIS_REF.match(ref)
        if not match:
            return None
        letter = match.group(2) or match.group(3)
        return match.group(1) + (f".{letter.lower()}" if letter else "")

    def _nis(self, ref: str, raw: str) -> str:
        canonical = self._nis_ref(ref)
        if canonical is None:
            raise UnknownControlError(
                f"{raw!r} is not a requirement id of (EU) 2024/2690 (e.g. 6.10.2(b))"
            )
        return self._known(f"{NIS2}/{canonical}", raw)

    def _known(self, control_id: str, raw: str) -> str:
        if control_id in self.controls:
            return control_id
        close = difflib.get_close_matches(control_id, list(self.controls), n=3, cutoff=0.8)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        framework = control_id.split("/", 1)[0]
        name = FRAMEWORKS.get(framework, framework)
        raise UnknownControlError(f"{raw!r} ({control_id}) is not in {name}{hint}")
