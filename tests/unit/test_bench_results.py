"""bench/RESULTS.md is shared by every benchmark: a script may replace only its own section."""

from __future__ import annotations

from bench.results import RESULTS_HEADER, update_section


def test_first_section_creates_the_file_with_its_header(tmp_path):
    path = tmp_path / "RESULTS.md"
    update_section("## A (bench/a.py)", "## A (bench/a.py)\n\nfigures a1\n", path)
    assert path.read_text() == RESULTS_HEADER + "\n## A (bench/a.py)\n\nfigures a1\n"


def test_rerun_replaces_only_its_own_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    for title, body in (("## A (bench/a.py)", "a1"), ("## B (bench/b.py)", "b1"), ("## C (bench/c.py)", "c1")):
        update_section(title, f"{title}\n\n{body}\n", path)
    update_section("## B (bench/b.py)", "## B (bench/b.py)\n\nb2\n| x | y |\n", path)
    text = path.read_text()
    assert "b1" not in text and "b2\n| x | y |" in text
    assert text.index("## A") < text.index("a1") < text.index("## B") < text.index("b2") < text.index("## C")
    assert text.count("## ") == 3 and "c1" in text
