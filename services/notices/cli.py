"""`crieur`: the operator's and the staff's work from a shell.

Operator commands (commune, staff) talk to NATS directly (CRIEUR_NATS_URL); staff commands
(publish, correct, withdraw) go through the HTTP API with a staff token, exactly like a
script of the mairie's would (CRIEUR_API_URL, CRIEUR_TOKEN).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import json
import mimetypes
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import nats.errors
from pydantic import ValidationError

from crieur import dead_letters
from crieur import provision as provisioning
from crieur.bus import TRY_ONCE
from crieur.geo import geography
from crieur.settings import CommonSettings
from services.notices.groups import GROUP_RE, Group, GroupRegistry
from services.notices.staff import Person, StaffNotFound, check_password, login_of
from services.notices.store import NatsStore

StoreCommand = Callable[[NatsStore, argparse.Namespace], Awaitable[int]]

DEFAULT_API_URL = "http://127.0.0.1:8080"
INSEE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})$")
# A retried request (network cut, bus busy) is sent again this many times in all.
ATTEMPTS = 4


def insee(value: str) -> str:
    """argparse type: a malformed code is a usage error naming it, not a traceback."""
    if not INSEE_RE.match(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an INSEE code (five characters: 70299, 2A004)")
    return value


async def with_store(command: StoreCommand, args: argparse.Namespace) -> int:
    """Run an operator command with a NATS connection, closed whatever happens."""
    url = CommonSettings().nats_url
    try:
        store = await NatsStore.connect(url, name="crieur-cli", options=TRY_ONCE)
    except (OSError, nats.errors.Error) as error:
        print(f"error: cannot reach NATS at {url} ({error}); is the village running? "
              "(CRIEUR_NATS_URL)", file=sys.stderr)
        return 3
    try:
        return await command(store, args)
    except ValidationError as error:
        for err in error.errors():
            print(f"error: {err['msg']}: {err.get('input')!r}", file=sys.stderr)
        return 2
    finally:
        await store.close()


async def commune_add(store: NatsStore, args: argparse.Namespace) -> int:
    if args.name is None:
        # The official name (geo.py), so a newcomer need not type it.
        official = geography().communes.get(args.insee)
        if official is None:
            print(f"error: {args.insee} is not in the official list of communes: give its "
                  "name (crieur commune add INSEE NAME)", file=sys.stderr)
            return 2
        args.name = official.name
    existing = await store.commune_registry.get(args.insee)
    if existing is not None and existing.name == args.name:
        print(f"commune {existing.insee} {existing.name} already registered")
        return 0
    if existing is not None:
        # Renaming is its own command: a typo in a code must not rename another commune.
        print(f"error: commune {existing.insee} exists, named {existing.name!r}; to rename it: "
              f"crieur commune rename {existing.insee} {args.name!r}", file=sys.stderr)
        return 1
    commune = await store.commune_registry.add(args.insee, args.name)
    print(f"commune {commune.insee} {commune.name} registered")
    return 0


async def commune_rename(store: NatsStore, args: argparse.Namespace) -> int:
    existing = await store.commune_registry.get(args.insee)
    if existing is None:
        print(f"error: commune {args.insee} is not registered (crieur commune add)",
              file=sys.stderr)
        return 1
    commune = await store.commune_registry.add(args.insee, args.name)
    print(f"commune {commune.insee} renamed from {existing.name} to {commune.name}")
    return 0


async def commune_list(store: NatsStore, _: argparse.Namespace) -> int:
    for commune in await store.commune_registry.all():
        print(f"{commune.insee}\t{commune.name}")
    return 0


async def commune_approval(store: NatsStore, args: argparse.Namespace) -> int:
    categories = () if args.none else tuple(dict.fromkeys(args.require or ()))
    if not args.none and not categories:
        commune = await store.commune_registry.get(args.insee)
        if commune is None:
            print(f"error: commune {args.insee} is not registered", file=sys.stderr)
            return 1
        shown = ", ".join(commune.settings.approval_required_for) or "none"
        print(f"commune {commune.insee}: approval required for: {shown}")
        return 0
    updated = await store.commune_registry.require_approval(args.insee, categories)
    if updated is None:
        print(f"error: commune {args.insee} is not registered (crieur commune add)",
              file=sys.stderr)
        return 1
    shown = ", ".join(updated.settings.approval_required_for) or "none"
    print(f"commune {updated.insee}: approval required for: {shown}")
    return 0


def read_password(args: argparse.Namespace) -> str | None:
    """The new password: from stdin's first line (scripts) or typed twice at a prompt."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("error: no terminal to type a password in: use --password-stdin",
              file=sys.stderr)
        return None
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        print("error: the two passwords differ", file=sys.stderr)
        return None
    return first


