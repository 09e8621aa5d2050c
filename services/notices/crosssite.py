"""Whether a form post comes from another site (cross-site request forgery), by its headers.

A hostile page can make a visitor's browser post our public forms (subscribe a number,
an address) without the visitor knowing. Browsers say where a post comes from:
`Sec-Fetch-Site` (current browsers; set by the browser, no page can forge it) and
`Origin` (older ones too). A post that says neither does not come from a browser page,
so it cannot be forged from one: it is let through, like curl or a test.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

# `none`: the person typed the address or used a bookmark.
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def cross_site(headers: Mapping[str, str], public_url: str) -> bool:
    """True when the browser says the post was made by a page of another origin.

    `same-site` counts as cross-site: a sibling subdomain is not necessarily ours. The
    Origin's host must be the one the browser addressed (Host) or the village's public
    URL (a proxy in front may rewrite Host); its scheme is not compared, since a proxy
    ending TLS makes ours look like http.
    """
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site:
        return site not in TRUSTED_FETCH_SITES
    origin = headers.get("origin", "").strip()
    if not origin:
        return False
    host = _host(origin)  # "null" (a sandboxed or privacy-sensitive page) has none
    ours = {headers.get("host", "").strip().lower(), _host(public_url)} - {""}
    return not host or host not in ours
