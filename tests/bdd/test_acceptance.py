"""Every scenario of features/, run against the fake services through the exsync CLI."""

from pytest_bdd import scenarios

scenarios(".")
