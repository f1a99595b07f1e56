"""The `chatvakt` command."""

import argparse
import getpass
import os
import sys

from chatvakt import config, vocabulary


def _accounts_add(args):
    from sqlalchemy.orm import sessionmaker

    from chatvakt.db import setup_database
    from gateway import accounts
    from gateway.models import metadata

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("chatvakt: a password is required on standard input", file=sys.stderr)
        return 2
    engine = setup_database("gateway", metadata)
    try:
        with sessionmaker(bind=engine)() as session, session.begin():
            account_id = accounts.add_account(session, args.username, args.name, args.role, password)
    finally:
        engine.dispose()
    print(f"account {args.username} ({args.role}) saved with id {account_id}")
    return 0


def _accounts_disable(args):
    """Disable (or enable) an account. Its sessions end and its sockets close
    on every running gateway replica within about a second (the revocation log)."""
    from sqlalchemy.orm import sessionmaker

    from chatvakt.db import setup_database
    from gateway import accounts
    from gateway.models import metadata

    disabled = args.accounts_command == "disable"
    engine = setup_database("gateway", metadata)
    try:
        with sessionmaker(bind=engine)() as session, session.begin():
            account_id = accounts.set_disabled(session, args.username, disabled)
    finally:
        engine.dispose()
    if account_id is None:
        print(f"chatvakt: no account named {args.username}", file=sys.stderr)
        return 1
    print(f"account {args.username} {'disabled' if disabled else 'enabled'}")
    return 0


def _service(args):
    from launcher.stack import service_command

    config.name_process(args.name)
    command = service_command(args.name)
    os.execv(command[0], command)


