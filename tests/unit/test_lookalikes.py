"""The look-alike data and rules: the shipped confusables.txt (pinned), the UTS #39 skeleton
and the mixed-script rule."""

from __future__ import annotations

import hashlib

import pytest

from roomcast.shared import lookalikes
from roomcast.shared.lookalikes import mixes_scripts, script_names, skeleton
from roomcast.shared.names import fold

#: The shipped file, as shared/data/README.md describes it.  A change to the file must be a
#: deliberate update of all three.
CONFUSABLES_VERSION = "17.0.0"
CONFUSABLES_ENTRIES = 6565
CONFUSABLES_SHA256 = "ec88ecebcf89f63f813d460842b0cf8322744b40a0b2c06f88a2cea48c0351ea"


def test_the_shipped_confusables_file_is_the_pinned_unicode_version() -> None:
    data = lookalikes.CONFUSABLES_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == CONFUSABLES_SHA256
    assert lookalikes.confusables_version() == CONFUSABLES_VERSION
    assert b"Unicode Security Mechanisms for UTS #39" in data[:400]
    assert b"terms_of_use" in data[:400], "the licence notice stays with the data"
    assert len(lookalikes._prototypes()) == CONFUSABLES_ENTRIES


@pytest.mark.parametrize(
    ("source", "prototype"),
    [("\u0430", "a"), ("\u03bf", "o"), ("1", "l"), ("I", "l"), ("\uff41", "a"), ("m", "rn")],
)
def test_known_mappings_of_confusables_txt(source: str, prototype: str) -> None:
    assert lookalikes._prototypes()[source] == prototype


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("аlice", "alice"),  # Cyrillic а
        ("paypal", "pаypаl"),
        ("1obby", "lobby"),
        ("rnicro", "micro"),
        ("ѕсоре", "scope"),  # all Cyrillic
        ("νορ", "vop"),  # Greek
        ("𝐚𝐥𝐢𝐜𝐞", "alice"),  # mathematical bold
    ],
)
def test_look_alikes_have_equal_skeletons(a: str, b: str) -> None:
    assert skeleton(fold(a)) == skeleton(fold(b))


@pytest.mark.parametrize(
    ("a", "b"), [("alice", "alicia"), ("小明", "小朋"), ("聊天", "聊夫"), ("bob", "bop")]
)
def test_different_names_have_different_skeletons(a: str, b: str) -> None:
    assert skeleton(fold(a)) != skeleton(fold(b))


def test_a_skeleton_is_stable() -> None:
    for name in ("аlice", "1obby", "𝐚𝐥𝐢𝐜𝐞", "小明"):
        assert skeleton(skeleton(name)) == skeleton(name)


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "小明",
        "聊天",
        "漢字かなカナ",
        "東京tokyo",
        "abc漢字",
        "서울Seoul",
        "注音ㄅㄆㄇ",
        "москва",
        "Ελλάδα",
        "x-1_2.3",
    ],
)
def test_one_script_or_the_mixes_real_writers_use_are_accepted(name: str) -> None:
    assert not mixes_scripts(name)


@pytest.mark.parametrize(
    ("name", "scripts"),
    [
        ("аlice", ["Cyrillic", "Latin"]),
        ("Αlaska", ["Greek", "Latin"]),
        ("mосква", ["Latin", "Cyrillic"]),
        ("ελλάδαx", ["Greek", "Latin"]),
        ("한かな", ["Hangul", "Hiragana"]),
        ("abcалф", ["Latin", "Cyrillic"]),
    ],
)
def test_confusable_script_mixes_are_detected_and_named(name: str, scripts: list[str]) -> None:
    assert mixes_scripts(name)
    assert script_names(name) == scripts
