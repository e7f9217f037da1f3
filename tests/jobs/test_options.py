from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugin.errors import BackupRequestError
from plugin.jobs.options import normalise_since, validate_request


def test_defaults_are_normalised(home: Path) -> None:
    opts = validate_request(home=home)
    assert opts.backup_type == "full"
    assert opts.objects_filter == ()
    assert opts.output_directory is None


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"backup_type": "weekly"}, "backup_type='weekly'"),
        ({"parallel_downloads": 11}, "from 1 to 10"),
        ({"parallel_downloads": 0}, "from 1 to 10"),
        ({"parallel_downloads": True}, "from 1 to 10"),
        ({"since_date": "yesterday"}, "not an ISO date"),
        ({"since_date": "2999-01-01"}, "in the future"),
        ({"objects_filter": ["Account; DROP"]}, "not sObject API names"),
        ({"include_files": "yes"}, "include_files must be true or false"),
        ({"output_directory": "../outside"}, "contains '..'"),
        ({"output_directory": "/etc"}, "outside the allowed folders"),
        # Regression: Path.expanduser raised RuntimeError (an internal error) for an unknown user.
        ({"output_directory": "~no_such_user_here/backups"}, "names no home folder here"),
        ({"since_date": "2024-01-31"}, "since_date applies to incremental and files_only backups"),
        ({"content_versions": "newest"}, "content_versions='newest' is not one of all, latest"),
        ({"content_versions": "latest", "include_files": False}, "include_files is false"),
        (
            {
                "backup_type": "files_only",
                "include_files": False,
                "include_attachments": False,
                "include_documents": False,
            },
            "would back up nothing",
        ),
    ],
)
def test_bad_arguments_are_refused_with_a_message_naming_them(home: Path, kwargs: dict, fragment: str) -> None:
    with pytest.raises(BackupRequestError) as info:
        validate_request(home=home, **kwargs)
    assert fragment in str(info.value)


def test_since_date_becomes_a_utc_soql_literal(home: Path) -> None:
    def since(raw: str) -> str | None:
        return validate_request(home=home, backup_type="incremental", since_date=raw).since_date

    assert since("2024-01-31") == "2024-01-31T00:00:00Z"
    assert since("2024-01-31T12:00:00+02:00") == "2024-01-31T10:00:00Z"


def test_output_directory_symlink_out_of_home_is_refused(home: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "link").symlink_to(outside)
    with pytest.raises(BackupRequestError, match="outside the allowed folders"):
        validate_request(home=home, output_directory="link")


def test_output_directory_inside_home_or_allowed_root_is_accepted(home: Path, tmp_path: Path) -> None:
    assert validate_request(home=home, output_directory="mine").output_directory == str((home / "mine").resolve())
    extra = tmp_path / "extra"
    extra.mkdir()
    env = {"SFBACKUP_ALLOWED_OUTPUT": str(extra)}
    got = validate_request(home=home, output_directory=str(extra / "b"), env=env).output_directory
    assert got == str((extra / "b").resolve())


def test_duplicate_filter_names_collapse(home: Path) -> None:
    assert validate_request(home=home, objects_filter=["Account", "Account", "Contact"]).objects_filter == (
        "Account",
        "Contact",
    )


def test_an_empty_filter_filters_nothing(home: Path) -> None:
    """[] and null mean every object, as leaving the argument out does (README, objects_filter)."""
    assert validate_request(home=home, objects_filter=[]).objects_filter == ()
    assert validate_request(home=home, objects_filter=None).objects_filter == ()
    assert validate_request(home=home).objects_filter == ()


@given(st.dates(min_value=date(1, 1, 1), max_value=date(2100, 12, 31)), st.sampled_from(["", " ", "\t"]))
def test_a_date_is_its_midnight_utc_and_a_later_one_is_refused(day: date, pad: str) -> None:
    """The date road (fewer steps than the datetime road) gives what the datetime road gives for that midnight."""
    raw = f"{pad}{day.isoformat()}{pad}"
    today = datetime.now(UTC).date()
    if day > today:
        with pytest.raises(BackupRequestError, match="is in the future"):
            normalise_since(raw)
    elif day < today:  # today's midnight could be refused by the datetime road a moment later: not compared
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        assert normalise_since(raw) == midnight.isoformat().replace("+00:00", "Z")
        assert normalise_since(raw) == normalise_since(f"{day.isoformat()}T00:00:00Z")


def test_a_date_in_any_iso_spelling_of_ten_characters_is_read() -> None:
    assert normalise_since("2024-W01-1") == "2024-01-01T00:00:00Z"  # ISO week date: Monday of week 1
    # Four-digit years, as SOQL wants them (strftime wrote the year 999 as "999")
    assert normalise_since("0999-12-31T23:00:00-02:00") == "1000-01-01T01:00:00Z"
    assert normalise_since("0999-01-01T00:00:00.5Z") == "0999-01-01T00:00:00Z"
    with pytest.raises(BackupRequestError, match="is not an ISO date or datetime"):
        normalise_since("2024-02-30")
