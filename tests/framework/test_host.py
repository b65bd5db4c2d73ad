"""The plugin host: entry points of group ``exsync``, checked against the hook specs at start-up."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framework import hookimpl
from framework.context import Context
from framework.contracts import EntityDefinition
from framework.errors import ConfigurationError
from framework.host import build_host, collect, plugin_infos
from framework.model import Contact
from plugins import conflicts, entities

Install = Callable[..., None]

POLICY_PLUGIN = """
    from framework import hookimpl
    from framework.contracts import ConflictPolicy

    class NewestWins(ConflictPolicy):
        name = "newest-wins"

        def winner(self, conflict):
            return "crm"

    seen = []

    @hookimpl
    def exsync_conflict_policies():
        return [NewestWins()]

    @hookimpl
    def exsync_audit_event(event):
        seen.append(event)
"""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Installs throwaway distributions into ``tmp_path``; only their entry points are seen.

    ``install("throwaway", "1.0", {"throwaway_plugin": source}, {"throwaway": "throwaway_plugin"})``
    writes the module and a ``throwaway-1.0.dist-info`` with METADATA and entry_points.txt.
    """
    installed: list[str] = []
    modules: list[str] = []
    monkeypatch.syspath_prepend(str(tmp_path))
    all_entry_points = importlib.metadata.entry_points

    def throwaway_entry_points(**params: str) -> importlib.metadata.EntryPoints:
        return importlib.metadata.EntryPoints(
            ep for ep in all_entry_points(**params) if ep.dist is not None and ep.dist.name in installed
        )

    monkeypatch.setattr(importlib.metadata, "entry_points", throwaway_entry_points)

    def install_(dist: str, version: str, sources: dict[str, str], entry_points: dict[str, str]) -> None:
        for module, source in sources.items():
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
            modules.append(module)
        info = tmp_path / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[exsync]\n{lines}")
        installed.append(dist)
        importlib.invalidate_caches()

    yield install_
    for module in modules:
        sys.modules.pop(module, None)


def module(name: str, **attributes: object) -> types.ModuleType:
    plugin = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(plugin, key, value)
    return plugin


# -- entry points -----------------------------------------------------------------------------
def test_bundled_plugins_are_loaded_through_their_entry_points():
    dist = importlib.metadata.distribution("exsync")
    bundled = {ep.name for ep in dist.entry_points if ep.group == "exsync"}
    assert {"crm", "ews", "graph", "entities", "conflicts"} <= bundled
    infos = {info.name: info for info in plugin_infos(build_host())}
    assert bundled <= set(infos)
    for name in bundled:
        assert (infos[name].distribution, infos[name].version) == ("exsync", dist.version)
        assert infos[name].hooks, f"{name} implements no hook"
    assert infos["entities"].module == "plugins.entities" and "exsync_entities" in infos["entities"].hooks
    assert infos["conflicts"].hooks == ("exsync_conflict_policies",)


def test_a_third_party_distribution_is_loaded_with_its_name_version_and_hooks(install):
    install("throwaway", "1.0", {"throwaway_plugin": POLICY_PLUGIN}, {"throwaway": "throwaway_plugin"})
    host = build_host()
    (info,) = plugin_infos(host)
    assert info.name == "throwaway"
    assert info.module == "throwaway_plugin"
    assert (info.distribution, info.version) == ("throwaway", "1.0")
    assert info.hooks == ("exsync_audit_event", "exsync_conflict_policies")
    policies = collect(host.hook.exsync_conflict_policies(), "conflict policy")
    assert list(policies) == ["newest-wins"]


def test_third_party_plugins_sit_beside_the_bundled_ones(install):
    install("throwaway", "1.0", {"throwaway_plugin": POLICY_PLUGIN}, {"throwaway": "throwaway_plugin"})
    host = build_host(extra=[entities, conflicts])
    infos = {i.name: i for i in plugin_infos(host)}
    assert set(infos) == {"throwaway", "plugins.entities", "plugins.conflicts"}
    assert infos["plugins.conflicts"].distribution == ""  # registered directly, not from a distribution
    assert set(collect(host.hook.exsync_conflict_policies(), "conflict policy")) == {
        "crm-wins",
        "exchange-wins",
        "newest-wins",
    }


@pytest.mark.parametrize(
    "source",
    ["raise ImportError('needs libfoo')", "def broken(:\n", "import a_module_that_is_not_installed_anywhere"],
    ids=["raises", "syntax-error", "missing-dependency"],
)
def test_a_plugin_that_fails_to_import_is_a_configuration_error_naming_it(install, source):
    install("broken-dist", "0.1", {"broken_plugin": source}, {"broken": "broken_plugin"})
    with pytest.raises(ConfigurationError) as error:
        build_host()
    assert "'broken'" in error.value.message and "broken_plugin" in error.value.message
    assert "failed to import" in error.value.message
    assert "uninstall" in error.value.hint


