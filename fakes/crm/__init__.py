"""A fake Zoho-CRM-v8-shaped CRM: the org model, its field metadata, its HTTP layer and seeding.

Serve it with ``FakeServer(CrmApi(org), ca=FakeCA(path))``; see :mod:`fakes.crm.api` for the
routes and :mod:`fakes.crm.seed` for the well-known users and OAuth client.
"""

from fakes.crm.api import CrmApi
from fakes.crm.model import MODULES, CrmError, CrmOrg, CrmUser, Page, Tombstone
from fakes.crm.seed import CLIENT_ID, CLIENT_SECRET, EXSYNC_FIELDS, add_exsync_fields, new_org, seed_org

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "EXSYNC_FIELDS",
    "MODULES",
    "CrmApi",
    "CrmError",
    "CrmOrg",
    "CrmUser",
    "Page",
    "Tombstone",
    "add_exsync_fields",
    "new_org",
    "seed_org",
]
