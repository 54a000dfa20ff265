"""Nothing outside a kind's own package names a kind.

A new kind of service is one package under ``portal/services/<kind>/``, its templates
under ``templates/services/<kind>/`` and one line in ``portal/services/installed.py``.
That holds only while no other file switches on a kind: these tests read every Python
file of ``portal/`` and every template, and fail with the file and the line that names
one (as a word, in an identifier, or as an endpoint such as ``library.renew_loan``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from portal.config import PROJECT_ROOT

#: The kinds known today and the one being added; a new kind's name goes here too.
KIND_NAMES = ("library", "libraries", "canteen", "housing", "water")
#: As a word, inside an identifier (``LibraryView``, ``_card_canteen``) or an endpoint.
NAMES = re.compile("|".join(KIND_NAMES), re.IGNORECASE)
#: The back-ends' refusal codes that belong to one kind: said in its ``words.py``.
KIND_REFUSAL_CODES = (
    "too_late",
    "no_service_that_day",
    "closed_to_booking",
    "loan_overdue",
    "renewal_limit",
    "on_hold",
    "card_expired",
    "not_renewable",
    "not_cancellable",
    "outside_window",
    "application_closed",
    "below_last_reading",
    "implausible_reading",
    "contract_closed",
    "alert_closed",
    "deadline_passed",
    "attachment_rejected",
    "unknown_alert",
)
CODES = re.compile("[\"'](" + "|".join(KIND_REFUSAL_CODES) + ")[\"']")

PORTAL = PROJECT_ROOT / "portal"
TEMPLATES = PROJECT_ROOT / "templates"
#: Where the list of installed kinds is written: the one place that names them all.
INSTALLED = PORTAL / "services" / "installed.py"


def _own_folder(path: Path) -> bool:
    """A file of a kind's own package or template folder (``services/<kind>/``)."""
    for root in (PORTAL / "services", TEMPLATES / "services"):
        try:
            relative = path.relative_to(root)
        except ValueError:
            continue
        return len(relative.parts) > 1
    return False


def _checked_files() -> Iterator[Path]:
    for path in sorted(PORTAL.rglob("*.py")):
        if path != INSTALLED and not _own_folder(path):
            yield path
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file() and not _own_folder(path):
            yield path


def offences(pattern: re.Pattern[str], files: Iterator[Path]) -> list[str]:
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    return found


def test_no_file_outside_a_kind_names_a_kind() -> None:
    found = offences(NAMES, _checked_files())
    assert not found, "a kind is named outside its package:\n" + "\n".join(found)


def test_no_file_outside_a_kind_knows_its_refusal_codes() -> None:
    found = offences(CODES, _checked_files())
    assert not found, "a kind's refusal code outside its package:\n" + "\n".join(found)


def test_the_guard_finds_a_kind_named_where_it_should_not_be(tmp_path: Path) -> None:
    """The check itself: a name in a generic module or template is caught, with its line."""
    module = tmp_path / "dashboard.py"
    module.write_text('x = 1\nif svc.category == "library":\n    pass\n', encoding="utf-8")
    template = tmp_path / "card.html"
    template.write_text("{{ url_for('housing.renew_application') }}\n", encoding="utf-8")
    found = []
    for path in (module, template):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if NAMES.search(line):
                found.append((path.name, number))
    assert found == [("dashboard.py", 2), ("card.html", 1)]
    assert CODES.search('reason == "too_late"')


def test_every_installed_kind_has_its_own_folders() -> None:
    from portal.services import installed

    for module in installed.KINDS:
        name = module.rsplit(".", 1)[1]
        assert (PORTAL / "services" / name / "__init__.py").is_file(), module
        assert (TEMPLATES / "services" / name).is_dir(), module
