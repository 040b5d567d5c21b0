"""Django integration: add ``"fxa_metrics.django.MetricsMiddleware"`` to ``MIDDLEWARE``.

Put it first in ``MIDDLEWARE``, so it times and summarises everything below it.
Django turns a view's exception into a 500 inside the handler; its
``process_exception`` hook is where the middleware captures it (once, marked
``handled: false``), with ``DEBUG_PROPAGATE_EXCEPTIONS`` on or off. A 5xx
``request.summary`` is logged at ERROR. The statsd ``path`` tag is
``resolver_match.route`` (``/relay/<int:mask>/``), or ``_unmatched_``. It also
answers the dockerflow health paths; ``FXA_METRICS_VERSION_PATH`` in settings
names the ``version.json`` (default: the working directory's).

Importing this module does not import Django until a response is built.
"""

from __future__ import annotations

from typing import Any

from ._middleware import DjangoMiddleware

__all__ = ["MetricsMiddleware"]


class MetricsMiddleware(DjangoMiddleware):
    """:class:`fxa_metrics.DjangoMiddleware` plus ``/__heartbeat__``, ``/__lbheartbeat__``,
    ``/__version__``."""

    health = True

    def __init__(self, get_response: Any) -> None:
        super().__init__(get_response)
        from django.conf import settings

        self.version_path = getattr(settings, "FXA_METRICS_VERSION_PATH", None)
