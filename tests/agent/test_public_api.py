"""The plugin API surface only changes on purpose."""

import tillsyn.plugin


def test_plugin_api_exports_exactly_the_documented_names() -> None:
    assert sorted(tillsyn.plugin.__all__) == sorted(
        [
            "TARGET",
            "CheckSpec",
            "FactCommandFailed",
            "FactError",
            "FactParseError",
            "FactPermissionDenied",
            "FactTimeout",
            "FactUnavailable",
            "NoParams",
            "Resource",
            "Result",
            "Severity",
            "Status",
            "age_text",
            "check",
        ]
    )
    for name in tillsyn.plugin.__all__:
        assert getattr(tillsyn.plugin, name) is not None
