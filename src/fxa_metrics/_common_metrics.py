"""The Glean common metrics FxA fills from the request context, and the field that fills each.

Its own module because both the definitions compiler and the request context
need it, and neither should import the other for one table.
"""

from __future__ import annotations

# Glean common metrics (FxA: string metrics with `lifetime: application`) and
# the context attribute that fills each one.
COMMON_METRICS: dict[str, str] = {
    "account.user_id": "uid",
    "account.user_id_sha256": "uid_sha256",
    "relying_party.oauth_client_id": "oauth_client_id",
    "relying_party.service": "service",
    "session.device_type": "device_type",
    "session.entrypoint": "entrypoint",
    "session.entrypoint_experiment": "entrypoint_experiment",
    "session.entrypoint_variation": "entrypoint_variation",
    "session.flow_id": "flow_id",
    "utm.campaign": "utm_campaign",
    "utm.content": "utm_content",
    "utm.medium": "utm_medium",
    "utm.source": "utm_source",
    "utm.term": "utm_term",
}
