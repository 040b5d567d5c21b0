"""A Django service, in one module, instrumented with ``fxa_metrics.django.MetricsMiddleware``.

Run it: ``gunicorn --workers 2 --bind 127.0.0.1:8000 examples.django_app:application``.
``EXAMPLE_PROPAGATE=1`` turns ``DEBUG_PROPAGATE_EXCEPTIONS`` on; crashes are
captured either way.
"""

from __future__ import annotations

import os
from typing import Any

import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

import fxa_metrics as fm

from ._setup import VERSION_JSON, opted_out, setup

settings.configure(
    DEBUG=False,
    DEBUG_PROPAGATE_EXCEPTIONS=os.environ.get("EXAMPLE_PROPAGATE") == "1",
    ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
    SECRET_KEY="example-only-not-secret",
    ROOT_URLCONF=__name__,
    # First, so it times and summarises everything below it.
    MIDDLEWARE=["fxa_metrics.django.MetricsMiddleware"],
    FXA_METRICS_VERSION_PATH=VERSION_JSON,
)
django.setup()
# Django's ORM connections are per thread: consent_timeout=None runs the
# lookup inline on the request's thread (docs/consent.md).
setup("fxa-example-django", consent_lookup_uid=opted_out, consent_timeout=None)


def login(request: Any, uid: str) -> HttpResponse:
    with fm.bind(uid=uid):
        fm.record("login.complete", extra={"reason": "relay"})
    return HttpResponse("ok")


def boom(request: Any) -> HttpResponse:
    raise RuntimeError("the example view crashed")


urlpatterns = [
    path("v1/account/<str:uid>/login", login),
    path("v1/boom", boom),
]

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after settings.configure()

application = get_wsgi_application()
