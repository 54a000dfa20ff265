"""CSV and ZIP downloads: UTF-8 without a byte-order mark, comma-separated, a header
row, ISO dates, dots for decimals, one value per cell (data.gouv.fr's rules)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence

from flask import Response

from portal.owners.sections import CsvValue, Section


def csv_text(header: Sequence[str], rows: Iterable[Sequence[CsvValue]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return buffer.getvalue()


def section_csv(section: Section) -> str:
    return csv_text(section.csv_header, section.csv_rows)


def attachment(body: bytes | str, filename: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def csv_response(text: str, filename: str) -> Response:
    return attachment(text.encode("utf-8"), filename, "text/csv; charset=utf-8")


def zip_of(sections: Sequence[Section], prefix: str) -> bytes:
    """One CSV per section, named ``<prefix>_<section>.csv``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for section in sections:
            archive.writestr(f"{prefix}_{section.key}.csv", section_csv(section).encode("utf-8"))
    return buffer.getvalue()
