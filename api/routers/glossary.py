"""The words the reports use, served to the web page so the dashboard and the reports say the same thing.

``analytics.labels`` is the one glossary: the page's ``i18n.js`` loads it from here under the
``report.`` prefix (시간가동률 · 성능가동률 · 양품률 · 공정불량률 on both). Public: labels are
no secret, and the login page needs them before anyone logs in.
"""

from __future__ import annotations

import json
from functools import cache

from fastapi import APIRouter
from fastapi.responses import Response

from analytics.labels import LANGS, keys, label
from api import access

router = APIRouter(prefix="/api/v1", tags=["glossary"])


@cache
def _glossary_json() -> bytes:
    """The labels are fixed for the life of the process: serialised once (every page load asks for them)."""
    return json.dumps({lang: {k: label(k, lang) for k in keys()} for lang in LANGS}, ensure_ascii=False,
                      separators=(",", ":")).encode()


@router.get("/glossary", response_model=dict[str, dict[str, str]], **access.public())
async def glossary() -> Response:
    """Every report label in Korean and English: ``{"ko": {key: text}, "en": {...}}``."""
    return Response(_glossary_json(), media_type="application/json")
