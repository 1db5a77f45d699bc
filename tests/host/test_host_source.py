"""The host source's parsing on its own: flags as the components' flag parser reads them, and
the kubelet's effective configuration (defaults, then config file, then flags)."""

from __future__ import annotations

import pytest

from k4c_pytest.sources.host import FileStat, kubelet_effective, normalise_role, parse_flags


def test_parse_flags_like_pflag():
    flags = parse_flags(["--a=1", "--b", "2", "--profiling", "--c=x=y", "--a=3", "-v=2", "positional"])
    assert flags == {"a": "3", "b": "2", "profiling": "true", "c": "x=y"}


def test_bool_flag_never_takes_the_next_word():
    assert parse_flags(["--anonymous-auth", "false"]) == {"anonymous-auth": "true"}


def test_kubelet_flags_win_over_the_config_file():
    config = {"authentication": {"anonymous": {"enabled": False}}, "readOnlyPort": 0}
    merged = kubelet_effective(config, {"anonymous-auth": "true", "read-only-port": "10255",
                                        "tls-cipher-suites": "A,B", "feature-gates": "X=false"})
    assert merged["authentication"]["anonymous"]["enabled"] is True
    assert merged["readOnlyPort"] == 10255 and merged["tlsCipherSuites"] == ["A", "B"]
    assert merged["featureGates"] == {"X": False}
    assert merged["authorization"]["mode"] == "Webhook"  # the config file's default
    assert config == {"authentication": {"anonymous": {"enabled": False}}, "readOnlyPort": 0}


def test_kubelet_without_config_file_has_the_weak_flag_defaults():
    merged = kubelet_effective(None, {})
    assert merged["authentication"]["anonymous"]["enabled"] is True
    assert merged["authorization"]["mode"] == "AlwaysAllow" and merged["readOnlyPort"] == 10255


def test_roles():
    assert normalise_role("Master") == "control-plane" and normalise_role("node") == "worker"
    with pytest.raises(ValueError, match="unknown role"):
        normalise_role("boss")


def test_file_modes():
    assert FileStat("/f", True, 0o100640).more_permissive_than(0o600)
    assert not FileStat("/f", True, 0o100400).more_permissive_than(0o600)
    assert FileStat("/f", True, 0o100644).permissions == "644"
