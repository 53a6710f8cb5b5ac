"""Inbound trust: sender authentication (SPF, DKIM, DMARC, ARC) and the policy applied to
its results at the MX. Entry point for listeners: ``mailcore.trust.hook.screen_inbound``."""
