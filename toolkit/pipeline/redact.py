"""Secrets out of stream URLs before they are printed, logged, recorded or served: :func:`redact_url`.

Every place that shows a source (error messages, the Source's name and status, events, the demo summary, the web
view) goes through this one function, so ``rtsp://admin:hunter2@cam/stream`` is ``rtsp://admin:***@cam/stream``
everywhere.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# Query/fragment parameters whose values are hidden: passwords, tokens, API keys, signatures, session ids.
SECRET_PARAM = re.compile(r"pass|pwd|token|secret|key|auth|sig|cred|session", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")
_PARAM = re.compile(r"([?&;#])([^=&;#]*)=([^&;#]*)")


def redact_url(text: str) -> str:
    """``text`` with every ``scheme://`` URL in it redacted; anything else (file paths, camera indices) unchanged.

    * userinfo: ``user:pass@`` -> ``user:***@`` (also with an empty user, ``:pass@`` -> ``:***@``); userinfo
      without a password, often a token, -> ``***@``. It ends at the last ``@`` before the query (or, with no
      ``/`` before it, at the last ``@``), so ``@``, ``/``, ``?`` or ``#`` typed unencoded in a password are
      hidden too; percent-encoded characters stay as typed.
    * query and fragment: the values of parameters named like a secret (``password``, ``token``, ``api_key``,
      ``sig``, ``auth``, ...; the name matched after percent-decoding) -> ``***``; other parameters stay readable.
    """
    return _URL.sub(lambda match: _redact_one(match.group(0)), str(text))


def _redact_one(url: str) -> str:
    scheme, _, rest = url.partition("://")
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, cut)
    if at < 0 and "@" in rest and "/" not in rest[: rest.rfind("@")]:
        at = rest.rfind("@")  # a '?' or '#' typed in the password: still userinfo (no path before the '@')
    if at >= 0:
        cut = max(cut, at + 1)
    head, tail = rest[:cut], rest[cut:]
    if at >= 0:
        user, colon, _ = head[:at].partition(":")
        head = (f"{user}:{MASK}" if colon else MASK) + head[at:]
    tail = _PARAM.sub(lambda m: f"{m[1]}{m[2]}={MASK if SECRET_PARAM.search(unquote(m[2])) else m[3]}", tail)
    return f"{scheme}://{head}{tail}"