def test_an_entry_point_naming_a_missing_attribute_is_a_configuration_error(install):
    install("throwaway", "1.0", {"throwaway_plugin": POLICY_PLUGIN}, {"throwaway": "throwaway_plugin:nothing"})
    with pytest.raises(ConfigurationError, match="'throwaway'"):
        build_host()


# -- hooks checked against the specs ----------------------------------------------------------
UNKNOWN_DECORATED = """
    from framework import hookimpl

    @hookimpl
    def exsync_nonsense():
        return []
"""
UNKNOWN_PLAIN = """
    def exsync_nonsense():
        return []
"""
KNOWN_UNDECORATED = """
    def exsync_conflict_policies():
        return []
"""
WRONG_ARGUMENTS = """
    from framework import hookimpl

    @hookimpl
    def exsync_run_started(user, entities, dry_run, colour):
        pass
"""


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (UNKNOWN_DECORATED, ["exsync_nonsense", "does not know"]),
        (UNKNOWN_PLAIN, ["exsync_nonsense", "does not know"]),
        (KNOWN_UNDECORATED, ["exsync_conflict_policies", "without @hookimpl"]),
        (WRONG_ARGUMENTS, ["exsync_run_started", "colour"]),
    ],
    ids=["unknown-hook", "unknown-hook-without-marker", "known-hook-without-marker", "unknown-argument"],
)
def test_a_plugin_that_does_not_match_the_specs_is_a_configuration_error_naming_it(install, source, words):
    install("odd-dist", "2.0", {"odd_plugin": source}, {"odd": "odd_plugin"})
    with pytest.raises(ConfigurationError) as error:
        build_host()
    assert "'odd'" in error.value.message
    for word in words:
        assert word in error.value.message
    assert "hookspecs.py" in error.value.hint or "@framework.hookimpl" in error.value.hint


def test_a_directly_registered_plugin_with_an_unknown_hook_is_refused_too():
    @hookimpl
    def exsync_nonsense() -> None:
        pass

    with pytest.raises(ConfigurationError, match=r"'oddball'.*exsync_nonsense"):
        build_host(extra=[module("oddball", exsync_nonsense=exsync_nonsense)], entry_points=False)


def test_optional_hooks_and_non_hook_attributes_are_accepted():
    @hookimpl(optionalhook=True)
    def exsync_hook_of_another_plugin() -> None:
        pass

    plugin = module("relaxed", exsync_hook_of_another_plugin=exsync_hook_of_another_plugin, exsync_version="1.2")
    (info,) = plugin_infos(build_host(extra=[plugin], entry_points=False))
    assert info.name == "relaxed"


def test_the_same_plugin_registered_twice_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="cannot be registered"):
        build_host(extra=[entities, entities], entry_points=False)


# -- what plugins offer -----------------------------------------------------------------------
def duplicate_contacts() -> types.ModuleType:
    @hookimpl
    def exsync_entities() -> list[EntityDefinition]:
        return [EntityDefinition("contacts", Contact, match_keys=lambda record: ())]

    return module("more_contacts", exsync_entities=exsync_entities)


def test_two_plugins_offering_the_same_entity_name_is_a_configuration_error():
    host = build_host(extra=[entities, duplicate_contacts()], entry_points=False)
    with pytest.raises(ConfigurationError, match="Two plugins offer the entity 'contacts'") as error:
        collect(host.hook.exsync_entities(), "entity")
    assert "Uninstall one" in error.value.hint
    with pytest.raises(ConfigurationError, match="'contacts'"):
        _ = Context("sqlite://", host=host).entities


def test_collect_gathers_every_plugins_items_by_name():
    host = build_host(extra=[entities, conflicts], entry_points=False)
    assert set(collect(host.hook.exsync_entities(), "entity")) == {"contacts", "tasks", "events", "mails"}
    assert set(collect(host.hook.exsync_conflict_policies(), "conflict policy")) == {"crm-wins", "exchange-wins"}
    assert collect([[], None], "entity") == {}  # type: ignore[arg-type]


def test_plugin_infos_lists_the_hooks_of_directly_registered_plugins():
    infos = plugin_infos(build_host(extra=[conflicts, entities], entry_points=False))
    assert [(i.name, i.module, i.distribution, i.version, i.hooks) for i in infos] == [
        ("plugins.conflicts", "plugins.conflicts", "", "", ("exsync_conflict_policies",)),
        ("plugins.entities", "plugins.entities", "", "", ("exsync_entities",)),
    ]
