"""`stationgw county …`: the county service (run, check), its bench and its demo."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from gateway.auth.policy import Role
from gateway.core.errors import ConfigError
from gateway.county.config import load_county_config


def _until_signal(stop: asyncio.Event, duration: float | None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)


def cmd_run(args: argparse.Namespace) -> int:
    from gateway.county.service import run

    if args.config is None:
        raise ConfigError("", ["stationgw county: -c county.toml is needed"])
    cfg = load_county_config(args.config)
    if args.http_port is not None:  # a second instance on the same machine
        cfg = cfg.model_copy(update={"http": cfg.http.model_copy(update={"port": args.http_port})})

    async def main() -> None:
        stop = asyncio.Event()
        _until_signal(stop, None)
        await run(cfg, stop)

    asyncio.run(main())
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.county.escalation import problems

    cfg = load_county_config(args.config)
    if found := problems(cfg):
        raise ConfigError(str(args.config), found)
    groups = sorted({s.group for s in cfg.stations if s.group})
    print(
        f"{args.config}: ok — county {cfg.county.name}, {len(cfg.stations)} stations "
        f"({len(groups)} groups), {len(cfg.people)} people, {len(cfg.duty)} shifts, "
        f"NATS {', '.join(cfg.nats.servers)} (stream {cfg.nats.stream}, consumer "
        f"{cfg.nats.consumer}), page on {cfg.http.host}:{cfg.http.port}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from gateway.devtools.county_bench import run_county_bench

    return run_county_bench(quick=args.quick, json_path=args.json, keep=args.keep)


def cmd_demo(args: argparse.Namespace) -> int:
    from gateway.devtools.county_demo import run_county_demo

    async def main() -> None:
        stop = asyncio.Event()
        _until_signal(stop, args.for_)
        await run_county_demo(args.data, args.http_port, args.stations, stop)

    asyncio.run(main())
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    from gateway.cli.users import read_password
    from gateway.county.users import cmd_users_add

    cfg = load_county_config(args.config)
    people = {p.id for p in cfg.people}
    password = read_password(args) if args.password_stdin else None
    return cmd_users_add(cfg.postgres.dsn, args.name, args.role, args.person, people, password)


def cmd_plan(args: argparse.Namespace) -> int:
    from gateway.county.plans import cmd_plan_push

    cfg = load_county_config(args.config)
    return cmd_plan_push(cfg, args.file, args.target, args.version)


def cmd_county(args: argparse.Namespace) -> int:
    commands = {
        None: cmd_run,
        "check": cmd_check,
        "bench": cmd_bench,
        "demo": cmd_demo,
        "users": cmd_users,
        "plan": cmd_plan,
    }
    return commands[args.county_command](args)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    county = sub.add_parser(
        "county",
        help="the county service: stations on a NATS JetStream cluster, PostgreSQL",
        description="stationgw county -c county.toml runs one instance of the county "
        "service; run two or more for availability.",
    )
    county.add_argument("-c", "--config", type=Path, help="the county file (county.toml)")
    county.add_argument(
        "--http-port", type=int, metavar="PORT", help="the page's port instead of [http] port"
    )
    csub = county.add_subparsers(dest="county_command")
    check = csub.add_parser("check", help="validate a county file")
    check.add_argument("-c", "--config", type=Path, required=True)
    bench = csub.add_parser(
        "bench", help="a 200-station county on this machine: cluster, PostgreSQL, gateways"
    )
    bench.add_argument("--quick", action="store_true", help="small and short: under 5 minutes")
    bench.add_argument("--json", type=Path, metavar="PATH", help="write the figures as JSON")
    bench.add_argument("--keep", type=Path, metavar="DIR", help="keep the bench's files in DIR")
    demo = csub.add_parser(
        "demo", help="a local 3-node cluster, PostgreSQL, demo stations and the county page"
    )
    demo.add_argument("--for", dest="for_", type=float, metavar="SECONDS", help="stop after")
    demo.add_argument("--http-port", type=int, default=8090, metavar="PORT")
    demo.add_argument("--stations", type=int, default=3, metavar="N", help="demo stations")
    demo.add_argument(
        "--data", type=Path, default=Path("county-demo"), metavar="DIR", help="where it all lives"
    )
    users = csub.add_parser("users", help="the county page's users")
    usub = users.add_subparsers(dest="users_command", required=True)
    add = usub.add_parser("add", help="add a user (asks for the password twice)")
    add.add_argument("name")
    add.add_argument("-c", "--config", type=Path, required=True)
    add.add_argument("--role", required=True, choices=[str(r) for r in Role])
    add.add_argument("--person", help="the county's [[people]] id the user acts as")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    plan = csub.add_parser("plan", help="rule plans for the stations")
    psub = plan.add_subparsers(dest="plan_command", required=True)
    push = psub.add_parser(
        "push",
        help="check a rules file like `rules check` and publish it to stations, with the "
        "county's people and deadlines",
    )
    push.add_argument(
        "file",
        type=Path,
        nargs="?",
        help="the rules file (TOML); without it the target's last rules go again, with the "
        "county file's people and deadlines as they are now",
    )
    push.add_argument("-c", "--config", type=Path, required=True)
    push.add_argument(
        "--target", default="all", help="all, group.<group> or station.<station> (default all)"
    )
    push.add_argument("--version", help="the plan's version (default: the date and a number)")
    county.set_defaults(func=cmd_county)
