"""How the console's pages are rendered: templates from the package, every value escaped,
and the words and colours that statuses are shown with."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from app.http.console.forms import when

TEMPLATES = Path(__file__).parent / "templates"
# A status's colour: how it went (good, bad, odd) whatever kind of thing it is the status of.
TONES = {
    **dict.fromkeys(("succeeded", "finished", "applied", "delivered"), "good"),
    **dict.fromkeys(("failed", "rejected", "abandoned", "dead", "malformed"), "bad"),
    **dict.fromkeys(("stale", "unmatched", "unrecognized", "duplicate", "ignored"), "odd"),
}
# What a finished action says on the page it returns to: fixed words, never request text.
DONE = {
    "confirmed": "Asked ICE; the job is shown as it is now.",
    "retried": "The delivery is due again.",
    "enabled": "The subscription is enabled.",
    "disabled": "The subscription is disabled.",
}


def environment() -> jinja2.Environment:
    """Templates from the package, every value escaped, an unknown name an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["tone"] = lambda value: TONES.get(str(value), "neutral")
    env.filters["short"] = lambda value: str(value)[:8] if value else ""
    # JSON from outside, indented, as text: the autoescape makes it safe to show.
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)
    return env
