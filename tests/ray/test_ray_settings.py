"""The `--engine ray` settings: flags, environment and TOML reach the config; bad bounds are refused by name.
No Ray is started here."""

from __future__ import annotations

import pytest
from underpaint.server.config import ConfigError, build_config
from underpaint.server.scale.cluster import replica_bounds


def test_flags_environment_and_file_reach_the_ray_settings(tmp_path):
    file = tmp_path / "server.toml"
    file.write_text('[server]\nengine = "ray"\nray_address = "auto"\nray_gpus_per_replica = 0.5\n')
    config = build_config(file, {"ray_max_replicas": "4"}, {"UNDERPAINT_RAY_MIN_REPLICAS": "2"})
    assert (config.engine, config.ray_address, config.ray_gpus_per_replica) == ("ray", "auto", 0.5)
    assert replica_bounds(config) == (2, 4, 4)
    assert build_config(None, {}, {}).ray_gpus_per_replica is None  # None: 1 per replica where there are GPUs


def test_a_fixed_count_or_autoscaling_bounds():
    assert replica_bounds(build_config(None, {"ray_replicas": "3"}, {})) == (None, None, 3)
    assert replica_bounds(build_config(None, {"ray_max_replicas": "5"}, {})) == (1, 5, 5)
    assert replica_bounds(build_config(None, {"ray_min_replicas": "0", "ray_max_replicas": "2"}, {})) == (0, 2, 2)


@pytest.mark.parametrize(("flags", "named"), [
    ({"ray_replicas": "0"}, "ray_replicas"),
    ({"ray_min_replicas": "3", "ray_max_replicas": "2"}, "ray_max_replicas"),
    ({"ray_max_replicas": "0"}, "ray_max_replicas"),
])
def test_impossible_replica_settings_are_refused_by_name(flags, named):
    with pytest.raises(ConfigError, match=named):
        replica_bounds(build_config(None, flags, {}))


def test_the_cli_offers_the_ray_flags():
    from underpaint.server.cli.main import parser

    args = parser().parse_args(["serve", "--engine", "ray", "--ray-address", "auto", "--ray-replicas", "2",
                                "--ray-gpus-per-replica", "0.5", "--ray-proxy-port", "8123"])
    assert (args.engine, args.ray_address, args.ray_replicas, args.ray_gpus_per_replica, args.ray_proxy_port) == (
        "ray", "auto", "2", "0.5", "8123")


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_an_address_where_no_cluster_listens_is_refused_at_once(form):
    import time

    from underpaint.server.scale.cluster import check_reachable

    address = form.format(port=_unused_port())
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"ray_address.*nothing answers at 127\.0\.0\.1"):
        check_reachable(address)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("address", ["127.0.0.1:port", "http://x:1:2"])
def test_a_malformed_address_is_refused_by_name(address):
    from underpaint.server.scale.cluster import check_reachable

    with pytest.raises(ConfigError, match="expected 'auto', HOST:PORT"):
        check_reachable(address)


def test_a_listening_address_passes_the_check():
    import socket

    from underpaint.server.scale.cluster import check_reachable

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")


def test_attach_is_a_flag_and_a_setting(tmp_path):
    from underpaint.server.cli.main import parser

    assert parser().parse_args(["serve", "--engine", "ray", "--ray-attach"]).ray_attach is True
    file = tmp_path / "server.toml"
    file.write_text('[server]\nengine = "ray"\nray_attach = true\n')
    assert build_config(file, {}, {}).ray_attach is True
    assert build_config(None, {}, {"UNDERPAINT_RAY_ATTACH": "1"}).ray_attach is True
    assert build_config(None, {}, {}).ray_attach is False


def test_attach_waits_for_an_application_that_is_deploying_or_healing(monkeypatch):
    """A RayService still deploying, or replacing a replica that died, is waited for; a missing one is not."""
    from types import SimpleNamespace

    from ray import serve
    from underpaint.server.scale import cluster

    states = iter(["DEPLOYING", "UNHEALTHY", "RUNNING"])
    monkeypatch.setattr(serve, "status", lambda: SimpleNamespace(applications={
        cluster.APP_NAME: SimpleNamespace(status=f"ApplicationStatus.{next(states)}")}))
    monkeypatch.setattr(serve, "get_app_handle", lambda name: f"handle of {name}")
    monkeypatch.setattr(cluster.time, "sleep", lambda s: None)
    assert cluster.attached_handle() == f"handle of {cluster.APP_NAME}"
    monkeypatch.setattr(serve, "status", lambda: SimpleNamespace(applications={}))
    with pytest.raises(ConfigError, match="it is not deployed"):
        cluster.attached_handle()
    monkeypatch.setattr(serve, "status", lambda: SimpleNamespace(applications={
        cluster.APP_NAME: SimpleNamespace(status="ApplicationStatus.DEPLOYING")}))
    with pytest.raises(ConfigError, match="it is DEPLOYING"):
        cluster.attached_handle(wait_s=0)
