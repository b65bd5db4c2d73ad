"""Exchange server versions the fake can pretend to be, and RequestServerVersion checks."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from fakes.ews.soap import t

# Every RequestServerVersion value EWS defines, oldest first.
REQUEST_VERSIONS = (
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2016",
)


@dataclass(frozen=True)
class ServerVersion:
    """One Exchange release: its schema name, build number and the Version it reports in ServerVersionInfo."""

    name: str
    major: int
    minor: int
    major_build: int
    minor_build: int
    reported: str

    def accepts(self, requested: str) -> bool:
        """Whether a request with RequestServerVersion ``requested`` is valid for this server."""
        if requested not in REQUEST_VERSIONS:
            return False
        return REQUEST_VERSIONS.index(requested) <= REQUEST_VERSIONS.index(self.name)

    def header(self) -> Element:
        """The ``ServerVersionInfo`` SOAP header element."""
        return Element(
            t("ServerVersionInfo"),
            {
                "MajorVersion": str(self.major),
                "MinorVersion": str(self.minor),
                "MajorBuildNumber": str(self.major_build),
                "MinorBuildNumber": str(self.minor_build),
                "Version": self.reported,
            },
        )


# Build numbers of real releases. Exchange 2016 reports an opaque schema string like Office 365 does
# ("V2017_07_11"); exchangelib then keeps the RequestServerVersion that worked.
SERVER_VERSIONS = {
    v.name: v
    for v in (
        ServerVersion("Exchange2007_SP1", 8, 1, 436, 0, "Exchange2007_SP1"),
        ServerVersion("Exchange2010", 14, 0, 639, 21, "Exchange2010"),
        ServerVersion("Exchange2010_SP1", 14, 1, 218, 15, "Exchange2010_SP1"),
        ServerVersion("Exchange2010_SP2", 14, 2, 247, 5, "Exchange2010_SP2"),
        ServerVersion("Exchange2013", 15, 0, 516, 32, "Exchange2013"),
        ServerVersion("Exchange2013_SP1", 15, 0, 847, 32, "Exchange2013_SP1"),
        ServerVersion("Exchange2016", 15, 1, 2507, 6, "V2017_07_11"),
    )
}