async def _set_password(store: NatsStore, name: str, password: str,
                        communes: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> int:
    before = await store.staff_registry.account(login_of(name))
    try:
        account = await store.staff_registry.set_password(name, password, communes, groups)
    except ValueError as error:  # WeakPassword, a login taken by another name
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"password set: sign in at /staff/login as user {account.login!r} "
          f"(communes {', '.join(account.communes)})", file=sys.stderr)
    if before is not None:
        print(f"sessions ended: every browser signed in as {account.login!r} must sign in "
              "again", file=sys.stderr)
    return 0


async def staff_add(store: NatsStore, args: argparse.Namespace) -> int:
    groups = tuple(dict.fromkeys(args.group or ()))
    communes = list(args.commune or ())
    registry = GroupRegistry(store.groups_kv)
    for group_id in groups:
        group = await registry.get(group_id)
        if group is None:
            print(f"error: no group {group_id!r} (crieur group list)", file=sys.stderr)
            return 2
        # Its registered communes too: it reads each one's staff list and approves there.
        registered = {c.insee for c in await store.commune_registry.all()}
        communes.extend(c for c in group.communes if c in registered)
    if not communes and not groups:
        print("error: give --commune or --group", file=sys.stderr)
        return 2
    args.commune = list(dict.fromkeys(communes))
    for insee in args.commune:
        if await store.commune_registry.get(insee) is None:
            print(f"error: commune {insee} is not registered (crieur commune add)",
                  file=sys.stderr)
            return 2
    password = None
    if not args.no_password and not args.password_stdin and not sys.stdin.isatty():
        # A script that only wants a token (as before passwords existed) still gets one.
        print(f"note: no password set (no terminal, no --password-stdin); to set one: "
              f"crieur staff passwd {args.name!r}", file=sys.stderr)
    elif not args.no_password:
        password = read_password(args)
        if password is None:
            return 2
        try:
            check_password(password)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    member, token = await store.staff_registry.add(args.name, tuple(args.commune), groups)
    scope = f"group {', '.join(groups)}: " if groups else ""
    print(f"staff {member.id} ({member.name}) for {scope}{len(member.communes)} communes "
          f"{', '.join(member.communes[:10])}{' ...' if len(member.communes) > 10 else ''}",
          file=sys.stderr)
    print("token (shown once, keep it safe):", file=sys.stderr)
    print(token)
    if password is not None:
        return await _set_password(store, args.name, password, tuple(args.commune), groups)
    return 0


async def staff_passwd(store: NatsStore, args: argparse.Namespace) -> int:
    known = await store.staff_registry.account(login_of(args.name))
    has_token = any(m.name == args.name and m.revoked_at is None
                    for _, m in await store.staff_registry.all())
    if known is None and not has_token:
        print(f"error: no staff member named {args.name!r} (crieur staff add)", file=sys.stderr)
        return 1
    name = known.name if known is not None else args.name
    password = read_password(args)
    if password is None:
        return 2
    return await _set_password(store, name, password)


def _ids(person: Person) -> str:
    """Every id a person answers to, each said for what it is (a revoked token marked)."""
    shown = [f"token {t.id}" + (" (revoked)" if t.revoked_at and person.revoked_at is None
                                else "") for t in person.tokens]
    if person.account is not None:
        shown.append(f"sign-in {person.account.id}")
    return ", ".join(shown)


def _state(person: Person) -> str:
    if person.revoked_at is not None:
        return f"revoked {person.revoked_at:%Y-%m-%d}"
    live = len(person.live_tokens)
    ways = [f"{live} token{'s' if live > 1 else ''}" if live else "no token"]
    account = person.account
    ways.append(f"password set {account.password_set_at:%Y-%m-%d}"
                if account is not None and person.signs_in else "no password")
    return f"active: {', '.join(ways)}"


