"""The plugin host: one function builds the plugin manager from entry points of group ``exsync``."""

from __future__ import annotations

import importlib.metadata
import inspect
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

from framework import hookspecs
from framework.errors import ConfigurationError

ENTRY_POINT_GROUP = "exsync"

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its entry-point name, module, distribution and the hooks it implements."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


class Host:
    """The plugin manager and where each plugin came from."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.distributions: dict[str, importlib.metadata.Distribution] = {}

    @property
    def hook(self) -> Any:
        return self.pm.hook


def build_host(extra: list[Any] | None = None, *, entry_points: bool = True) -> Host:
    """Load every ``exsync`` entry point (bundled plugins included) and check it against the specs.

    A plugin that fails to import, or implements a hook that does not exist, raises a
    :class:`ConfigurationError` naming the plugin. ``extra`` registers objects directly,
    which tests use for throwaway plugins; ``entry_points=False`` loads only those.
    """
    host = Host()
    found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points else ()
    for entry_point in sorted(found, key=lambda e: e.name):
        try:
            plugin = entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"Plugin {entry_point.name!r} ({entry_point.value}) failed to import: {exc}",
                hint="Fix or uninstall the distribution that provides it.",
            ) from exc
        _register(host.pm, plugin, entry_point.name)
        if entry_point.dist is not None:
            host.distributions[entry_point.name] = entry_point.dist
    for index, plugin in enumerate(extra or []):
        _register(host.pm, plugin, getattr(plugin, "__name__", f"extra-{index}"))
    _check(host.pm)
    return host


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # a known hook with arguments its spec does not have
        raise ConfigurationError(
            f"Plugin {name!r} does not match the hook specs: {exc}",
            hint="Check the hook's arguments against framework/hookspecs.py.",
        ) from exc
    except ValueError as exc:
        raise ConfigurationError(f"Plugin {name!r} cannot be registered: {exc}") from exc
    _check_unmarked(pm, plugin, name)


def _check_unmarked(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Refuse ``exsync_*`` functions without ``@hookimpl``: pluggy ignores them silently.

    pluggy only sees functions marked with the project's ``HookimplMarker``, so a plain
    ``def exsync_nonsense()`` (or a real hook whose decorator was forgotten) would load
    without error and never be called.
    """
    for attr in dir(plugin):
        if not attr.startswith(f"{ENTRY_POINT_GROUP}_") or pm.parse_hookimpl_opts(plugin, attr) is not None:
            continue
        if not inspect.isroutine(getattr(plugin, attr, None)):
            continue
        caller = getattr(pm.hook, attr, None)
        if caller is not None and caller.has_spec():
            raise ConfigurationError(
                f"Plugin {name!r} defines {attr} without @hookimpl, so it would never be called.",
                hint="Decorate it with @framework.hookimpl.",
            )
        raise ConfigurationError(
            f"Plugin {name!r} implements a hook exsync does not know: {attr}",
            hint="Check the hook name against framework/hookspecs.py (every hook starts with 'exsync_').",
        )


def _check(pm: pluggy.PluginManager) -> None:
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigurationError(
            f"Plugin {pm.get_name(exc.plugin)!r} implements a hook exsync does not know: {exc}",
            hint="Check the hook name against framework/hookspecs.py (every hook starts with 'exsync_').",
        ) from exc


def plugin_infos(host: Host) -> list[PluginInfo]:
    """Every registered plugin with the hooks it implements, for ``exsync plugins``."""
    infos = []
    for name, plugin in host.pm.list_name_plugin():
        dist = host.distributions.get(name)
        hooks = tuple(sorted(caller.name for caller in host.pm.get_hookcallers(plugin) or []))
        infos.append(
            PluginInfo(
                name=name,
                module=getattr(plugin, "__name__", type(plugin).__name__),
                distribution=dist.metadata["name"] if dist else "",
                version=dist.version if dist else "",
                hooks=hooks,
            )
        )
    return sorted(infos, key=lambda i: i.name)


def collect(hook_results: list[list[T]], kind: str, key: str = "name") -> dict[str, T]:
    """Flatten the lists a collection hook returned into a dict by name; duplicates are an error."""
    found: dict[str, T] = {}
    for results in hook_results:
        for item in results or []:
            name = getattr(item, key)
            if name in found:
                raise ConfigurationError(f"Two plugins offer the {kind} {name!r}.", hint="Uninstall one of them.")
            found[name] = item
    return found
