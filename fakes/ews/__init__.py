"""A fake Exchange Web Services server (SOAP 1.1 at /EWS/Exchange.asmx) over the shared tenant.

Serve it with ``FakeServer(EwsApi(tenant), ca=FakeCA(path)).start()`` and point exchangelib at
``<base_url>/EWS/Exchange.asmx`` inside ``trust_ca(ca.bundle_path)``.
"""

from fakes.ews.api import EwsApi
from fakes.ews.trust import ca_adapter, trust_ca
from fakes.ews.versions import SERVER_VERSIONS

__all__ = ["SERVER_VERSIONS", "EwsApi", "ca_adapter", "trust_ca"]