async def staff_list(store: NatsStore, _: argparse.Namespace) -> int:
    # One line a person, tab-separated: login (- if no sign-in), name, ids, communes, state.
    for person in await store.staff_registry.people():
        login = person.account.login if person.account is not None else "-"
        print(f"{login}\t{person.name}\t{_ids(person)}\t{','.join(person.communes)}"
              f"\t{_state(person)}")
    return 0


async def staff_revoke(store: NatsStore, args: argparse.Namespace) -> int:
    try:
        revoked = await store.staff_registry.revoke(args.who)
    except StaffNotFound as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 1
    person = revoked.person
    if not revoked.tokens and revoked.account is None:
        # Idempotent: a script that revokes twice has what it asked for.
        print(f"{person.name} ({', '.join(person.ids)}): already revoked, nothing to end")
        return 0
    for token in revoked.tokens:
        print(f"revoked token {token.id} ({person.name}): the API refuses it")
    if revoked.account is not None:
        print(f"revoked sign-in {revoked.account.login} ({person.name}): password and "
              "open sessions ended")
    return 0


def _codes(value: str) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(c.strip() for c in value.split(",") if c.strip()))
    for code in codes:
        insee(code)
    return codes


async def group_add(store: NatsStore, args: argparse.Namespace) -> int:
    """A group from an official list: an EPCI, a département, or INSEE codes it checks."""
    geo = geography()
    if args.epci:
        members = [c.insee for c in geo.in_epci(args.epci)]
        if args.epci not in geo.epcis:
            print(f"error: no EPCI with SIREN {args.epci} in {geo.header[0]}", file=sys.stderr)
            return 2
        kind, code, name = "epci", args.epci, geo.epcis[args.epci]
    elif args.departement:
        members = [c.insee for c in geo.in_departement(args.departement)]
        if not members:
            print(f"error: no département {args.departement!r} (70, 2A, 971...)",
                  file=sys.stderr)
            return 2
        kind, code, name = "departement", args.departement, f"Département {args.departement}"
    else:
        members = list(args.communes)
        unknown = [c for c in members if c not in geo.communes]
        if unknown:
            print(f"error: not in the official list of communes: {', '.join(unknown)}",
                  file=sys.stderr)
            return 2
        if not args.id:
            print("error: a list of communes needs a group id: crieur group add ID "
                  "--communes ...", file=sys.stderr)
            return 2
        kind, code, name = "list", None, args.id
    group_id = args.id or f"{kind}-{code}".lower()
    if not GROUP_RE.match(group_id):
        print(f"error: {group_id!r}: a group id is lowercase letters, digits and dashes",
              file=sys.stderr)
        return 2
    group = Group(id=group_id, name=args.name or name, kind=kind, code=code,
                  communes=tuple(sorted(members)), created_at=datetime.now(UTC))
    await GroupRegistry(store.groups_kv).put(group)
    registered = {c.insee for c in await store.commune_registry.all()}
    here = sum(1 for c in group.communes if c in registered)
    print(f"group {group.id} ({group.name}): {len(group.communes)} communes, {here} "
          "registered in Crieur")
    return 0


async def group_list(store: NatsStore, _: argparse.Namespace) -> int:
    for group in await GroupRegistry(store.groups_kv).all():
        print(f"{group.id}\t{group.name}\t{group.kind}\t{len(group.communes)} communes")
    return 0


