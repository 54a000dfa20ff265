"""The committed demo-links.toml is what the sandbox's data and connectors.toml give."""

from sandbox.demo_links import ROOT, render


def test_demo_links_file_is_current() -> None:
    assert (ROOT / "demo-links.toml").read_text(encoding="utf-8") == render(), (
        "run: python -m sandbox.demo_links"
    )


def test_every_link_names_a_configured_instance() -> None:
    text = render()
    for slug in ("bib-bordeaux", "bib-merignac", "bib-pessac", "cantine-bordeaux"):
        assert f'instance = "{slug}"' in text
