"""docs/hosts.md's support table is the one CI uses (tests/support/hosts.py), and CI installs what it says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.hosts import GIMP_HOSTS, KRITA_HOSTS, installed_version, support_table, upstream_version

DOC = Path(__file__).resolve().parents[2] / "docs" / "hosts.md"


def test_the_support_table_is_generated_from_the_ci_hosts() -> None:
    assert support_table() in DOC.read_text(encoding="utf-8"), "regenerate docs/hosts.md from support_table()"


def test_debian_versions_read_as_upstream_versions() -> None:
    assert upstream_version("1:6.0.4.1+dfsg-1+b1") == "6.0.4"
    assert upstream_version("3.0.4-3+deb13u11") == "3.0.4"
    assert upstream_version("1:5.1.5+dfsg-2+deb12u1") == "5.1.5"


ONLY_UNDER_CI = ("compares the installed hosts with docs/hosts.md under CI=true only: provision them with "
                 "`bash .ci/run` (or a .ci/provision_*.sh script of docs/hosts.md), then run "
                 "`CI=true .venv/bin/python -m pytest tests/repo/test_hosts_doc.py`")


@pytest.mark.skipif(os.environ.get("CI", "").lower() != "true", reason=ONLY_UNDER_CI)
@pytest.mark.parametrize("host", KRITA_HOSTS + GIMP_HOSTS, ids=lambda host: f"{host.app}-{host.expected}")
def test_ci_installs_the_documented_version(host) -> None:
    assert installed_version(host) == host.expected, f"{host.app} in {host.debian}: update docs and hosts.py"