def _api(args: argparse.Namespace) -> httpx.Client:
    token = args.token or os.environ.get("CRIEUR_TOKEN")
    if not token:
        raise SystemExit("error: a staff token is needed: --token or CRIEUR_TOKEN")
    base = args.api_url or os.environ.get("CRIEUR_API_URL", DEFAULT_API_URL)
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _send(api: httpx.Client, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Send, and send again on a network error or a 503: every request is safe to repeat.

    A publication carries an Idempotency-Key, a correction repeated changes nothing more and
    a withdrawal repeated is refused (409): what was stored before its answer was lost is
    not applied twice.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = api.request(method, url, **kwargs)
        except httpx.TransportError:
            if attempt == ATTEMPTS:
                raise
        else:
            if response.status_code != 503 or attempt == ATTEMPTS:
                return response
        time.sleep(attempt)
    raise AssertionError("unreachable")


def _show(response: httpx.Response) -> int:
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    print(json.dumps(body, ensure_ascii=False, indent=2))
    return 0 if response.is_success else 1


def _url_and_text(value: str) -> tuple[str, str]:
    """`URL` or `URL text`: URLs hold no space, so the first space ends it."""
    url, _, text = value.strip().partition(" ")
    return url, text.strip()


def link(value: str) -> dict[str, str]:
    url, label = _url_and_text(value)
    return {"url": url, "label": label} if label else {"url": url}


def attachment(value: str) -> dict[str, str]:
    url, name = _url_and_text(value)
    media_type = mimetypes.guess_type(url.split("?")[0])[0] or "application/octet-stream"
    return {"url": url, "name": name or url.rstrip("/").rsplit("/", 1)[-1] or url,
            "media_type": media_type}


def _notice_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields = {k: getattr(args, k) for k in
              ("category", "title", "body", "publish_at", "starts_at", "ends_at")}
    fields["links"] = args.link
    fields["attachments"] = args.attachment
    return {k: v for k, v in fields.items() if v is not None}


def idempotency_key(commune: str, fields: dict[str, Any]) -> str:
    """The same command run again (within 24 h) is the same publication, not a second one."""
    canonical = json.dumps([commune, fields], sort_keys=True, ensure_ascii=False)
    return "crieur-cli-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


async def publish(args: argparse.Namespace) -> int:
    fields = _notice_fields(args)
    key = args.idempotency_key or idempotency_key(args.commune, fields)
    with _api(args) as api:
        response = _send(api, "POST", f"/api/v1/communes/{args.commune}/notices",
                         json=fields, headers={"Idempotency-Key": key})
    if response.headers.get("idempotent-replayed") == "true":
        print("note: this notice was already published (the same command within 24 h); "
              "nothing new was sent. To publish it again: --idempotency-key <new key>",
              file=sys.stderr)
    return _show(response)


async def correct(args: argparse.Namespace) -> int:
    # Repeating a correction is harmless: fields already at their value make no new version.
    with _api(args) as api:
        return _show(_send(api, "PATCH", f"/api/v1/communes/{args.commune}/notices/{args.id}",
                           json=_notice_fields(args)))


async def withdraw(args: argparse.Namespace) -> int:
    with _api(args) as api:
        return _show(_send(api, "POST",
                           f"/api/v1/communes/{args.commune}/notices/{args.id}/withdraw"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crieur", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(required=True, metavar="command")

    commune = sub.add_parser("commune", help="register, rename and list communes").add_subparsers(
        required=True, metavar="action")
    c_add = commune.add_parser("add", help="register a commune: commune add 70299 Lavoncourt "
                               "(without a name: the official one)")
    c_add.add_argument("insee", type=insee)
    c_add.add_argument("name", nargs="?")
    c_add.set_defaults(run=commune_add, store=True)
    c_rename = commune.add_parser("rename", help="rename a registered commune")
    c_rename.add_argument("insee", type=insee)
    c_rename.add_argument("name")
    c_rename.set_defaults(run=commune_rename, store=True)
    commune.add_parser("list", help="list communes").set_defaults(run=commune_list, store=True)
    c_approval = commune.add_parser(
        "approval", help="categories whose notices need a second staff member's approval: "
        "commune approval 70299 --require alerte (no option: show them)")
    c_approval.add_argument("insee", type=insee)
    c_approval.add_argument("--require", action="append",
                            choices=["information", "evenement", "travaux", "alerte"],
                            help="a category; repeatable")
    c_approval.add_argument("--none", action="store_true", help="no approval needed any more")
    c_approval.set_defaults(run=commune_approval, store=True)

    staff = sub.add_parser("staff", help="staff members: tokens, passwords, sessions"
                           ).add_subparsers(required=True, metavar="action")
    s_add = staff.add_parser("add", help="create a staff token (printed once) and set the "
                             "member's password for the staff pages (typed at a prompt)")
    s_add.add_argument("--commune", action="append", type=insee,
                       help="INSEE code; repeat for several communes")
    s_add.add_argument("--group", action="append",
                       help="a group (crieur group add): publishes for it as a whole, and "
                       "acts for each of its registered communes; repeatable")
    s_add.add_argument("--name", required=True)
    s_add.add_argument("--password-stdin", action="store_true",
                       help="read the password from the first line of stdin (scripts)")
    s_add.add_argument("--no-password", action="store_true",
                       help="a token only (a script's), no sign-in in the browser")
    s_add.set_defaults(run=staff_add, store=True)
    s_passwd = staff.add_parser("passwd", help="set or reset a staff member's password; "
                                "ends the sessions opened with the old one")
    s_passwd.add_argument("name", help="the staff member's name (or login)")
    s_passwd.add_argument("--password-stdin", action="store_true",
                          help="read the password from the first line of stdin (scripts)")
    s_passwd.set_defaults(run=staff_passwd, store=True)
    staff.add_parser("list", help="one line a person: login (- if none), name, ids (tokens "
                     "and sign-in), communes, state").set_defaults(run=staff_list, store=True)
    s_revoke = staff.add_parser("revoke", help="end every way a person has in: tokens, "
                                "password and open sessions; prints what it ended")
    s_revoke.add_argument("who", help="the person's login, name, or any of its ids (token or "
                          "sign-in, as staff list shows them)")
    s_revoke.set_defaults(run=staff_revoke, store=True)

    group = sub.add_parser("group", help="groups of communes (EPCI, département, a list)"
                           ).add_subparsers(required=True, metavar="action")
    g_add = group.add_parser("add", help="a group from the official lists: group add --epci "
                             "247000623, --departement 70, or ID --communes 70299,70300")
    g_add.add_argument("id", nargs="?", help="the group's id (default: epci-<SIREN>, "
                       "departement-<code>)")
    g_from = g_add.add_mutually_exclusive_group(required=True)
    g_from.add_argument("--epci", help="an EPCI's SIREN: its member communes")
    g_from.add_argument("--departement", help="a département's code: its communes")
    g_from.add_argument("--communes", type=_codes, help="INSEE codes, comma-separated")
    g_add.add_argument("--name", help="a display name (default: the official one)")
    g_add.set_defaults(run=group_add, store=True)
    group.add_parser("list", help="list groups").set_defaults(run=group_list, store=True)

    def api_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--commune", required=True, type=insee, help="INSEE code")
        sp.add_argument("--token", help="staff token (default: $CRIEUR_TOKEN)")
        sp.add_argument("--api-url", help=f"default: $CRIEUR_API_URL or {DEFAULT_API_URL}")

    def notice_args(sp: argparse.ArgumentParser, required: bool) -> None:
        sp.add_argument("--category", required=required,
                        choices=["information", "evenement", "travaux", "alerte"])
        sp.add_argument("--title", required=required)
        sp.add_argument("--body", required=required)
        sp.add_argument("--publish-at", help="ISO date-time, Europe/Paris if no offset")
        sp.add_argument("--starts-at")
        sp.add_argument("--ends-at")
        sp.add_argument("--link", action="append", type=link, metavar="'URL [label]'",
                        help="a link, with an optional label after a space; repeatable")
        sp.add_argument("--attachment", action="append", type=attachment,
                        metavar="'URL [name]'",
                        help="a document (PDF, image...), with an optional name after a "
                        "space; repeatable")

    pub = sub.add_parser("publish", help="publish a notice through the API")
    api_args(pub)
    notice_args(pub, required=True)
    pub.add_argument("--idempotency-key",
                     help="retrying with the same key publishes once (default: derived from "
                     "the notice, so the same command run again publishes once)")
    pub.set_defaults(run=publish)

    cor = sub.add_parser("correct", help="correct a notice (new version)")
    api_args(cor)
    cor.add_argument("--id", required=True)
    notice_args(cor, required=False)
    cor.set_defaults(run=correct)

    wd = sub.add_parser("withdraw", help="withdraw a notice")
    api_args(wd)
    wd.add_argument("--id", required=True)
    wd.set_defaults(run=withdraw)

    provisioning.add_parser(sub)
    dead_letters.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "store", False):
        return asyncio.run(with_store(args.run, args))
    try:
        code: int = asyncio.run(args.run(args))
    except httpx.HTTPError as error:
        print(f"error: cannot reach the notices service ({error}); is the village running? "
              "(CRIEUR_API_URL)", file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":
    sys.exit(main())