def _ping(args):
    from nameko.standalone.rpc import ClusterRpcProxy

    try:
        with ClusterRpcProxy({"AMQP_URI": config.amqp_uri()}, timeout=args.timeout) as cluster:
            getattr(cluster, args.name).ping()
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not explain
        print(f"{args.name}: no answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    print(f"{args.name}: ok")
    return 0


def _migrate(args):
    import importlib

    from chatvakt.db import setup_database
    from launcher.stack import MODULES

    names = [args.name] if args.name != "all" else list(MODULES)
    for name in names:
        package = MODULES[name].split(":")[0].rsplit(".", 1)[0]
        models = importlib.import_module(f"{package}.models")
        setup_database(name, models.metadata).dispose()
        print(f"{name}: database up to date")
    return 0


def _new_migration(args):
    from launcher.migrations import new_revision

    new_revision(args.name, args.message)
    return 0


def _risk_retrain(args):
    """Retrain the learned risk screen from the corpus and the helpline's corrections.

    The corrections (hand marks with the child's first messages, sealed in the
    escalation service's database) are read and opened in this process only;
    nothing of their text is printed, logged or written anywhere but into the
    model's weights.
    """
    from pathlib import Path

    from services.escalation import learned
    from services.escalation.risk import default_screen

    train_rows, test_rows, names = learned.corpus_splits(Path(args.corpus) if args.corpus else learned.CORPUS_DIR)
    if args.include_test:
        train_rows += test_rows
    corrections = []
    if not args.no_corrections:
        from sqlalchemy.orm import sessionmaker

        from chatvakt.db import setup_database
        from services.escalation import domain
        from services.escalation.models import metadata
        from services.escalation.vault import Vault

        engine = setup_database("escalation", metadata)
        try:
            with sessionmaker(bind=engine)() as session:
                corrections = domain.correction_examples(session, Vault.from_env())
        finally:
            engine.dispose()
    if not train_rows and not corrections:
        print("chatvakt: no training data (corpus or corrections)", file=sys.stderr)
        return 2
    at_risk = sum(1 for r in corrections if r["at_risk"])
    print(
        f"training data: {', '.join(names) or '-'}: {len(train_rows)} examples"
        f"{' (test split included)' if args.include_test else ' (the training split)'}; "
        f"corrections: {len(corrections)} ({at_risk} at risk, {len(corrections) - at_risk} not)"
    )
    trained = learned.train(train_rows + corrections, lexicon=default_screen(), log=print)
    out = Path(args.out) if args.out else learned.model_path_for_retrain()
    learned.export(trained, out, {"corrections": len(corrections), "sources": names})
    out.chmod(0o600)  # trained on the helpline's corrections: this user's only, like CHATVAKT_DATA
    print(
        f"model written to {out} ({out.stat().st_size // 1024} KiB); the escalation service "
        "loads it instead of the shipped one (picked up at the next screened message)"
    )
    return 0


def _dead_letters(args):
    from launcher import deadletters

    return deadletters.main(args)


def _run(args):
    from launcher.stack import run

    return run(replicas=args.replicas)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="chatvakt")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole local stack in the foreground")
    run.add_argument(
        "--replicas",
        default=config.replicas(),
        help="processes per service: N for every service, or per service as "
        "chat=2,gateway=2 (others 1); the gateways get consecutive ports",
    )
    run.set_defaults(func=_run)

    service = sub.add_parser("service", help="run one service (nameko run)")
    service.add_argument("name", choices=config.PROCESSES)
    service.set_defaults(func=_service)

    ping = sub.add_parser("ping", help="exit 0 when a service answers an RPC ping")
    ping.add_argument("name", choices=config.SERVICES)
    ping.add_argument("--timeout", type=float, default=5.0)
    ping.set_defaults(func=_ping)

    migrate = sub.add_parser("migrate", help="create or upgrade a service's database")
    migrate.add_argument("name", choices=config.PROCESSES + ("all",))
    migrate.set_defaults(func=_migrate)

    migration = sub.add_parser("migrations", help="write a new migration from the models")
    migration_sub = migration.add_subparsers(dest="migrations_command", required=True)
    new = migration_sub.add_parser("new", help="autogenerate a migration for one service")
    new.add_argument("name", choices=config.PROCESSES)
    new.add_argument("message")
    new.set_defaults(func=_new_migration)

    accounts = sub.add_parser("accounts", help="manage counsellor accounts")
    accounts_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    add = accounts_sub.add_parser("add", help="create or update an account (password on stdin)")
    add.add_argument("username")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=vocabulary.ROLES)
    add.set_defaults(func=_accounts_add)
    for verb, help_text in (
        ("disable", "end the account's sessions and refuse its logins"),
        ("enable", "let a disabled account log in again"),
    ):
        toggle = accounts_sub.add_parser(verb, help=help_text)
        toggle.add_argument("username")
        toggle.set_defaults(func=_accounts_disable)

    dead = sub.add_parser("dead-letters", help="events parked after their last try (never their text)")
    dead_sub = dead.add_subparsers(dest="dead_letters_command", required=True)
    for verb, help_text in (
        ("list", "counts by event and handler"),
        ("replay", "send them back to the handler that failed"),
        ("drop", "delete them"),
    ):
        action = dead_sub.add_parser(verb, help=help_text)
        action.add_argument("--queue", default="chatvakt.dead-letter")
        if verb != "list":
            action.add_argument("--event", default=None, help="only this event name")
        action.set_defaults(func=_dead_letters)

    risk = sub.add_parser("risk", help="the risk screen")
    risk_sub = risk.add_subparsers(dest="risk_command", required=True)
    retrain = risk_sub.add_parser(
        "retrain", help="retrain the learned screen from the corpus plus the helpline's corrections"
    )
    retrain.add_argument("--corpus", default=None, help="folder of the corpus (a*.jsonl); default: the shipped one")
    retrain.add_argument("--out", default=None, help="model file (default: CHATVAKT_DATA/risk_model.npz)")
    retrain.add_argument("--no-corrections", action="store_true", help="the corpus alone")
    retrain.add_argument(
        "--include-test",
        action="store_true",
        help="train on the corpus' test split too (make eval's test figures then no longer describe the model)",
    )
    retrain.set_defaults(func=_risk_retrain)

    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
