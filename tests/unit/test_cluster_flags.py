"""The cluster-mode flags of ``roomcast-hub``: parsed without starting anything."""

from __future__ import annotations

import pytest

from roomcast.hub.cli import parse_args
from roomcast.hub.cluster.options import ClusterOptions


def test_without_nats_there_is_no_cluster() -> None:
    assert parse_args([], {}).cluster is None


def test_nats_urls_come_from_the_flag_or_the_environment() -> None:
    from_flag = parse_args(["--nats", "127.0.0.1:4222, nats://127.0.0.1:4223"], {}).cluster
    assert from_flag == ClusterOptions(("nats://127.0.0.1:4222", "nats://127.0.0.1:4223"))
    from_env = parse_args([], {"ROOMCAST_NATS": "nats://127.0.0.1:4222"}).cluster
    assert from_env is not None and from_env.servers == ("nats://127.0.0.1:4222",)


def test_cluster_choices_are_kept() -> None:
    args = [
        "--nats",
        "nats://127.0.0.1:4222",
        "--nats-replicas",
        "3",
        "--cluster",
        "blue",
        "--stream-shards",
        "4",
    ]
    cluster = parse_args(args, {}).cluster
    assert cluster == ClusterOptions(("nats://127.0.0.1:4222",), cluster="blue", replicas=3, shards=4)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--stream-shards", "2"], "--stream-shards needs --nats"),
        (["--nats-replicas", "3"], "--nats-replicas needs --nats"),
        (["--nats", "nats://127.0.0.1:4222", "--data-dir", "/tmp/x"], "--data-dir is the standalone store"),
        (["--nats", "nats://127.0.0.1:4222", "--cluster", "a.b"], "--cluster"),
        (["--nats", "nats://127.0.0.1:4222", "--nats-replicas", "7"], "between 1 and 5"),
        (["--nats", "nats://127.0.0.1:4222", "--stream-shards", "0"], "between 1 and 64"),
    ],
)
def test_bad_cluster_flags_are_refused_with_a_reason(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv, {})
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
