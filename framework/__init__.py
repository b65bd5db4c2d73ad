"""exsync: keep a CRM and Microsoft Exchange in sync, through plugins."""

import pluggy

hookimpl = pluggy.HookimplMarker("exsync")

__all__ = ["hookimpl"]
