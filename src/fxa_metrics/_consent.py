"""Consent: may this prepared record go out on this route, for this request?

FxA's rule (auth-server): emit ⇔ service_enabled ∧ metrics_enabled(user).
The per-route matrix (DESIGN 5) lives here, in one place:

==========================  ========================  ================
route / record              opted-out user            service disabled
==========================  ========================  ================
glean product ping          dropped (``consent``)     dropped (``service_disabled``)
glean server-deletion-req.  **sent**                  dropped (``service_disabled``)
statsd                      sent                      sent
mozlog                      sent                      sent
sentry                      sent, no user context     sent
==========================  ========================  ================
"""

from __future__ import annotations

from typing import Any

from ._context import RequestContext

CONSENT = "consent"
SERVICE_DISABLED = "service_disabled"


def user_opted_out(ctx: RequestContext) -> bool:
    """Whether the request's user has opted out of data collection (``metricsOptOutAt``)."""
    return ctx.metrics_opt_out is True


def gate(route: str, prepared: Any, ctx: RequestContext, rt: Any) -> Any:
    """Apply the matrix: the record to send on ``route`` (possibly reduced), or None to drop.

    A drop is counted on ``rt.stats`` here, with its reason.
    """
    if route != "glean":
        return prepared
    if not rt.settings.enabled:
        rt.stats.drop(SERVICE_DISABLED, prepared.ping)
        return None
    if prepared.product and user_opted_out(ctx):
        rt.stats.drop(CONSENT, prepared.ping)
        return None
    return prepared
