"""What ``exporter="datadog"`` checks in the application's environment before anything is built: the site
(``DD_SITE``, with LLM Observability) and, agentless, the API key. Light: ``instrument()`` runs it before the
OpenTelemetry SDK is imported, and raises there, where the mistake is made."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_DATADOG_SITE = "datadoghq.com"
#: Datadog sites that offer LLM Observability (docs.datadoghq.com/getting_started/site and the LLM Observability pages).
LLMOBS_SITES = ("datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu", "ap1.datadoghq.com", "ap2.datadoghq.com")
#: Datadog sites where LLM Observability "is not supported for your selected Datadog site" (US1-FED, US2-FED).
NO_LLMOBS_SITES = ("ddog-gov.com", "us2.ddog-gov.com")
#: Header carrying the API key on Datadog's OTLP intake (agentless).
DATADOG_API_KEY_HEADER = "dd-api-key"
#: Header that routes OTLP traces into LLM Observability, as Datadog's OTel instrumentation docs name it.
DATADOG_OTLP_SOURCE_HEADER = "dd-otlp-source"
DATADOG_OTLP_SOURCE_LLMOBS = "llmobs"


def check(settings: Any) -> tuple[str | None, str | None]:
    """(site, API key) for ``exporter="datadog"``: the site when agentless or sending evaluations, the key when
    agentless; a ValueError naming what to set when either is wrong."""
    evaluations_on = settings.datadog_evaluations is not False
    site = datadog_site() if settings.datadog_agentless or evaluations_on else None
    api_key = None
    if settings.datadog_agentless:
        api_key = os.environ.get("DD_API_KEY", "").strip()
        if not api_key:
            raise ValueError(
                "instrument(exporter='datadog', datadog_agentless=True) sends to Datadog's OTLP intake and needs your "
                "API key in the DD_API_KEY environment variable; set it, or drop datadog_agentless to use a local Datadog Agent"
            )
    return site, api_key


def datadog_site() -> str:
    """``DD_SITE`` (default datadoghq.com), checked: a site without LLM Observability, or no Datadog site, is a ValueError."""
    raw = os.environ.get("DD_SITE", "").strip()
    site = raw or DEFAULT_DATADOG_SITE
    for prefix in ("https://", "http://"):
        if site.startswith(prefix):
            site = site[len(prefix):]
    site = site.strip("/").lower()
    if site.startswith("app."):  # the web address people copy: app.datadoghq.eu is the site datadoghq.eu
        site = site[len("app."):]
    if site in NO_LLMOBS_SITES:
        raise ValueError(
            f"DD_SITE={raw!r}: Datadog LLM Observability is not offered on {site}, so exporter='datadog' cannot send LLM "
            "traces or evaluations there; through a Datadog Agent with datadog_evaluations=False, traces reach APM only. "
            f"Sites with LLM Observability: {', '.join(LLMOBS_SITES)}"
        )
    if site not in LLMOBS_SITES:
        raise ValueError(f"DD_SITE={raw!r} is not a Datadog site; allowed: {', '.join(LLMOBS_SITES)}")
    return site
