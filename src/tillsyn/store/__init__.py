"""The central store: agents push sealed evidence chains, auditors and Prometheus read them.

``store`` imports only the record schema from ``tillsyn.agent.evidence`` and the chain
verifier; it never imports collectors or checks.
"""
