"""`stationgw users add|list|passwd`: the people who may log in to the page and the API;
and `login`, the client side of a password login that other commands use."""

from __future__ import annotations

import argparse
import getpass
import http.cookiejar
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from gateway.auth.policy import PasswordTooWeak, Role
from gateway.auth.users import add_user, list_users, set_password
from gateway.cli.common import database_path
from gateway.core.errors import GatewayError
from gateway.storage.store import Store


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise GatewayError("the two passwords differ")
    return first


def _store(args: argparse.Namespace) -> tuple[Store, Any]:

    path, cfg = database_path(args)
    return Store(path), cfg


def cmd_add(args: argparse.Namespace) -> int:
    store, cfg = _store(args)
    try:
        if args.person and cfg is not None and not any(p.id == args.person for p in cfg.people):
            raise GatewayError(f"--person {args.person}: not in the station file's [[people]]")
        try:
            u = add_user(store, args.name, args.role, read_password(args), args.person, _now())
        except PasswordTooWeak as e:
            raise GatewayError(str(e)) from None
    finally:
        store.close()
    print(f"user {u.name} added, role {u.role}" + (f", acts as {u.person}" if u.person else ""))
    return 0


def cmd_passwd(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    try:
        try:
            set_password(store, args.name, read_password(args), _now())
        except PasswordTooWeak as e:
            raise GatewayError(str(e)) from None
    finally:
        store.close()
    print(f"password of {args.name} set; the user is unlocked and logged out everywhere")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store, _ = _store(args)
    try:
        users = list_users(store)
    finally:
        store.close()
    if args.json:
        print(json.dumps(users, ensure_ascii=False, indent=2))
        return 0
    for u in users:
        locked = f"  ({u['failures']} wrong tries)" if u["failures"] else ""
        print(f"{u['name']:<20} {u['role']:<13} {u['person'] or '-'}{locked}")
    return 0


def _now() -> int:
    return time.time_ns() // 1_000_000


def login(base: str, name: str, password: str) -> Callable[..., Any]:
    """Log in to a gateway at `base`; returns `call(method, path[, body])` that sends the session
    cookie and CSRF token and answers the decoded JSON."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def send(method: str, path: str, body: object | None, csrf: str | None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{base}{path}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if csrf:
            req.add_header("X-CSRF-Token", csrf)
        try:
            with opener.open(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            raise GatewayError(f"{method} {path}: {e.code} {text}") from None
        except (urllib.error.URLError, OSError) as e:
            raise GatewayError(f"no gateway answers at {base}: {e}") from None

    csrf = send("POST", "/api/login", {"name": name, "password": password}, None)["csrf"]
    return lambda method, path, body=None: send(method, path, body, csrf)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    db_options: Callable[[argparse.ArgumentParser], None],
) -> None:
    users = sub.add_parser("users", help="who may log in to the page and the API")
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="add a user (asks for the password twice)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[str(r) for r in Role])
    add.add_argument("--person", help="the [[people]] id the user acts as on tickets")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    db_options(add)
    add.set_defaults(func=cmd_add)
    pw = usub.add_parser("passwd", help="set a password (also unlocks the user)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    db_options(pw)
    pw.set_defaults(func=cmd_passwd)
    ls = usub.add_parser("list", help="list the users")
    ls.add_argument("--json", action="store_true")
    db_options(ls)
    ls.set_defaults(func=cmd_list)
