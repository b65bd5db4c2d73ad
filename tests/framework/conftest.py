from __future__ import annotations

import pytest

from framework.testing import MemoryOrg, make_org


@pytest.fixture
def org() -> MemoryOrg:
    return make_org()
