"""Command line of the local tools: ``python -m lib.cli run|serve|import|mail explain``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path("out")
DISPATCH_INTERVAL_SECONDS = 5


def _stop_on_sigterm() -> None:
    # SIGTERM (kill, a CI runner) unwinds the stack like Ctrl-C, so every emulator
    # and server started by this command is stopped.
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _run(args: argparse.Namespace) -> int:
    from lib.devstack import localrun

    with localrun.local_stack(Path(args.out), args.config) as local:
        os.environ.update(local.env)
        from lib import bootstrap
        from lib.adapters.firestore_store import make_client

        bootstrap.app.cache_clear()
        app = bootstrap.app()
        client = make_client(localrun.PROJECT)
        print(f"Functions serving on {local.url}", flush=True)
        imported = None
        if args.data:
            print(f"Importing the CRM export in {args.data} ...", flush=True)
            imported = _import(args.data, app.config, client, Path(args.out))
        print("Replaying the demo day ...", flush=True)
        outcomes = localrun.replay_day(local)
        dispatched = app.dispatcher.run_once(limit=1000)
        summary = localrun.summarise(outcomes, client, dispatched)
        localrun.print_summary(summary, imported)
        print(f"\nAcknowledgement and notice emails: {Path(local.env['CRM_OUTBOX_DIR']).resolve()}")
        if args.mail:
            from lib.devstack import mailrun

            results = mailrun.process_files(app.mail_sync, app.config, [Path(args.mail)])
            mailrun.print_report(results, mailrun.local_mailbox(app.config))
            after_mail = app.dispatcher.run_once(limit=1000)
            print(f"Outbox messages sent after the mail run: {after_mail.get('sent', 0)}")
    return 0


def _import(folder: str, config, client, out_dir: Path) -> dict:
    import datetime as dt

    from lib.importer import run_import

    summary = run_import(Path(folder), config, client, dt.datetime.now(dt.timezone.utc),
                         report_path=out_dir / "import-report.csv")
    return summary.as_dict() if hasattr(summary, "as_dict") else dict(vars(summary))


def _serve(args: argparse.Namespace) -> int:
    from lib.devstack import localrun

    with localrun.local_stack(Path(args.out), args.config) as local:
        os.environ.update(local.env)
        from lib import bootstrap

        bootstrap.app.cache_clear()
        app = bootstrap.app()
        secrets_file = Path(args.out) / "source-secrets.env"
        secrets_file.write_text("".join(f"CRM_SECRET_{k.upper()}={v.decode()}\n" for k, v in local.secrets.items()))
        print(f"Source secrets for signing test requests: {secrets_file}")
        print(f"Outbox emails are written to {Path(local.env['CRM_OUTBOX_DIR']).resolve()}")
        print(f"Serving on {local.url}", flush=True)
        try:
            # Stand in for the Cloud Scheduler job that calls dispatch_outbox every minute.
            while True:
                outcomes = app.dispatcher.run_once()
                if outcomes.get("sent") or outcomes.get("failed"):
                    print(f"dispatched: {dict((k, v) for k, v in outcomes.items() if ':' not in k)}", flush=True)
                time.sleep(DISPATCH_INTERVAL_SECONDS)
        except KeyboardInterrupt:
            print("Stopping ...")
    return 0


def _mail(args: argparse.Namespace) -> int:
    from lib.mail.explain import main as explain

    if not args.rest or args.rest[0] != "explain":
        print("usage: crm mail explain FILE_OR_FOLDER... [--json]", file=sys.stderr)
        return 2
    return explain(args.rest[1:])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description=__doc__)
    parser.add_argument("--config", help="configuration file (default: config/crm.yaml or $CRM_CONFIG)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for outbox emails, logs and reports")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="replay a demo day through the local stack and print a summary")
    run.add_argument("--data", help="folder with a CRM export (CSV) to import first")
    run.add_argument("--mail", help="mbox file or folder of .eml files to process")
    run.set_defaults(handler=_run)
    serve = commands.add_parser("serve", help="start the local stack and keep it running")
    serve.set_defaults(handler=_serve)
    mail = commands.add_parser("mail", help="mail tools: 'mail explain FILE... [--json]'")
    mail.add_argument("rest", nargs=argparse.REMAINDER)
    mail.set_defaults(handler=_mail)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    _stop_on_sigterm()
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
