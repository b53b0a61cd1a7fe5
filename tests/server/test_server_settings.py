"""Settings precedence (defaults < TOML < environment < flags), the startup safety rule, token and Origin
checks, and the preview throttle."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from underpaint.protocol import vocabulary
from underpaint.protocol.errors import ProtocolError
from underpaint.protocol.messages import PreviewOptions, Submit
from underpaint.server.config import ConfigError, ServerConfig, build_config, protocol_limits
from underpaint.server.engine.interface import denoising_steps
from underpaint.server.jobs.runner import preview_policy
from underpaint.server.transport import security
from underpaint.server.transport.security import UnsafeConfig, bearer_token, check_origin, check_startup, check_token


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_precedence_toml_env_flags(tmp_path):
    toml = write(tmp_path / "s.toml", '[server]\nport = 1111\nmax_steps = 40\ntoken = "from-file"\n'
                 'allow_origins = ["https://a.example"]\ncache_gb = 2.5\n')
    env = {"UNDERPAINT_PORT": "2222", "UNDERPAINT_TOKEN": "from-env", "UNDERPAINT_LOG_JSON": "yes",
           "OTHER_PORT": "9"}
    config = build_config(toml, {"port": 3333, "host": None}, env)
    assert config.port == 3333  # flag beats env beats file
    assert config.token == "from-env"  # env beats file
    assert config.max_steps == 40 and config.cache_gb == 2.5  # file beats defaults
    assert config.allow_origins == ("https://a.example",)
    assert config.log_json is True
    assert config.host == ServerConfig().host  # a flag left unset (None) changes nothing


def test_config_file_from_the_environment_and_top_level_keys(tmp_path):
    toml = write(tmp_path / "flat.toml", 'max_batch = 2\nmodels_dirs = ["/a", "/b"]\n')
    config = build_config(None, {}, {"UNDERPAINT_CONFIG": str(toml), "UNDERPAINT_MAX_PIXELS": "1000"})
    assert config.max_batch == 2 and config.max_pixels == 1000
    assert config.models_dirs == (Path("/a"), Path("/b"))


def test_environment_lists_and_flag_strings_are_converted():
    config = build_config(None, {"max_steps": "12", "allow_pickle": True},
                          {"UNDERPAINT_ALLOW_ORIGINS": "https://a.example, https://b.example",
                           "UNDERPAINT_MAX_MODEL_PIXELS": "4096"})
    assert config.max_steps == 12 and config.allow_pickle is True
    assert config.allow_origins == ("https://a.example", "https://b.example")
    assert config.max_model_pixels == 4096


@pytest.mark.parametrize(("flags", "env", "message"), [
    ({"max_steps": "lots"}, {}, "setting 'max_steps' has a bad value 'lots'"),
    ({}, {"UNDERPAINT_LOG_JSON": "maybe"}, "setting 'log_json' has a bad value 'maybe'"),
    ({}, {"UNDERPAINT_CACHE_GB": "big"}, "setting 'cache_gb' has a bad value 'big'"),
])
def test_bad_values_name_the_setting(flags, env, message):
    with pytest.raises(ValueError, match=message):
        build_config(None, flags, env)


def test_default_limits_are_the_protocols():
    config = build_config(None, {}, {})
    assert {name: getattr(config, name) for name in vocabulary.SERVER_LIMITS} == vocabulary.SERVER_LIMITS
    assert protocol_limits(config).to_dict() == vocabulary.SERVER_LIMITS


@pytest.mark.parametrize(("flags", "message"), [
    ({"max_batch": vocabulary.BATCH.hi + 1}, f"setting 'max_batch': 'max_batch' must be between 1 and "
                                             f"{vocabulary.BATCH.hi} \\(got {vocabulary.BATCH.hi + 1}\\)"),
    ({"max_steps": vocabulary.STEPS.hi + 1}, "setting 'max_steps'.*must be between 1 and"),
    ({"max_steps": 0}, "setting 'max_steps'"),
    ({"max_pixels": 0}, "setting 'max_pixels': 'max_pixels' must be at least 1 \\(got 0\\)"),
    ({"max_queued_jobs": 0}, "setting 'max_queued_jobs'"),
    ({"keep_results_s": -1}, "setting 'keep_results_s': 'keep_results_s' must be at least 0"),
])
def test_limits_the_protocol_forbids_are_refused(flags, message):
    """An operator cannot configure a limit no client could be told about (welcome.limits has bounds)."""
    with pytest.raises(ConfigError, match=message):
        build_config(None, flags, {})


def test_unknown_toml_setting_is_refused(tmp_path):
    toml = write(tmp_path / "typo.toml", "[server]\nprot = 1\n")
    with pytest.raises(ValueError, match="unknown setting 'prot'"):
        build_config(toml, {}, {})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "example.com"])
def test_public_bind_needs_a_token(host):
    with pytest.raises(UnsafeConfig, match=f"refusing to listen on {host} without a token"):
        check_startup(ServerConfig(host=host))
    check_startup(ServerConfig(host=host, token="0123456789abcdef"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_needs_no_token(host):
    check_startup(ServerConfig(host=host))


def test_tls_needs_both_files(tmp_path):
    with pytest.raises(UnsafeConfig, match="TLS needs both"):
        check_startup(ServerConfig(ssl_certfile=tmp_path / "cert.pem"))


def test_token_check_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    config = ServerConfig(token="secret")
    check_token(config, "secret")
    with pytest.raises(ProtocolError) as info:
        check_token(config, "secreT")
    assert (info.value.code, info.value.message) == ("bad_token", "wrong token")
    assert calls == [(b"secret", b"secret"), (b"secreT", b"secret")]
    with pytest.raises(ProtocolError, match="missing token"):
        check_token(config, None)
    check_token(ServerConfig(), None)  # no token configured: none needed
    check_token(ServerConfig(), "anything")


def test_non_ascii_token_does_not_crash():
    with pytest.raises(ProtocolError) as info:
        check_token(ServerConfig(token="secret"), "sécret")
    assert info.value.code == "bad_token"


def test_origin_rules():
    config = ServerConfig(allow_origins=("https://ok.example",))
    check_origin(config, None)  # plugins send no Origin
    check_origin(config, "https://ok.example")
    with pytest.raises(ProtocolError) as info:
        check_origin(config, "https://evil.example")
    assert (info.value.code, info.value.field) == ("forbidden_origin", "origin")
    with pytest.raises(ProtocolError):
        check_origin(ServerConfig(), "null")  # sandboxed pages send the string "null"


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token(None) is None


def test_denoising_steps_matches_diffusers_rule():
    assert denoising_steps(20, 0.5) == 10
    assert denoising_steps(5, 0.1) == 0
    assert denoising_steps(3, 1.0) == 3
    assert denoising_steps(7, 0.3) == 2


def policy(**options):
    return preview_policy(Submit(job="j", kind="img2img", preview=PreviewOptions(**options)))


def test_preview_options_become_the_engine_policy():
    p = policy(every_steps=3, max_size=64, min_interval_ms=10_000)
    assert (p.every_steps, p.max_side, p.min_interval_s) == (3, 64, 10.0)
    assert [s for s in range(0, 11) if p.wants(s, 10, None)] == [3, 6, 9]  # never the last step
    assert not p.wants(6, 10, 9.5) and p.wants(6, 10, 10.0)
    assert not any(policy(enabled=False).wants(s, 10, None) for s in range(11))
