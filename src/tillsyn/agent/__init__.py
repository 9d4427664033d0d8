"""The agent runtime: catalog, registry, config, runner, evidence, local store and CLI."""
