"""The documentation's examples run and print what the pages say they print."""
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


# sphinx.ext.napoleon (for the Google-style docstrings of tinyjax.tree_util) uses an
# autodoc interface that Sphinx 9 deprecates; that is Sphinx's business, not ours.
@pytest.mark.filterwarnings("ignore:The mapping interface for autodoc options")
def test_docs_doctests(tmp_path):
    pytest.importorskip("sphinx", reason="sphinx is not installed (pip install -e '.[docs]')")
    from sphinx.cmd.build import build_main

    status = build_main(["-b", "doctest", "-q", "-W", str(DOCS), str(tmp_path)])
    assert status == 0, f"sphinx doctest build failed; see {tmp_path / 'output.txt'}"
