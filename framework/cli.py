"""The ``exsync`` command line: the administrators' surface (the "MS Exchange Sync" tab)."""

from __future__ import annotations

import sys
from typing import Any

import click
import sqlalchemy as sa

from framework.cli_support import Options, fail
from framework.errors import ExsyncError, UsageError
from framework.host import build_host
from framework.state import default_state_url, unreadable_state


class ExsyncGroup(click.Group):
    """Turns every :class:`ExsyncError` into a one-line message, a hint and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ExsyncError as error:
            fail(error)
        except sa.exc.DBAPIError as error:  # the state database broke under a command: one line, not a traceback
            options = ctx.find_object(Options)
            fail(unreadable_state(options.context.state_url if options else default_state_url(), error))


@click.group(cls=ExsyncGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--state",
    envvar="EXSYNC_STATE",
    show_envvar=True,
    metavar="URL",
    help="State database (any SQLAlchemy URL). Default: a SQLite file in the data directory. "
    "Only 'exsync crm login' starts a new one.",
)
@click.option("--json", "json_output", is_flag=True, help="Print machine-readable JSON instead of tables.")
@click.option(
    "--as",
    "acting_as",
    metavar="USER",
    envvar="EXSYNC_AS",
    show_envvar=True,
    help="Act as this CRM user (e-mail or id) of a stored CRM login.",
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    envvar="EXSYNC_CA_BUNDLE",
    show_envvar=True,
    metavar="PEM",
    help="PEM file of CA certificates to trust (an internal CA, or the fakes'), for this command; "
    "'exsync settings set --ca-bundle PEM' saves it.",
)
@click.version_option(package_name="exsync")
@click.pass_context
def cli(ctx: click.Context, state: str | None, json_output: bool, acting_as: str | None, ca_bundle: str | None) -> None:
    """Keep a CRM and Microsoft Exchange in sync: contacts, tasks, events and mails.

    Start with 'exsync demo' to see everything run against the built-in fake servers.
    """
    ctx.obj = Options(state, json_output, acting_as, ca_bundle)


def _mount_plugin_commands(group: click.Group) -> None:
    """Add the commands plugins return from ``exsync_cli_commands`` under their parent group."""
    try:
        host = build_host()
    except ExsyncError as error:
        click.echo(f"Error: {error.message}\nHint: {error.hint}", err=True)
        sys.exit(1)
    for commands in host.hook.exsync_cli_commands():
        for command in commands or []:
            parent_name = getattr(command, "exsync_parent", "")
            parent = group.commands.get(parent_name, group) if parent_name else group
            if not isinstance(parent, click.Group):
                raise UsageError(f"Plugin command {command.name!r} names a parent that is not a group.")
            parent.add_command(command)


_mounted = False


def build_cli() -> click.Group:
    """The ``exsync`` group with the built-in commands and every plugin's commands."""
    global _mounted
    import framework.commands  # noqa: F401  (registers the built-in commands on ``cli``)

    if not _mounted:
        _mount_plugin_commands(cli)
        _accept_json_anywhere(cli)
        _mounted = True
    return cli


def _accept_json_anywhere(group: click.Group) -> None:
    """Give every command ``--json`` too, so that ``exsync users list --json`` works as
    ``exsync --json users list`` does (a command with a ``--json`` of its own keeps it)."""
    for command in group.commands.values():
        if not any("--json" in getattr(param, "opts", ()) for param in command.params):
            command.params.append(
                click.Option(
                    ["--json"],
                    is_flag=True,
                    expose_value=False,
                    is_eager=True,
                    callback=_json_wanted,
                    help="Print machine-readable JSON instead of tables.",
                )
            )
        if isinstance(command, click.Group):
            _accept_json_anywhere(command)


def _json_wanted(ctx: click.Context, _param: click.Parameter, wanted: bool) -> None:
    options = ctx.find_object(Options)
    if wanted and options is not None:
        options.json = True


def main() -> None:
    """Entry point of the ``exsync`` console script."""
    build_cli()(prog_name="exsync")
