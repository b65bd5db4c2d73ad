"""features/README.md maps every behaviour id to a feature file holding scenarios tagged with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ROOT / "features"
CATALOGUE = ROOT.parent / "shared" / "BEHAVIORS.md"


def behaviour_map() -> dict[str, str]:
    rows = re.findall(r"^\| (B\d\d) \| [^|]+ \| ([\w.]+\.feature) \|$", (FEATURES / "README.md").read_text(), re.M)
    return dict(rows)


def scenario_tags(feature: Path) -> set[str]:
    """Tags on Scenario/Scenario Outline lines (the line or lines just before them)."""
    tags: set[str] = set()
    pending: set[str] = set()
    for line in feature.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("@"):
            pending |= {t.lstrip("@") for t in stripped.split()}
        elif stripped.startswith(("Scenario:", "Scenario Outline:")):
            tags |= pending
            pending = set()
        elif stripped:
            pending = set()
    return tags


def test_the_map_lists_all_32_behaviours():
    assert sorted(behaviour_map()) == [f"B{n:02d}" for n in range(1, 33)]


@pytest.mark.skipif(not CATALOGUE.exists(), reason="the behaviour catalogue is not beside the project")
def test_the_map_covers_every_id_of_the_catalogue():
    ids = set(re.findall(r"^\| (B\d\d) \|", CATALOGUE.read_text(), re.M))
    assert ids <= set(behaviour_map())


@pytest.mark.parametrize(("behaviour", "feature"), sorted(behaviour_map().items()))
def test_each_mapped_id_has_a_tagged_scenario_in_its_file(behaviour, feature):
    assert behaviour in scenario_tags(FEATURES / feature), f"{feature} has no scenario tagged @{behaviour}"
