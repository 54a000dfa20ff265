"""A minimal, valid one-page PDF invoice, written by hand.

Five objects (catalog, page tree, page, font, content stream) and a cross-reference
table with exact byte offsets are all a PDF reader needs; the standard Helvetica font
with WinAnsiEncoding covers French text, so the sandbox needs no PDF library.
"""

from __future__ import annotations

from sandbox.backends.data import CanteenFamily, CanteenInvoice, french_date


def euros(amount_cents: int) -> str:
    """``88,35 €``: amounts as a French reader writes them."""
    whole, cents = divmod(amount_cents, 100)
    return f"{whole:,}".replace(",", "\u202f") + f",{cents:02d} €"


def _pdf_text(text: str) -> bytes:
    """A PDF string literal in WinAnsi (cp1252), with its delimiters escaped."""
    encoded = text.replace("\u202f", " ").encode("cp1252", errors="replace")
    escaped = encoded.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def render_pdf(title: str, lines: list[tuple[int, str]]) -> bytes:
    """A one-page A4 PDF: ``title`` in bold-ish size, then (font size, text) lines."""
    commands = [b"BT", b"/F1 18 Tf", b"56 780 Td", _pdf_text(title) + b" Tj"]
    for size, text in lines:
        leading = size + 8
        commands.append(f"/F1 {size} Tf 0 -{leading} Td".encode())
        commands.append(_pdf_text(text) + b" Tj")
    commands.append(b"ET")
    stream = b"\n".join(commands)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n".encode()
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def invoice_pdf(issuer: str, family: CanteenFamily, invoice: CanteenInvoice) -> bytes:
    """The invoice as the family would receive it (fictitious, marked as such)."""
    status = (
        f"Réglée le {french_date(invoice.paid_on)}."
        if invoice.paid_on
        else f"À régler avant le {french_date(invoice.due_date)}."
    )
    lines = [
        (11, "Document fictif produit par le bac à sable : ne pas payer."),
        (12, ""),
        (12, f"Facture n° {invoice.invoice_id}"),
        (12, invoice.label),
        (12, f"Émise le {french_date(invoice.issued_on)}"),
        (12, ""),
        (12, f"{family.display_name} — famille n° {family.family_number}"),
        (12, f"Payeur : {family.payer_name}"),
        (12, f"Code de facture : {family.invoice_code}"),
        (12, ""),
        (14, f"Montant : {euros(invoice.amount_cents)}"),
        (12, status),
    ]
    return render_pdf(issuer, lines)
