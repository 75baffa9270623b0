"""docs/api_listing.rst lists every public name of tinyjax.numpy, tinyjax.lax and
tinyjax.nn (regenerate it with scripts/api_listing.py after adding names)."""
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import api_listing  # noqa: E402


@pytest.mark.parametrize("module_name", api_listing.MODULES)
def test_every_public_name_is_listed(module_name):
    text = (ROOT / "docs" / "api_listing.rst").read_text()
    title = f"``{module_name}``"
    section = text.split(f"{title}\n{'-' * len(title)}\n")[1].split("\n``tinyjax.")[0]
    listed = set(re.findall(r"^   \* - ``([^`]+)``$", section, flags=re.M))
    names = set(api_listing.public_names(importlib.import_module(module_name)))
    assert not names - listed, f"not in docs/api_listing.rst: {sorted(names - listed)}"
    assert not listed - names, f"listed but not public: {sorted(listed - names)}"
